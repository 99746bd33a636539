"""AWS Backup: a vault per site and one plan realising the DR model's GFS tiers.

`BackupVault`: encrypted with a customer key, a vault policy that refuses deleting or
shortening recovery points to everyone (only the lifecycle expires them), and optionally
Vault Lock in compliance mode (after `changeable_for_days` nobody, root included, can
delete a recovery point early, shorten its retention or remove the lock: ransomware).

`GfsBackupPlan`: one rule per generation of the tier (daily / weekly / monthly / yearly,
yearly moving to cold storage where the resource supports it), a 6-hourly snapshot rule
and a continuous-backup rule (point-in-time recovery); every rule copies to the DR vault.
Resources are selected by tag. A weekly restore test restores the latest recovery point
and keeps it for a validation window.

All numbers come from drplan; `rule_specs` is pure so that both sites (the prod plan
and the dr stack's locked vault) derive the same bounds from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from drplan.names import BACKUP_TAG, STACK_TAG_KEY
from drplan.periods import Period
from drplan.retention import COLD_STORAGE_AFTER, COLD_STORAGE_MIN_STAY, GfsClass, Retention, Tier, effective_retention
from drplan.schedules import SCHEDULES, Schedules
from drplan.thresholds import RESTORE_VALIDATION_WINDOW

from . import cron
from .iam import service_trust_policy
from .kms import CustomerKey

# Resources carrying this tag are backed up (the database, the file buckets).
SELECTION_TAG = BACKUP_TAG
# AWS Backup: continuous backups are kept 1..35 days.
CONTINUOUS_MAX_RETENTION_DAYS = 35
# Vault Lock: the cooling-off period before a compliance-mode lock becomes immutable is at
# least 3 days. Exactly the minimum: long enough to notice a mistake, short to be protected.
VAULT_LOCK_MIN_CHANGEABLE_DAYS = 3
# A job must start within this long of its slot (AWS Backup's minimum start window).
START_WINDOW_MINUTES = 60
# Names AWS Backup accepts.
VAULT_NAME = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")
RESTORE_TESTING_NAME = re.compile(r"^[a-zA-Z0-9_]{1,50}$")
SERVICE_ROLE_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
    "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
)


@dataclass(frozen=True)
class RuleSpec:
    """One backup rule, cloud-neutral enough to test and to bound the vault lock."""

    name: str
    schedule: str
    delete_after_days: int
    cold_storage_after_days: int | None = None
    continuous: bool = False


def rule_specs(retention: Retention, schedules: Schedules = SCHEDULES) -> list[RuleSpec]:
    """The plan's rules for a tier; every number from the model."""
    if retention.wal.days > CONTINUOUS_MAX_RETENTION_DAYS:
        raise ValueError(f"continuous backups are kept at most {CONTINUOUS_MAX_RETENTION_DAYS} days")
    specs = [
        # Continuous WAL: point-in-time recovery for the model's WAL retention.
        RuleSpec("continuous", cron.daily(schedules), retention.wal.days, continuous=True),
        # Snapshots every `incremental_every`: the DR copies' recovery point objective.
        RuleSpec("incremental", cron.incremental(schedules), retention.incremental.days),
    ]
    for gfs in retention.classes:
        days = retention.for_class(gfs).days
        cold = None
        if gfs is GfsClass.YEARLY:
            cold = COLD_STORAGE_AFTER.days
            if days < cold + COLD_STORAGE_MIN_STAY.days:
                raise ValueError(f"{gfs.value}: delete_after {days} d < cold storage {cold} d + 90 d")
        specs.append(RuleSpec(gfs.value, cron.for_class(schedules, gfs), days, cold_storage_after_days=cold))
    return specs


def lock_bounds(retention: Retention, schedules: Schedules = SCHEDULES) -> tuple[int, int]:
    """(min, max) retention days a locked vault must accept: every rule's copy fits."""
    days = [s.delete_after_days for s in rule_specs(retention, schedules)]
    return min(days), max(days)


