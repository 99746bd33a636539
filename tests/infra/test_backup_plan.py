"""AWS Backup (issue 3, point 4): vaults, the GFS plan, DR copies into a locked vault,
tag selection, restore testing; every number traced to drplan."""

import json

import pytest

from components.aws import cron as aws_cron
from components.aws.backup_plan import (
    CONTINUOUS_MAX_RETENTION_DAYS,
    RESTORE_TESTING_NAME,
    SELECTION_TAG,
    VAULT_LOCK_MIN_CHANGEABLE_DAYS,
    lock_bounds,
    rule_specs,
)
from drplan.periods import days
from drplan.retention import COLD_STORAGE_AFTER, COLD_STORAGE_MIN_STAY, RETENTION, Retention, Tier
from drplan.schedules import SCHEDULES
from drplan.thresholds import RESTORE_VALIDATION_WINDOW
from infra.mockrun import ACCOUNT, run_stack

PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"

CRON = {
    "daily": aws_cron.daily(SCHEDULES),
    "weekly": aws_cron.weekly(SCHEDULES),
    "monthly": aws_cron.monthly(SCHEDULES),
    "yearly": aws_cron.yearly(SCHEDULES),
    "incremental": aws_cron.incremental(SCHEDULES),
    "continuous": aws_cron.daily(SCHEDULES),
}


def _rules(run):
    return {r["ruleName"]: r for r in run.one(PLAN).inputs["rules"]}


@pytest.mark.parametrize("stack,tier", [("prod", Tier.PROD), ("staging", Tier.STAGING)])
def test_plan_realises_the_tiers_gfs_generations(request, stack, tier):
    run = request.getfixturevalue(stack)
    retention = RETENTION[tier]
    rules = _rules(run)
    assert set(rules) == {c.value for c in retention.classes} | {"continuous", "incremental"}
    for gfs in retention.classes:
        rule = rules[gfs.value]
        assert rule["lifecycle"]["deleteAfter"] == retention.for_class(gfs).days
        assert rule["schedule"] == CRON[gfs.value] and rule["scheduleExpressionTimezone"] == "Etc/UTC"
        assert rule["enableContinuousBackup"] is False
    assert rules["incremental"]["lifecycle"]["deleteAfter"] == retention.incremental.days
    assert rules["incremental"]["schedule"] == aws_cron.incremental(SCHEDULES)
    continuous = [r for r in rules.values() if r["enableContinuousBackup"]]
    assert [r["ruleName"] for r in continuous] == ["continuous"]
    assert continuous[0]["lifecycle"]["deleteAfter"] == retention.wal.days <= CONTINUOUS_MAX_RETENTION_DAYS


def test_yearly_moves_to_cold_storage_within_aws_limits(prod):
    life = _rules(prod)["yearly"]["lifecycle"]
    assert life["coldStorageAfter"] == COLD_STORAGE_AFTER.days
    assert life["deleteAfter"] >= life["coldStorageAfter"] + COLD_STORAGE_MIN_STAY.days
    assert life["optInToArchiveForSupportedResources"] is True
    assert all("coldStorageAfter" not in r["lifecycle"] for n, r in _rules(prod).items() if n != "yearly")


def test_every_rule_copies_to_the_dr_vault_with_the_same_lifecycle(prod, dr):
    dr_vault = dr.one(VAULT)
    assert dr_vault.region == "eu-central-1"
    for name, rule in _rules(prod).items():
        # (and, for the GFS rules, a copy into the backup-only account: tests/infra/test_vault_account.py)
        (copy,) = [c for c in rule["copyActions"] if c["destinationVaultArn"] == dr_vault.outputs["arn"]]
        assert copy["destinationVaultArn"] == dr_vault.outputs["arn"] == dr.outputs["drBackupVaultArn"], name
        assert copy["lifecycle"] == rule["lifecycle"], name


def test_vaults_are_encrypted_with_their_own_regions_keys(prod, dr):
    for run, region in ((prod, "eu-west-3"), (dr, "eu-central-1")):
        vault = run.one(VAULT)
        key = run.one("aws:kms/key:Key", "backup-key")
        assert vault.region == key.region == region and vault.protect
        assert vault.inputs["kmsKeyArn"] == key.outputs["arn"] and key.outputs["arn"].split(":")[3] == region
        assert vault.inputs["forceDestroy"] is False


