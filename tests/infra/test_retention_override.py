"""Issue 11: a stack's retention override reaches every realisation, from one place.

`retention: {weekly: 16w}` on the prod pair: 112 days instead of the plan's 84 in the AWS Backup
rules and their DR copies, the backup bucket's lifecycle, the functions' BACKUP_POLICY (which
decides the lock date the backup function sets: tests/lambdas/test_roundtrip.py), the
Kubernetes CronJobs' environment, and the policy pack's floors.
"""

import copy
import json

import pytest

from drplan.handover import BackupPolicy
from infra.mockrun import run_pair, run_stack
from infra.policy_check import evaluate
from policy.rules.backup import retention_at_least_tier_minimum

P = "postoucancer-dr:"
OVERRIDE = {P + "retention": {"weekly": "16w"}}
WEEKS_16, WEEKS_12 = 112, 84


@pytest.fixture(scope="module")
def overridden():
    return run_pair("prod", "dr", primary_overrides=OVERRIDE, dr_overrides=OVERRIDE)


def _rules(run):
    return {r["ruleName"]: r for r in run.one("aws:backup/plan:Plan").inputs["rules"]}


def test_aws_backup_rules_and_their_dr_copies_keep_the_override(overridden, pair_prod):
    for run in (overridden.primary, overridden.dr):
        weekly = _rules(run)["weekly"]
        assert weekly["lifecycle"]["deleteAfter"] == WEEKS_16
        # The DR vault's copy and the backup-only account's copy keep the override alike.
        assert len(weekly["copyActions"]) == 2
        assert all(c["lifecycle"]["deleteAfter"] == WEEKS_16 for c in weekly["copyActions"])
        assert _rules(run)["daily"]["lifecycle"]["deleteAfter"] == 30  # only weekly changed
    assert _rules(pair_prod.primary)["weekly"]["lifecycle"]["deleteAfter"] == WEEKS_12


def test_the_backup_bucket_expires_weekly_dumps_after_the_override(overridden):
    for run, site in ((overridden.primary, "primary"), (overridden.dr, "dr")):
        lifecycle = next(
            r for r in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
            if r.name.startswith(f"{site}-pg-backups")
        )
        expiry = {r["id"]: r["expiration"]["days"] for r in lifecycle.inputs["rules"] if "expiration" in r
                  and "days" in r["expiration"]}
        assert expiry["expire-weekly"] == WEEKS_16 and expiry["expire-daily"] == 30


def test_the_functions_are_handed_the_override(overridden):
    env = overridden.primary.one("aws:lambda/function:Function", "primary-pg-backup").inputs["environment"]
    policy = BackupPolicy.from_json(env["variables"]["BACKUP_POLICY"])
    assert policy.retention.weekly.days == WEEKS_16 and policy.retention.daily.days == 30


def test_the_cronjobs_are_handed_the_override(overridden):
    run = run_stack(
        "prod",
        peer_outputs=overridden.dr.outputs,
        overrides={**OVERRIDE, P + "functions": {"runner": "kubernetes", "eksClusterName": "prod-eks"}},
    )
    job = run.one("kubernetes:batch/v1:CronJob", "primary-pg-cron-backup")
    container = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert BackupPolicy.from_json(env["BACKUP_POLICY"]).retention.weekly.days == WEEKS_16


def _with_weekly_kept(run, days):
    """The same stack with its weekly rule shortened to `days` (what a drifted plan would hold)."""
    changed = copy.deepcopy(run)
    plan = changed.one("aws:backup/plan:Plan")
    for state in (plan.inputs, plan.outputs):
        for rule in state.get("rules", []):
            if rule["ruleName"] == "weekly":
                rule["lifecycle"]["deleteAfter"] = days
    return changed


def test_the_policy_packs_floor_follows_the_override(overridden, pair_prod):
    site = overridden.primary.outputs["site"]
    assert site["retention"]["weekly"] == "16w"
    # The plan's 84 days pass on the plain stack but not on the stack that declared 16 weeks.
    assert evaluate(_with_weekly_kept(pair_prod.primary, WEEKS_12), [retention_at_least_tier_minimum]) == []
    found = evaluate(_with_weekly_kept(overridden.primary, WEEKS_12), [retention_at_least_tier_minimum])
    assert any("weekly" in v.message and f"< {WEEKS_16} d" in v.message for v in found), [str(v) for v in found]
    assert evaluate(overridden.primary, [retention_at_least_tier_minimum]) == []


def test_the_override_is_one_value_in_the_stack_config(overridden):
    recorded = json.loads(overridden.primary.config[P + "retention"])
    assert recorded == {"weekly": "16w"}