def _lifecycle(spec: RuleSpec) -> dict:
    lifecycle: dict = {"delete_after": spec.delete_after_days}
    if spec.cold_storage_after_days is not None:
        lifecycle["cold_storage_after"] = spec.cold_storage_after_days
        # RDS snapshots and S3 backups have no cold tier: the transition applies only where
        # the resource type supports it, instead of failing the job.
        lifecycle["opt_in_to_archive_for_supported_resources"] = True
    return lifecycle


def vault_account_copy_lifecycle(spec: RuleSpec, retention: Retention) -> dict | None:
    """What a rule's copy into the backup-only account keeps: its GFS generation's retention. The
    continuous rule's copy is a daily snapshot (a cross-account copy of a continuous backup is a
    snapshot, AWS Backup developer guide "Copying continuous backups"): kept as the daily
    generation. The 6-hourly snapshots are not copied there (None)."""
    if spec.continuous:
        return {"delete_after": retention.daily.days}
    if spec.name in {c.value for c in retention.classes}:
        return _lifecycle(spec)
    return None


def deny_early_deletion_policy(vault_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RetentionIsEnforcedByTheLifecycleOnly",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"],
                    # In a vault access policy "*" is this vault's recovery points.
                    "Resource": "*",
                }
            ],
        }
    )


@dataclass
class BackupVaultArgs:
    region: str
    kms_key: CustomerKey
    retention: Retention
    locked: bool
    changeable_for_days: int = VAULT_LOCK_MIN_CHANGEABLE_DAYS
    # Physical names AWS requires to be unique per account and region (final snapshots, the
    # vault, restore-testing plans) derive from this; give it the stack, e.g. "staging-database",
    # so that stacks sharing an account never collide. Default: the resource name.
    physical_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The vault's access policy given its ARN (default: deny_early_deletion_policy), and the
    # lock's (min, max) retention days (default: lock_bounds of the retention's rules).
    access_policy: Callable[[str], str] | None = None
    lock_bounds: tuple[int, int] | None = None


