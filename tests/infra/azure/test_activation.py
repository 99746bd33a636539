"""DR activation of the Azure pair (what exists of it): the offline diff, the activated stack
passing the pack, the dry run of `python -m infra.activate --stack dr-azure`."""

from __future__ import annotations

import io

from infra import activate, policy_check
from infra.activation import activation_runs, diff_activation, diff_completion, output_changes
from infra.azure.activation import PENDING
from tests.infra.azure.helpers import REPLICATION

AT = "2026-11-27T21:00:00Z"


def test_activation_removes_the_destination_halves_and_nothing_stateful(pair_azure):
    changes = diff_activation(pair_azure)
    assert [(c.action, c.type, c.name) for c in changes] == [
        ("delete", REPLICATION, "dr-backups-replication"),
        ("delete", REPLICATION, "dr-files-replication"),
    ]
    assert not any(c.risky for c in changes)
    assert diff_completion(pair_azure) == []


def test_the_activated_site_says_what_it_did_and_what_is_pending(pair_azure):
    before, after = activation_runs(pair_azure)
    changed = {c.path: (c.before, c.after) for c in output_changes(before, after)}
    assert changed["activated"] == (False, True)
    assert changed["filesReplication.role"] == ("destination", "primary since activation")
    assert after.outputs["activation"]["pending"] == list(PENDING)
    assert "activatedAt" in after.outputs
    assert [str(v) for v in policy_check.evaluate(after) if v.mandatory] == []


def test_the_dry_run_covers_the_azure_dr_stack(pair_azure):
    out = io.StringIO()
    assert activate.main(["--stack", "dr-azure", "--dry-run", "--at", AT], out=out) == 0
    text = out.getvalue()
    assert "dr site in germanywestcentral" in text
    assert "- delete  ObjectReplicationPolicy dr-files-replication" in text
    assert "$ pulumi config set activated true --stack dr-azure" in text
