"""The real stacks pass the pack: zero mandatory violations in vault, prod, dr, staging and
staging-dr (after the documented bootstrap order), and the CLI that CI runs agrees."""

from __future__ import annotations

import pytest

from infra import policy_check
from infra.mockrun import StackRun
from policy.rules import MANDATORY, POLICIES


@pytest.fixture(scope="module")
def stacks(vault, prod, dr, staging, staging_dr) -> list[StackRun]:
    return [vault, prod, dr, staging, staging_dr]


def test_every_stack_passes_every_mandatory_policy(stacks):
    violations = policy_check.check_stacks(stacks)
    mandatory = [str(v) for v in violations if v.mandatory]
    assert mandatory == []


def test_the_rules_see_the_stacks_site_and_resource_options(prod, dr, staging, vault):
    """Guards against a vacuous pass: the runner hands the rules the site's role and tier (from
    the stack's `site` export) and the resource options as the engine would."""
    from pulumi_policy import StackValidationArgs

    from policy.rules._util import Stack

    sites = ((prod, "primary", "prod"), (dr, "dr", "prod"), (staging, "primary", "staging"), (vault, "vault", "prod"))
    for run, role, tier in sites:
        site = Stack(StackValidationArgs(policy_check.stack_resources(run))).site()
        assert (site.role.value, site.tier.value, site.source) == (role, tier, "site export")
    buckets = [r for r in policy_check.stack_resources(prod) if r.resource_type == "aws:s3/bucket:Bucket"]
    assert buckets and all(b.opts.protect for b in buckets)
    assert all(b.parent is not None and b.parent.resource_type.startswith("postoucancer:") for b in buckets)


def test_a_broken_real_stack_fails_the_check(prod):
    """The same run with its buckets unprotected and versioning removed fails mandatory policies."""
    broken = StackRun(
        stack=prod.stack,
        config=prod.config,
        resources=[r for r in prod.resources if r.type != "aws:s3/bucketVersioning:BucketVersioning"],
        outputs=prod.outputs,
        logs=prod.logs,
    )
    failed = {v.policy for v in policy_check.check_stacks([broken]) if v.mandatory}
    assert "s3-bucket-versioned" in failed


def test_cli_exits_non_zero_only_on_mandatory_violations(monkeypatch, capsys, pair_prod, pair_staging, pair_azure):
    runs = {"prod": pair_prod, "staging": pair_staging, "prod-azure": pair_azure}
    monkeypatch.setattr(policy_check, "run_pair", lambda primary, dr: runs[primary])
    assert policy_check.main([]) == 0
    out = capsys.readouterr().out
    for stack in ("vault", "prod", "dr", "staging", "staging-dr", "prod-azure", "dr-azure"):
        assert f"{stack}: " in out
    assert "policy check: passed" in out

    advisory = next(p for p in POLICIES if p.name not in MANDATORY)
    mandatory = next(p for p in POLICIES if p.name in MANDATORY)

    def fake(run, policies=None, config=None):
        return [
            policy_check.Violation(run.stack, advisory.name, "advisory", "just saying"),
            *([policy_check.Violation(run.stack, mandatory.name, "mandatory", "no")] if run.stack == "dr" else []),
        ]

    monkeypatch.setattr(policy_check, "evaluate", fake)
    assert policy_check.main(["--pair", "prod"]) == 1
    out = capsys.readouterr().out
    assert "[advisory] prod" in out and "[mandatory] dr" in out and "FAILED" in out

    monkeypatch.setattr(policy_check, "evaluate", lambda run, policies=None, config=None: fake(run)[:1])
    assert policy_check.main(["--pair", "prod"]) == 0


def test_the_activated_dr_site_passes_too(pair_prod):
    """DR activation is a real deployment of the dr stack: the pack gates it as well."""
    from infra.mockrun import run_stack

    activated = run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={"postoucancer-dr:activated": True})
    assert [str(v) for v in policy_check.evaluate(activated) if v.mandatory] == []
