"""Backup stores and AWS Backup plans: immutability, cross-region copies, retention floors."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, StackValidationPolicy

from drplan.names import Role
from drplan.retention import GfsClass, Retention, Tier

from ._util import (
    BUCKET,
    LIFECYCLE,
    OBJECT_LOCK,
    SITE_SCHEMA,
    Stack,
    arn_region,
    as_list,
    each_known,
    get,
    label,
    number,
    stack_policy,
    tags,
    truthy,
)

VAULT = "aws:backup/vault:Vault"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
AIR_GAPPED_VAULT = "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault"
PLAN = "aws:backup/plan:Plan"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
REDIS_CLUSTER = "aws:elasticache/cluster:Cluster"

DAYS_PER_YEAR = 365


def is_backup_bucket(b: PolicyResource) -> bool:
    """A bucket that stores backups: tagged purpose=*backup* (the backup functions' bucket and its
    replica) or created with Object Lock (a store meant to be immutable)."""
    return "backup" in str(tags(b.props).get("purpose", "")).lower() or truthy(get(b.props, "objectLockEnabled"))


def _lock_configs(stack: Stack) -> dict[str, list[PolicyResource]]:
    return stack.configs_by_bucket(OBJECT_LOCK)


def _default_retention(cfg: PolicyResource) -> tuple[str | None, float | None]:
    dr = get(cfg.props, "rule", "defaultRetention") or {}
    days = number(get(dr, "days"))
    years = number(get(dr, "years"))
    total = days if days is not None else (years * DAYS_PER_YEAR if years is not None else None)
    return get(dr, "mode"), total


# --- immutability ------------------------------------------------------------------


@stack_policy
def _immutable(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    if site.tier is not Tier.PROD:
        return  # staging keeps no lock (infra.config: vault lock defaults to the prod tier)
    locks = _lock_configs(stack)

    def check_bucket(b: PolicyResource) -> None:
        if not is_backup_bucket(b):
            return
        if not truthy(get(b.props, "objectLockEnabled")):
            report(f"{label(b)} stores backups but was not created with objectLockEnabled", b.urn)
            return
        modes = [_default_retention(c)[0] for c in locks.get(b.urn, [])]
        if "COMPLIANCE" not in modes:
            report(
                f"{label(b)} has no BucketObjectLockConfiguration with a COMPLIANCE default retention "
                f"(found: {modes or 'none'})",
                b.urn,
            )

    vault_locks = stack.of_type(VAULT_LOCK)

    def check_vault(v: PolicyResource) -> None:
        if site.role is not Role.DR:
            return
        name = get(v.props, "name")
        mine = [lk for lk in vault_locks if _lock_targets(stack, lk) in (v.urn, name)]
        if not mine:
            report(f"{label(v)} (DR vault) has no VaultLockConfiguration", v.urn)
        elif not any(get(lk.props, "changeableForDays") is not None for lk in mine):
            report(
                f"{label(v)} (DR vault) is locked in governance mode: set changeableForDays for compliance mode",
                v.urn,
            )

    each_known(stack.of_type(BUCKET), check_bucket)
    each_known(stack.of_type(VAULT), check_vault)


def _lock_targets(stack: Stack, lock: PolicyResource) -> str | None:
    vault = stack.find(lock, "backupVaultName", VAULT, ("name", "id"))
    return vault.urn if vault is not None else get(lock.props, "backupVaultName")


backup_store_immutable = StackValidationPolicy(
    name="backup-store-immutable",
    description=(
        "In the prod tier, every backup store is immutable in compliance mode: buckets that store backups "
        "(tag purpose=*backup*, or created with Object Lock) have Object Lock with a COMPLIANCE default "
        "retention, and the DR site's backup vaults have a Vault Lock in compliance mode "
        "(changeableForDays set). Staging keeps no lock. Mandatory: this is the plan's ransomware "
        "scenario; an attacker holding the account must not be able to delete or shorten backups."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_immutable,
)


# --- cross-region copies --------------------------------------------------------------


@stack_policy
def _copies(stack: Stack, report: ReportViolation) -> None:
    def check(plan: PolicyResource) -> None:
        region = stack.region(plan)
        for rule in as_list(get(plan.props, "rules")):
            name = get(rule, "ruleName") or "?"
            dests = [get(c, "destinationVaultArn") for c in as_list(get(rule, "copyActions"))]
            regions = [arn_region(d) for d in dests]
            if not any(r is not None and r != region for r in regions):
                report(
                    f"{label(plan)} rule {name} copies to no vault in another region than {region} "
                    f"(copy destinations: {dests or 'none'})",
                    plan.urn,
                )

    each_known(stack.of_type(PLAN), check)


backup_rule_copies_cross_region = StackValidationPolicy(
    name="backup-rule-copies-cross-region",
    description=(
        "Every rule of every AWS Backup plan has a copy action to a vault in another region than the "
        "plan's. Mandatory: a recovery point that exists only in the primary region is lost with it "
        "(the plan's data-centre-loss scenario: 'restore database from backup in DR region')."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_copies,
)


# --- retention floors ----------------------------------------------------------------

def cron_cadence(schedule: str) -> GfsClass | str | None:
    """What an AWS cron expression's shape says a rule is (whatever the time of day):
    a GFS generation, "incremental" (an hour step), or None when it is none of them."""
    fields = schedule.strip().removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6:
        return None
    _minute, hour, dom, month, dow, _year = fields
    if "/" in hour:
        return "incremental"
    if dom == "1" and month == "1" and dow == "?":
        return GfsClass.YEARLY
    if dom == "1" and month == "*" and dow == "?":
        return GfsClass.MONTHLY
    if dom == "?" and month == "*" and dow not in ("*", "?"):
        return GfsClass.WEEKLY
    if dom == "*" and month == "*" and dow == "?":
        return GfsClass.DAILY
    return None


def rule_floor(rule: Any, retention: Retention) -> tuple[str, int]:
    """What a backup rule must keep at least: (which generation, days)."""
    if truthy(get(rule, "enableContinuousBackup")):
        return "continuous (WAL)", retention.wal.days
    schedule = str(get(rule, "schedule") or "").replace("  ", " ")
    cadence = cron_cadence(schedule)
    gfs = cadence if isinstance(cadence, GfsClass) else None
    if gfs is None:
        name = str(get(rule, "ruleName") or "").lower()
        gfs = next((c for c in GfsClass if c.value in name), None)
    if gfs is not None and gfs in retention.classes:
        return gfs.value, retention.for_class(gfs).days
    if cadence == "incremental":
        return "incremental", retention.incremental.days
    return f"unclassified ({schedule or 'no schedule'})", retention.shortest.days


def _kept_days(lifecycle: Any) -> float | None:
    """deleteAfter in days, None when kept forever (no deleteAfter)."""
    return number(get(lifecycle, "deleteAfter"))


@stack_policy
def _retention(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    retention = site.retention  # the tier's floors, lengthened by the stack's overrides
    tier = site.tier.value

    def short(kept: float | None, floor: int) -> bool:
        return kept is not None and kept < floor

    def check_plan(plan: PolicyResource) -> None:
        longest = 0.0
        for rule in as_list(get(plan.props, "rules")):
            name = get(rule, "ruleName") or "?"
            what, floor = rule_floor(rule, retention)
            kept = _kept_days(get(rule, "lifecycle"))
            longest = max(longest, float("inf") if kept is None else kept)
            if short(kept, floor):
                report(f"{label(plan)} rule {name} ({what}) keeps {kept:g} d < {floor} d ({tier} tier)", plan.urn)
            for copy in as_list(get(rule, "copyActions")):
                ckept = _kept_days(get(copy, "lifecycle"))
                if short(ckept, floor):
                    report(
                        f"{label(plan)} rule {name} copy to {get(copy, 'destinationVaultArn')} keeps "
                        f"{ckept:g} d < {floor} d ({tier} tier)",
                        plan.urn,
                    )
        if longest < retention.longest.days:
            report(
                f"{label(plan)} keeps nothing as long as the {tier} tier's longest generation "
                f"({retention.longest}, {retention.longest.days} d)",
                plan.urn,
            )

    def check_vault_lock(lock: PolicyResource) -> None:
        max_days = number(get(lock.props, "maxRetentionDays"))
        if max_days is not None and max_days < retention.longest.days:
            report(
                f"{label(lock)} maxRetentionDays {max_days:g} < {retention.longest.days} d: the {tier} tier's "
                f"{retention.longest} recovery points would be refused",
                lock.urn,
            )

    def check_backup_replication(rep: PolicyResource) -> None:
        kept = number(get(rep.props, "retentionPeriod"))
        # AWS's default for InstanceAutomatedBackupsReplication is 7 days.
        if kept is not None and kept < retention.wal.days:
            report(f"{label(rep)} retentionPeriod {kept:g} < {retention.wal.days} d", rep.urn)

    def check_redis(r: PolicyResource) -> None:
        kept = number(get(r.props, "snapshotRetentionLimit"))
        if kept is None or kept < retention.redis.days:
            report(f"{label(r)} snapshotRetentionLimit {kept} < {retention.redis.days} d", r.urn)

    log_targets = stack.log_target_buckets()
    locks = stack.configs_by_bucket(OBJECT_LOCK)

    def check_lifecycle(cfg: PolicyResource) -> None:
        b = stack.bucket_of(cfg)
        # Access logs and the audit trail are the plan's audit logs (kept audit_logs).
        is_log = b is not None and (b.urn in log_targets or "audit" in str(tags(b.props).get("purpose", "")).lower())
        backups = b is not None and is_backup_bucket(b)
        for rule in as_list(get(cfg.props, "rules")):
            if get(rule, "status") != "Enabled":
                continue
            rid = get(rule, "id") or "?"
            noncurrent = number(get(rule, "noncurrentVersionExpiration", "noncurrentDays"))
            if short(noncurrent, retention.deleted_files.days):
                report(
                    f"{label(cfg)} rule {rid} expires noncurrent versions after {noncurrent:g} d < "
                    f"{retention.deleted_files.days} d (deleted files)",
                    cfg.urn,
                )
            expires = number(get(rule, "expiration", "days"))
            if expires is None:
                continue
            floor, what = _expiration_floor(rule, retention, is_log, backups)
            if floor is not None and expires < floor:
                report(f"{label(cfg)} rule {rid} expires objects after {expires:g} d < {floor} d ({what})", cfg.urn)

    def check_object_lock(b: PolicyResource) -> None:
        for cfg in locks.get(b.urn, []):
            _mode, kept = _default_retention(cfg)
            if is_backup_bucket(b) and kept is not None and kept < retention.shortest.days:
                report(
                    f"{label(cfg)} default retention {kept:g} d < {retention.shortest.days} d ({tier} tier)",
                    cfg.urn,
                )

    each_known(stack.of_type(PLAN), check_plan)
    each_known(stack.of_type(VAULT_LOCK), check_vault_lock)
    each_known(stack.of_type(BACKUP_REPLICATION), check_backup_replication)
    each_known(stack.of_type(REDIS_GROUP, REDIS_CLUSTER), check_redis)
    each_known(stack.of_type(LIFECYCLE), check_lifecycle)
    each_known(stack.of_type(BUCKET), check_object_lock)


def _expiration_floor(rule: Any, retention: Retention, is_log: bool, backups: bool) -> tuple[int | None, str]:
    if is_log:
        return retention.audit_logs.days, "audit logs"
    flt = get(rule, "filter") or {}
    tag_values = [str(get(t, "value") or "").lower() for t in [get(flt, "tag"), *as_list(get(flt, "and", "tags"))]]
    and_tags = get(flt, "and", "tags")
    if isinstance(and_tags, dict):
        tag_values += [str(v).lower() for v in and_tags.values()]
    for c in retention.classes:
        if c.value in tag_values:
            return retention.for_class(c).days, f"{c.value} generation"
    if backups:
        return retention.shortest.days, "backups"
    return None, ""


retention_at_least_tier_minimum = StackValidationPolicy(
    name="retention-at-least-tier-minimum",
    description=(
        "Every retention is at least the tier's minimum from drplan.retention.RETENTION, lengthened by the "
        "stack's retention overrides (the site export or the stack file): each AWS Backup rule "
        "and its copies keep at least their GFS generation (daily/weekly/monthly/yearly by schedule or "
        "name; continuous backup the WAL window) and the plan keeps something as long as the tier's "
        "longest generation; vault-lock maxRetentionDays admits that; RDS "
        "automated-backup replication covers the WAL window; Redis snapshots the Redis retention; "
        "bucket lifecycles keep deleted files, audit logs (access-log targets, purpose=*audit*) and backup "
        "generations long enough; backup buckets' Object Lock default retention covers the shortest "
        "generation. Mandatory: a retention "
        "shorter than the plan loses restore points the plan promises (and audit logs GDPR requires)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_retention,
)


POLICIES = [backup_store_immutable, backup_rule_copies_cross_region, retention_at_least_tier_minimum]