class BackupVault(pulumi.ComponentResource):
    """`postoucancer:aws:BackupVault`."""

    vault: aws.backup.Vault
    lock: aws.backup.VaultLockConfiguration | None = None
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: BackupVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:BackupVault", name, None, opts)
        vault_name = f"postoucancer-{args.physical_name or name}"
        if not VAULT_NAME.match(vault_name):
            raise ValueError(f"backup vault name {vault_name!r} is not 2..50 of [a-zA-Z0-9-_]")
        if args.changeable_for_days < VAULT_LOCK_MIN_CHANGEABLE_DAYS:
            raise ValueError(f"vault lock changeable_for_days must be >= {VAULT_LOCK_MIN_CHANGEABLE_DAYS}")
        self.vault = aws.backup.Vault(
            name,
            region=args.region,
            name=vault_name,
            kms_key_arn=args.kms_key.arn,
            force_destroy=False,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.backup.VaultPolicy(
            name,
            region=args.region,
            backup_vault_name=self.vault.name,
            policy=self.vault.arn.apply(args.access_policy or deny_early_deletion_policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.locked:
            low, high = args.lock_bounds or lock_bounds(args.retention)
            self.lock = aws.backup.VaultLockConfiguration(
                name,
                region=args.region,
                backup_vault_name=self.vault.name,
                min_retention_days=low,
                max_retention_days=high,
                changeable_for_days=args.changeable_for_days,  # set: compliance mode (governance without)
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
        self.arn = self.vault.arn
        self.register_outputs({"arn": self.arn, "locked": args.locked})


@dataclass
class RestoreTest:
    """Weekly restore of the latest recovery point of `resource_arns` (RDS)."""

    resource_arns: list[pulumi.Input[str]]
    subnet_group_name: pulumi.Input[str]
    security_group_ids: list[pulumi.Input[str]]


@dataclass
class GfsBackupPlanArgs:
    region: str
    vault: BackupVault
    retention: Retention
    copy_to_vault_arn: pulumi.Input[str] | None  # the DR vault (None: not known yet)
    kms_key_arns: list[pulumi.Input[str]]  # keys of the protected resources and the DR vault
    restore_test: RestoreTest | None = None
    # The backup-only account's vault in this plan's region (infra/vault): every GFS rule, and the
    # continuous rule's daily snapshot, is copied there too (vault_account_copy_lifecycle).
    vault_account_copy_arn: pulumi.Input[str] | None = None
    # None: every resource tagged SELECTION_TAG. Otherwise only these resource ARNs (wildcards
    # allowed) that also carry the tag: the DR site selects RDS instances only, so its own
    # copy of the files (a replica of prod's, already copied) is not backed up twice.
    only_resources: list[pulumi.Input[str]] | None = None
    # The stack whose resources this plan protects (their provider default tag STACK_TAG_KEY):
    # selections are account-wide, so without it a staging database in prod's account would be
    # backed up into prod's compliance-locked vault for 7 years.
    stack: str | None = None
    schedules: Schedules = field(default_factory=lambda: SCHEDULES)
    # Physical names AWS requires to be unique per account and region (final snapshots, the
    # vault, restore-testing plans) derive from this; give it the stack, e.g. "staging-database",
    # so that stacks sharing an account never collide. Default: the resource name.
    physical_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class GfsBackupPlan(pulumi.ComponentResource):
    """`postoucancer:aws:GfsBackupPlan`."""

    plan: aws.backup.Plan
    selection: aws.backup.Selection
    role: aws.iam.Role

    @classmethod
    def for_tier(
        cls,
        name: str,
        tier: Tier,
        *,
        region: str,
        vault: BackupVault,
        copy_to_vault_arn: pulumi.Input[str] | None,
        kms_key_arns: list[pulumi.Input[str]],
        overrides: dict[str, Period] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **options: Any,
    ) -> GfsBackupPlan:
        """The plan's whole GFS pattern for a tier in one call (CDK's
        `BackupPlan.dailyWeeklyMonthly7YearRetention` in spirit): prod keeps daily 30 d, weekly
        12 w, monthly 12 mo and yearly 7 y, staging daily 7 d and weekly 4 w (drplan), each
        lengthened by `overrides`; every rule copies to `copy_to_vault_arn`. `options` are the
        other GfsBackupPlanArgs fields (restore_test, only_resources, physical_name, ...)."""
        retention = effective_retention(tier, overrides)
        args = GfsBackupPlanArgs(
            region=region,
            vault=vault,
            retention=retention,
            copy_to_vault_arn=copy_to_vault_arn,
            kms_key_arns=kms_key_arns,
            **options,
        )
        return cls(name, args, opts)

    def __init__(self, name: str, args: GfsBackupPlanArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:GfsBackupPlan", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.specs = rule_specs(args.retention, args.schedules)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=service_trust_policy("backup.amazonaws.com"),
            description="AWS Backup: back up, copy and restore-test the data tier",
            opts=child,
        )
        for i, policy_arn in enumerate(SERVICE_ROLE_POLICIES):
            aws.iam.RolePolicyAttachment(f"{name}-role-{i}", role=self.role.name, policy_arn=policy_arn, opts=child)
        aws.iam.RolePolicy(
            f"{name}-keys",
            role=self.role.id,
            policy=pulumi.Output.all(*args.kms_key_arns).apply(
                lambda arns: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "UseTheDataTierKeys",
                                "Effect": "Allow",
                                "Action": [
                                    "kms:Decrypt",
                                    "kms:Encrypt",
                                    "kms:GenerateDataKey",
                                    "kms:GenerateDataKeyWithoutPlaintext",
                                    "kms:ReEncryptFrom",
                                    "kms:ReEncryptTo",
                                    "kms:DescribeKey",
                                    "kms:CreateGrant",
                                ],
                                "Resource": sorted(arns),
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        rules = []
        for spec in self.specs:
            rule: dict = {
                "rule_name": spec.name,
                "target_vault_name": args.vault.vault.name,
                "schedule": spec.schedule,
                "schedule_expression_timezone": "Etc/UTC",
                "start_window": START_WINDOW_MINUTES,
                "enable_continuous_backup": spec.continuous,
                "lifecycle": _lifecycle(spec),
                "recovery_point_tags": {"gfs": spec.name},
            }
            copies = []
            if args.copy_to_vault_arn is not None:
                copies.append({"destination_vault_arn": args.copy_to_vault_arn, "lifecycle": _lifecycle(spec)})
            account_copy = vault_account_copy_lifecycle(spec, args.retention)
            if args.vault_account_copy_arn is not None and account_copy is not None:
                copies.append({"destination_vault_arn": args.vault_account_copy_arn, "lifecycle": account_copy})
            if copies:
                rule["copy_actions"] = copies
            rules.append(rule)
        self.plan = aws.backup.Plan(
            name,
            region=region,
            rules=rules,
            tags=args.tags,
            opts=child,
        )
        # Conditions are AND-ed with each other and with `resources` (ListOfTags would be OR-ed:
        # AWS Backup API, BackupSelection); AWS recommends Conditions over ListOfTags.
        chosen: dict = {"conditions": [{"string_equals": self.selection_conditions(args)}]}
        if args.only_resources is not None:
            chosen["resources"] = args.only_resources
        self.selection = aws.backup.Selection(
            name,
            region=region,
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            **chosen,
            opts=child,
        )
        self.restore_testing_plan = None
        if args.restore_test is not None:
            self._restore_test(name, args, args.restore_test)
        self.register_outputs({"planId": self.plan.id, "rules": [s.name for s in self.specs]})

    @staticmethod
    def selection_conditions(args: GfsBackupPlanArgs) -> list[dict[str, str]]:
        """Tagged for backup, and (when given) of this stack only."""
        key, value = SELECTION_TAG
        conditions = [{"key": f"aws:ResourceTag/{key}", "value": value}]
        if args.stack is not None:
            conditions.append({"key": f"aws:ResourceTag/{STACK_TAG_KEY}", "value": args.stack})
        return conditions

    def _restore_test(self, name: str, args: GfsBackupPlanArgs, test: RestoreTest) -> None:
        child = pulumi.ResourceOptions(parent=self)
        plan_name = f"postoucancer_{args.physical_name or name}_restore_test".replace("-", "_")
        if not RESTORE_TESTING_NAME.match(plan_name):
            raise ValueError(f"restore testing plan name {plan_name!r} is not 1..50 of [a-zA-Z0-9_]")
        self.restore_testing_plan = aws.backup.RestoreTestingPlan(
            f"{name}-restore-test",
            region=args.region,
            name=plan_name,
            schedule_expression=cron.restore_test(args.schedules),
            schedule_expression_timezone="Etc/UTC",
            recovery_point_selection={
                "algorithm": "LATEST_WITHIN_WINDOW",
                "include_vaults": [args.vault.arn],
                "recovery_point_types": ["SNAPSHOT"],
                "selection_window_days": args.schedules.restore_test_every.days,
            },
            tags=args.tags,
            opts=child,
        )
        self.restore_testing_selection = aws.backup.RestoreTestingSelection(
            f"{name}-restore-test-db",
            region=args.region,
            name="database",
            restore_testing_plan_name=self.restore_testing_plan.name,
            protected_resource_type="RDS",
            protected_resource_arns=test.resource_arns,
            # "*" would otherwise test any RDS recovery point of the account's vaults; named
            # instances are scoped already (and a copy's source may be another stack's).
            protected_resource_conditions={"string_equals": self.selection_conditions(args)[1:]}
            if args.stack is not None and "*" in [a for a in test.resource_arns if isinstance(a, str)]
            else None,
            iam_role_arn=self.role.arn,
            validation_window_hours=int(RESTORE_VALIDATION_WINDOW.total_seconds() // 3600),
            # Restore into the site's private network, reachable by the verify function only.
            restore_metadata_overrides={
                "dbsubnetgroupname": test.subnet_group_name,
                "vpcsecuritygroupids": pulumi.Output.all(*test.security_group_ids).apply(json.dumps),
                "publiclyaccessible": "false",
            },
            opts=child,
        )
