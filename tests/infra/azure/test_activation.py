"""DR activation of the Azure pair (what exists of it) and the offline plan that shows it: the
activation diff, the activated stack passing the pack (the dry run of `python -m infra.activate
--stack dr-azure` is docs/azure.md's, tests/infra/azure/test_docs.py), the objectives table,
realistic ARM ids, the cross-region links, no secret in the printed plan. One module: the
activation runs are shared (answered from memory) by the plan's rendering."""

from __future__ import annotations

import json

from infra import policy_check
from infra.activation import activation_runs, diff_activation, diff_completion, output_changes
from infra.azure.activation import PENDING
from infra.plan import cross_stack_edges, render_text, to_json
from tests.infra.azure.helpers import ARM_ID, REPLICATION


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


SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # the stack files' placeholder


def test_every_azure_resource_has_a_realistic_arm_id(prod_azure, dr_azure):
    for run in (prod_azure, dr_azure):
        for r in run.resources:
            if not r.type.startswith("azure-native:"):
                continue
            rid, group = r.outputs["id"], run.outputs["azure"]["resourceGroup"]
            if r.type == "azure-native:resources:ResourceGroup":
                assert rid == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
            else:
                assert ARM_ID.match(rid) and f"/resourceGroups/{group}/providers/" in rid, (r.type, rid)
                assert r.id == rid, "other resources reference the same id the provider answered"


def test_the_objectives_table_is_exported_and_printed(pair_azure):
    for run in (pair_azure.primary, pair_azure.dr):
        table = run.outputs["objectives"]
        assert set(table) == {"database-corruption", "datacentre-loss", "ransomware", "accidental-deletion"}
        assert all(row["declared"] and row["met"] for row in table.values())
    text = render_text({"prod-azure": pair_azure})
    assert "pulumi up -s dr-azure → pulumi up -s prod-azure → pulumi up -s dr-azure → pulumi up -s prod-azure" in text
    assert text.count("objectives (achieved vs declared") == 2
    assert "databaseCredentials = [secret]" in text


def test_cross_region_links_are_the_replication_halves(pair_azure):
    edges = {(a, b) for a, b, _ in cross_stack_edges(pair_azure)}
    assert edges == {
        ("prod-azure:primary-files-replication", "dr-azure:dr-files"),
        ("prod-azure:primary-backups-replication", "dr-azure:dr-backups"),
        ("dr-azure:dr-files-replication", "prod-azure:primary-files"),
        ("dr-azure:dr-backups-replication", "prod-azure:primary-backups"),
    }


def test_the_plan_json_holds_no_generated_credential(pair_azure):
    password = json.loads(pair_azure.primary.one("azure-native:keyvault:Secret").inputs["properties"]["value"])[
        "password"
    ]
    outputs = to_json({"prod-azure": pair_azure})["prod-azure"]["sites"][0]["outputs"]
    assert outputs["databaseCredentials"] == "[secret]"
    assert password not in json.dumps(outputs)
