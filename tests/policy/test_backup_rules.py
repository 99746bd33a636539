"""Backup stores, AWS Backup plans and retention floors: a bad resource is caught, a good one passes.
Every number comes from drplan."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components.aws import cron as aws_cron
from drplan.retention import COLD_STORAGE_AFTER, RETENTION, GfsClass, Retention, Tier
from drplan.schedules import SCHEDULES
from policy.rules import backup
from tests.policy.harness import ACCOUNT, DR_REGION, PRIMARY_REGION, doc, names, violations

PROD, STAGING = RETENTION[Tier.PROD], RETENTION[Tier.STAGING]
DR_VAULT_ARN = f"arn:aws:backup:{DR_REGION}:{ACCOUNT}:backup-vault:dr-vault"
SAME_REGION_VAULT_ARN = f"arn:aws:backup:{PRIMARY_REGION}:{ACCOUNT}:backup-vault:other"
PROD_SITE = {"role": "primary", "tier": "prod"}
DR_SITE = {"role": "dr", "tier": "prod"}
STAGING_SITE = {"role": "primary", "tier": "staging"}
CRON = {
    GfsClass.DAILY: aws_cron.daily(SCHEDULES),
    GfsClass.WEEKLY: aws_cron.weekly(SCHEDULES),
    GfsClass.MONTHLY: aws_cron.monthly(SCHEDULES),
    GfsClass.YEARLY: aws_cron.yearly(SCHEDULES),
}


# --- immutability ------------------------------------------------------------------------


def backup_bucket(mode: str | None = "COMPLIANCE", object_lock: bool = True, days: int | None = None) -> None:
    b = aws.s3.Bucket(
        "db-backups",
        region=PRIMARY_REGION,
        object_lock_enabled=object_lock or None,
        tags={"purpose": "database-backups"},
        opts=pulumi.ResourceOptions(protect=True),
    )
    if mode:
        aws.s3.BucketObjectLockConfiguration(
            "db-backups-lock",
            region=PRIMARY_REGION,
            bucket=b.id,
            rule={"default_retention": {"mode": mode, "days": days or PROD.daily.days}},
        )


def dr_vault(lock: str | None = "compliance") -> None:
    key = aws.kms.Key("vault-key", region=DR_REGION, enable_key_rotation=True, policy=doc())
    vault = aws.backup.Vault("dr-vault", region=DR_REGION, kms_key_arn=key.arn)
    if lock:
        aws.backup.VaultLockConfiguration(
            "dr-vault-lock",
            region=DR_REGION,
            backup_vault_name=vault.name,
            min_retention_days=PROD.shortest.days,
            max_retention_days=PROD.longest.days,
            changeable_for_days=3 if lock == "compliance" else None,
        )


@pytest.mark.parametrize(
    ("program", "site", "culprit"),
    [
        (lambda: backup_bucket(mode="GOVERNANCE"), PROD_SITE, "db-backups"),
        (lambda: backup_bucket(mode=None), PROD_SITE, "db-backups"),
        (lambda: backup_bucket(object_lock=False, mode=None), PROD_SITE, "db-backups"),
        (lambda: dr_vault(lock=None), DR_SITE, "dr-vault"),
        (lambda: dr_vault(lock="governance"), DR_SITE, "dr-vault"),
    ],
    ids=["bucket-governance", "bucket-no-default-retention", "bucket-no-object-lock", "vault-unlocked", "vault-gov"],
)
def test_immutable_catches_mutable_backup_stores(program, site, culprit):
    assert names(violations(backup.backup_store_immutable, program, site=site)) == {culprit}


def test_immutable_passes_compliance_locked_stores_and_leaves_staging_and_primary_vaults_alone():
    assert violations(backup.backup_store_immutable, backup_bucket, site=PROD_SITE) == []
    assert violations(backup.backup_store_immutable, dr_vault, site=DR_SITE) == []
    # Staging keeps no lock (model/config: the lock is a prod-tier property).
    assert violations(backup.backup_store_immutable, lambda: backup_bucket(mode=None), site=STAGING_SITE) == []
    # The issue asks compliance mode of the DR vault; a primary-site vault is not a DR copy.
    assert violations(backup.backup_store_immutable, lambda: dr_vault(lock=None), site=PROD_SITE) == []


# --- AWS Backup plans -------------------------------------------------------------------------


def plan_rules(retention: Retention, copy_to: str | None = DR_VAULT_ARN, **keep_days: int) -> list[dict]:
    """One rule per GFS generation of the tier plus continuous backup, kept as the model says
    (keep_days overrides a generation's days: daily=5)."""
    rules = []
    for c in retention.classes:
        days = keep_days.get(c.value, retention.for_class(c).days)
        lifecycle: dict = {"delete_after": days}
        if c is GfsClass.YEARLY:
            lifecycle["cold_storage_after"] = COLD_STORAGE_AFTER.days
        rule = {"rule_name": c.value, "target_vault_name": "vault", "schedule": CRON[c], "lifecycle": lifecycle}
        if copy_to:
            rule["copy_actions"] = [
                {
                    "destination_vault_arn": copy_to,
                    "lifecycle": dict(lifecycle, delete_after=keep_days.get(f"copy_{c.value}", days)),
                }
            ]
        rules.append(rule)
    continuous = {
        "rule_name": "continuous",
        "target_vault_name": "vault",
        "schedule": aws_cron.daily(SCHEDULES),
        "enable_continuous_backup": True,
        "lifecycle": {"delete_after": keep_days.get("continuous", retention.wal.days)},
    }
    if copy_to:
        continuous["copy_actions"] = [
            {"destination_vault_arn": copy_to, "lifecycle": {"delete_after": retention.wal.days}}
        ]
    rules.append(continuous)
    return rules


def plan(rules: list[dict]) -> None:
    aws.backup.Plan("plan", region=PRIMARY_REGION, rules=rules)


def test_copies_cross_region_catches_missing_and_same_region_copies():
    assert violations(backup.backup_rule_copies_cross_region, lambda: plan(plan_rules(PROD))) == []
    missing = violations(backup.backup_rule_copies_cross_region, lambda: plan(plan_rules(PROD, copy_to=None)))
    assert len(missing) == len(PROD.classes) + 1  # every rule, continuous included
    same = violations(
        backup.backup_rule_copies_cross_region, lambda: plan(plan_rules(PROD, copy_to=SAME_REGION_VAULT_ARN))
    )
    assert len(same) == len(PROD.classes) + 1


@pytest.mark.parametrize(
    ("tier_site", "retention", "short"),
    [
        (PROD_SITE, PROD, {"daily": PROD.daily.days - 1}),
        (PROD_SITE, PROD, {"weekly": PROD.weekly.days - 1}),
        (PROD_SITE, PROD, {"monthly": PROD.monthly.days - 1}),
        (PROD_SITE, PROD, {"copy_yearly": PROD.yearly.days - 1}),
        (PROD_SITE, PROD, {"continuous": PROD.wal.days - 1}),
        (STAGING_SITE, STAGING, {"daily": STAGING.daily.days - 1}),
    ],
    ids=["prod-daily", "prod-weekly", "prod-monthly", "prod-yearly-copy", "prod-continuous", "staging-daily"],
)
def test_retention_catches_a_generation_kept_too_short(tier_site, retention, short):
    assert violations(backup.retention_at_least_tier_minimum, lambda: plan(plan_rules(retention)), site=tier_site) == []
    found = violations(
        backup.retention_at_least_tier_minimum, lambda: plan(plan_rules(retention, **short)), site=tier_site
    )
    (key,) = short
    generation = key.removeprefix("copy_")
    assert names(found) == {"plan"} and found, found
    assert all(f"rule {generation}" in v.message for v in found), found


def test_retention_is_judged_by_the_sites_tier():
    """Staging's plan is fine for staging and too short for prod."""
    assert (
        violations(backup.retention_at_least_tier_minimum, lambda: plan(plan_rules(STAGING)), site=STAGING_SITE) == []
    )
    found = violations(backup.retention_at_least_tier_minimum, lambda: plan(plan_rules(STAGING)), site=PROD_SITE)
    assert any("longest generation" in v.message for v in found)
    assert any("daily" in v.message for v in found)


def store_retention(
    lock_max: int = PROD.longest.days,
    replicated_backups: int = PROD.wal.days,
    redis: int = PROD.redis.days,
    noncurrent: int = PROD.deleted_files.days,
    audit: int = PROD.audit_logs.days,
    lock_days: int = PROD.shortest.days,
    trail_days: int = PROD.audit_logs.days,
) -> None:
    vault = aws.backup.Vault("vault", region=DR_REGION)
    aws.backup.VaultLockConfiguration(
        "vault-lock", region=DR_REGION, backup_vault_name=vault.name, max_retention_days=lock_max, changeable_for_days=3
    )
    aws.rds.InstanceAutomatedBackupsReplication(
        "pitr-replica",
        region=DR_REGION,
        source_db_instance_arn=f"arn:aws:rds:{PRIMARY_REGION}:{ACCOUNT}:db:primary",
        kms_key_id=f"arn:aws:kms:{DR_REGION}:{ACCOUNT}:key/k",
        retention_period=replicated_backups,
    )
    aws.elasticache.ReplicationGroup(
        "redis", region=DR_REGION, description="cache", snapshot_retention_limit=redis, node_type="cache.t4g.small"
    )
    files = aws.s3.Bucket("files", region=DR_REGION)
    aws.s3.BucketLifecycleConfiguration(
        "files-lifecycle",
        region=DR_REGION,
        bucket=files.id,
        rules=[
            {
                "id": "deleted",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": noncurrent},
            }
        ],
    )
    logs = aws.s3.Bucket("logs", region=DR_REGION)
    aws.s3.BucketLogging(
        "files-logging", region=DR_REGION, bucket=files.id, target_bucket=logs.bucket, target_prefix="files/"
    )
    aws.s3.BucketLifecycleConfiguration(
        "logs-lifecycle",
        region=DR_REGION,
        bucket=logs.id,
        rules=[{"id": "audit", "status": "Enabled", "filter": {}, "expiration": {"days": audit}}],
    )
    trail = aws.s3.Bucket("trail", region=DR_REGION, tags={"purpose": "audit-logs"})
    aws.s3.BucketLifecycleConfiguration(
        "trail-lifecycle",
        region=DR_REGION,
        bucket=trail.id,
        rules=[{"id": "audit", "status": "Enabled", "filter": {}, "expiration": {"days": trail_days}}],
    )
    backups = aws.s3.Bucket("backups", region=DR_REGION, object_lock_enabled=True, tags={"purpose": "backups"})
    aws.s3.BucketObjectLockConfiguration(
        "backups-lock",
        region=DR_REGION,
        bucket=backups.id,
        rule={"default_retention": {"mode": "COMPLIANCE", "days": lock_days}},
    )


@pytest.mark.parametrize(
    ("short", "culprit"),
    [
        ({"lock_max": PROD.longest.days - 1}, "vault-lock"),
        ({"replicated_backups": PROD.wal.days - 1}, "pitr-replica"),
        ({"redis": PROD.redis.days - 1}, "redis"),
        ({"noncurrent": PROD.deleted_files.days - 1}, "files-lifecycle"),
        ({"audit": PROD.audit_logs.days - 1}, "logs-lifecycle"),
        ({"lock_days": PROD.shortest.days - 1}, "backups-lock"),
        ({"trail_days": PROD.audit_logs.days - 1}, "trail-lifecycle"),
    ],
    ids=["vault-lock-max", "pitr-replica", "redis", "deleted-files", "access-logs", "object-lock-default", "trail"],
)
def test_retention_catches_short_store_retention(short, culprit):
    assert violations(backup.retention_at_least_tier_minimum, store_retention, site=DR_SITE) == []
    found = violations(backup.retention_at_least_tier_minimum, lambda: store_retention(**short), site=DR_SITE)
    assert names(found) == {culprit}, found