def test_dr_vault_lock_accepts_every_copy_and_nothing_else(prod, dr):
    lock = dr.one(LOCK)
    assert lock.protect and lock.region == "eu-central-1"
    assert lock.inputs["backupVaultName"] == dr.one(VAULT).outputs["name"]
    # Compliance mode: a cooling-off period, at least the provider's minimum of 3 days.
    assert lock.inputs["changeableForDays"] >= 3 and VAULT_LOCK_MIN_CHANGEABLE_DAYS >= 3
    copies = [c["lifecycle"]["deleteAfter"] for r in _rules(prod).values() for c in r["copyActions"]]
    assert lock.inputs["minRetentionDays"] == min(copies)
    assert lock.inputs["maxRetentionDays"] == max(copies) == RETENTION[Tier.PROD].longest.days


def test_prod_vault_is_locked_too_and_staging_is_not(prod, dr, staging, staging_dr):
    assert prod.one(LOCK).inputs["minRetentionDays"] == RETENTION[Tier.PROD].wal.days
    assert not staging.of_type(LOCK) and not staging_dr.of_type(LOCK)
    assert staging_dr.outputs["backupVault"]["locked"] is False


def test_vault_policy_refuses_early_deletion(prod, dr, staging):
    for run in (prod, dr, staging):
        policy = json.loads(run.one("aws:backup/vaultPolicy:VaultPolicy").inputs["policy"])
        (stmt,) = policy["Statement"]
        assert stmt["Effect"] == "Deny" and stmt["Principal"] == {"AWS": "*"}
        assert {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"} <= set(stmt["Action"])


def test_selection_by_tag_covers_the_database_and_the_file_buckets_of_this_stack_only(prod, staging):
    """AWS Backup selections are account-wide: conditions (AND-ed, AWS Backup API "BackupSelection")
    pick what is tagged for backup *and* carries this stack's tag, which every resource gets from the
    provider's default tags (aws:defaultTags in Pulumi.<stack>.yaml). Without the stack condition a
    staging database in prod's account would land in prod's compliance-locked vault for 7 years."""
    key, value = SELECTION_TAG
    for run in (prod, staging):
        sel = run.one("aws:backup/selection:Selection")
        assert not sel.inputs.get("selectionTags"), "ListOfTags is OR-ed: it cannot scope to a stack"
        assert sel.inputs["conditions"] == [{"stringEquals": [
            {"key": f"aws:ResourceTag/{key}", "value": value},
            {"key": "aws:ResourceTag/postoucancer:stack", "value": run.stack},
        ]}]
        default_tags = json.loads(run.config["aws:defaultTags"])
        assert default_tags["tags"]["postoucancer:stack"] == run.stack
    tag = {"key": key, "value": value}
    assert prod.one("aws:rds/instance:Instance").inputs["tags"][tag["key"]] == tag["value"]
    assert prod.one("aws:s3/bucket:Bucket", "primary-files").inputs["tags"][tag["key"]] == tag["value"]
    role = prod.one("aws:iam/role:Role", "primary-backup-role")
    assert prod.one("aws:backup/selection:Selection").inputs["iamRoleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "backup.amazonaws.com"}]


def test_backup_role_may_use_exactly_the_data_tier_keys(prod, dr):
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "primary-backup-keys").inputs["policy"])
    (stmt,) = policy["Statement"]
    expected = {
        prod.one("aws:kms/key:Key", n).outputs["arn"] for n in ("primary-backup-key", "primary-database-key", "files")
    } | {dr.outputs["drBackupKmsKeyArn"]}
    assert set(stmt["Resource"]) == expected


def test_weekly_restore_test_of_the_latest_recovery_point(prod):
    plan = prod.one("aws:backup/restoreTestingPlan:RestoreTestingPlan")
    sel = prod.one("aws:backup/restoreTestingSelection:RestoreTestingSelection")
    assert plan.inputs["scheduleExpression"] == aws_cron.restore_test(SCHEDULES)
    rps = plan.inputs["recoveryPointSelection"]
    assert rps["algorithm"] == "LATEST_WITHIN_WINDOW"
    assert rps["includeVaults"] == [prod.one(VAULT).outputs["arn"]]
    assert rps["selectionWindowDays"] == SCHEDULES.restore_test_every.days
    assert RESTORE_TESTING_NAME.match(plan.inputs["name"]) and RESTORE_TESTING_NAME.match(sel.inputs["name"])
    assert sel.inputs["restoreTestingPlanName"] == plan.outputs["name"]
    assert sel.inputs["protectedResourceType"] == "RDS"
    assert sel.inputs["protectedResourceArns"] == [prod.outputs["databaseInstanceArn"]]
    assert sel.inputs["validationWindowHours"] * 3600 == RESTORE_VALIDATION_WINDOW.total_seconds()
    overrides = sel.inputs["restoreMetadataOverrides"]
    assert overrides["dbsubnetgroupname"] == prod.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    assert overrides["publiclyaccessible"] == "false"


def test_prod_before_dr_exists_backs_up_without_copies(pair_prod):
    lonely = run_stack("prod", peer_outputs=None)
    # The vault account's stack deploys first: only its copies are there yet.
    rules = lonely.one(PLAN).inputs["rules"]
    accounts = {c["destinationVaultArn"].split(":")[4] for r in rules for c in r.get("copyActions") or []}
    assert ACCOUNT not in accounts
    assert lonely.outputs["backupPlan"]["copiesTo"] is None
    assert "drBackupVaultArn" in lonely.outputs["nextStep"]


def test_provider_limits_are_checked():
    with pytest.raises(ValueError, match="continuous"):
        rule_specs(Retention(daily=days(30), weekly=days(84), wal=days(CONTINUOUS_MAX_RETENTION_DAYS + 1)))
    with pytest.raises(ValueError, match="cold storage"):
        rule_specs(Retention(daily=days(7), weekly=days(28), monthly=days(60), yearly=days(100)))
    low, high = lock_bounds(RETENTION[Tier.STAGING])
    assert (low, high) == (RETENTION[Tier.STAGING].wal.days, RETENTION[Tier.STAGING].longest.days)


def test_dr_plan_waits_for_the_promoted_database_and_tests_the_locked_copies(prod, dr):
    plan = dr.one(PLAN)
    assert plan.region == "eu-central-1"
    assert _rules(dr).keys() == _rules(prod).keys()
    low, high = dr.one(LOCK).inputs["minRetentionDays"], dr.one(LOCK).inputs["maxRetentionDays"]
    for name, rule in _rules(dr).items():
        assert rule["lifecycle"] == _rules(prod)[name]["lifecycle"]
        assert low <= rule["lifecycle"]["deleteAfter"] <= high
        (copy,) = [c for c in rule["copyActions"] if c["destinationVaultArn"] == prod.one(VAULT).outputs["arn"]]
        assert copy["destinationVaultArn"] == prod.outputs["backupVaultArn"] == prod.one(VAULT).outputs["arn"]
        assert copy["lifecycle"] == rule["lifecycle"]
    keys = json.loads(dr.one("aws:iam/rolePolicy:RolePolicy", "dr-backup-keys").inputs["policy"])
    assert prod.outputs["backupKmsKeyArn"] in keys["Statement"][0]["Resource"]
    sel = dr.one("aws:backup/selection:Selection")
    key, value = SELECTION_TAG
    assert not sel.inputs.get("selectionTags")
    assert sel.inputs["resources"] == [f"arn:aws:rds:eu-central-1:{ACCOUNT}:db:*"]
    assert sel.inputs["conditions"] == [{"stringEquals": [
        {"key": f"aws:ResourceTag/{key}", "value": value},
        {"key": "aws:ResourceTag/postoucancer:stack", "value": "dr"},
    ]}]
    # Before activation nothing in this region matches: the standby is not tagged for backup.
    assert dr.one("aws:rds/instance:Instance").inputs["tags"].get(key) != value
    # (The weekly restore test's; the monthly DR drill's, dr-drill, is tests/infra/test_drill_schedule.py's.)
    test = dr.one("aws:backup/restoreTestingSelection:RestoreTestingSelection", "dr-backup-")
    plan_rt = dr.one("aws:backup/restoreTestingPlan:RestoreTestingPlan", "dr-backup-")
    assert plan_rt.inputs["recoveryPointSelection"]["includeVaults"] == [dr.outputs["drBackupVaultArn"]]
    # The DR vault holds copies of prod's database: the test names it (and the DR instance, for
    # its own recovery points once promoted). A condition on this stack's tag would select none
    # of the copies: they are of a resource tagged with prod's stack.
    assert test.inputs["protectedResourceArns"] == [
        prod.outputs["databaseInstanceArn"], dr.one("aws:rds/instance:Instance").outputs["arn"]]
    assert test.inputs["protectedResourceType"] == "RDS"
    assert not test.inputs.get("protectedResourceConditions")
    standby_subnets = dr.one("aws:rds/subnetGroup:SubnetGroup")
    assert test.inputs["restoreMetadataOverrides"]["dbsubnetgroupname"] == standby_subnets.outputs["name"]
