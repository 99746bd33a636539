"""Long-term GFS retention of the PostgreSQL flexible server in an Azure Backup (Data
Protection) vault (azure-native `dataprotection`, API 2025-01-01).

`PostgresBackupVault` is one vault per site: geo-redundant vault storage with Cross Region
Restore (restores to the paired region), soft delete, immutability (Locked where the site is
locked: irreversible, nobody can shorten a retention or delete a recovery point early),
optionally encrypted with a customer-managed key. Its policy keeps the plan's GFS generations
(drplan.retention, never literals): the default rule keeps every backup `daily`, tags keep the
weekly, monthly and yearly ones longer. `protect_server` adds the backup instance of a server
and the role assignments the vault's identity needs for it.

What Azure Backup for PostgreSQL flexible server supports, encoded here:
- datasource type `Microsoft.DBforPostgreSQL/flexibleServers`, one *Full* backup rule into the
  `VaultStore` ("Back up Azure Database for PostgreSQL - flexible server using Azure CLI");
- schedules are weekly only, on one or more days of the week: a daily backup is seven weekly
  intervals ("Create Backup policy": "Currently, only Weekly backup option is available");
- retention in the vault store from seven days to ten years; yearly beats monthly beats weekly,
  the default rule applies when no tag does (ibid.);
- the vault must be in the server's region ("Support matrix": same tenant and region);
- the vault's identity needs *PostgreSQL Flexible Server Long Term Retention Backup Role* on the
  server and *Reader* on its resource group ("About ... Flexible server backup", permissions);
- Cross Region Restore needs geo-redundant vault storage and cannot be disabled once on;
  soft delete keeps deleted data 14..180 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pulumi
import pulumi_azure_native as azure_native

from drplan.periods import Period, Unit, days, years
from drplan.retention import GfsClass, Retention
from drplan.schedules import SCHEDULES, WEEKDAYS, Schedules

from . import _rbac

POSTGRES_FLEXIBLE_DATASOURCE = "Microsoft.DBforPostgreSQL/flexibleServers"
VAULT_STORE = {"data_store_type": "VaultStore", "object_type": "DataStoreInfoBase"}
MIN_VAULT_RETENTION = days(7)
MAX_VAULT_RETENTION = years(10)
SOFT_DELETE_DAYS = 14  # Azure's default, kept at no extra cost
SOFT_DELETE_RANGE = (14, 180)
# Tag evaluation order: lower first ("yearly ... then monthly, and then weekly"); the values
# are those `az dataprotection backup-policy tag` uses.
TAG_PRIORITY = {GfsClass.YEARLY: 10, GfsClass.MONTHLY: 15, GfsClass.WEEKLY: 20}
DEFAULT_TAG_PRIORITY = 99
_ISO_UNIT = {Unit.DAYS: "D", Unit.WEEKS: "W", Unit.MONTHS: "M", Unit.YEARS: "Y"}
_A_MONDAY = date(2024, 1, 1)


def iso_duration(period: Period, what: str = "retention") -> str:
    """A plan period as the ISO 8601 duration the policy takes, within the vault's bounds."""
    if not MIN_VAULT_RETENTION.days <= period.days <= MAX_VAULT_RETENTION.days:
        raise ValueError(
            f"{what}: {period} is outside what the Backup vault keeps for PostgreSQL flexible server "
            f"({MIN_VAULT_RETENTION} to {MAX_VAULT_RETENTION})"
        )
    return f"P{period.count}{_ISO_UNIT[period.unit]}"


def daily_schedule(schedules: Schedules = SCHEDULES) -> list[str]:
    """Every day at the plan's slot, as the seven weekly intervals the service accepts."""
    t = schedules.full_backup_at_utc
    return [
        f"R/{(_A_MONDAY + timedelta(days=d)).isoformat()}T{t.hour:02d}:{t.minute:02d}:00+00:00/P1W" for d in range(7)
    ]


def _criteria(gfs: GfsClass, schedules: Schedules) -> list[dict]:
    base = {"object_type": "ScheduleBasedBackupCriteria"}
    if gfs is GfsClass.WEEKLY:
        # The plan's weekly day (drplan.schedules.weekly_on), not the service's "first of week".
        return [{**base, "days_of_the_week": [WEEKDAYS[schedules.weekly_on].capitalize()]}]
    marker = {GfsClass.MONTHLY: "FirstOfMonth", GfsClass.YEARLY: "FirstOfYear"}[gfs]
    return [{**base, "absolute_criteria": [marker]}]


def policy_rules(retention: Retention, schedules: Schedules = SCHEDULES) -> list[dict]:
    """The backup rule (daily, tagged) and one retention rule per generation the tier keeps."""
    tagged = [c for c in retention.classes if c is not GfsClass.DAILY]
    tagging = [
        {
            "is_default": False,
            "tag_info": {"tag_name": c.value.capitalize()},
            "tagging_priority": TAG_PRIORITY[c],
            "criteria": _criteria(c, schedules),
        }
        for c in tagged
    ] + [{"is_default": True, "tag_info": {"tag_name": "Default"}, "tagging_priority": DEFAULT_TAG_PRIORITY}]
    backup_rule = {
        "name": "BackupDaily",
        "object_type": "AzureBackupRule",
        "backup_parameters": {"backup_type": "Full", "object_type": "AzureBackupParams"},
        "data_store": VAULT_STORE,
        "trigger": {
            "object_type": "ScheduleBasedTriggerContext",
            "schedule": {"repeating_time_intervals": daily_schedule(schedules), "time_zone": "UTC"},
            "tagging_criteria": tagging,
        },
    }

    def keep(name: str, period: Period, is_default: bool) -> dict:
        return {
            "name": name,
            "object_type": "AzureRetentionRule",
            "is_default": is_default,
            "lifecycles": [
                {
                    "delete_after": {"duration": iso_duration(period, f"retention.{name.lower()}"),
                                     "object_type": "AbsoluteDeleteOption"},
                    "source_data_store": VAULT_STORE,
                    "target_data_store_copy_settings": [],
                }
            ],
        }

    rules = [keep("Default", retention.for_class(GfsClass.DAILY), True)]
    rules += [keep(c.value.capitalize(), retention.for_class(c), False) for c in tagged]
    return [backup_rule, *rules]


@dataclass
class VaultKey:
    """A customer-managed key for the vault and the user-assigned identity that reads it."""

    key_uri: pulumi.Input[str]
    identity_id: pulumi.Input[str]


@dataclass
class ProtectedServer:
    server_id: pulumi.Input[str]
    server_name: pulumi.Input[str]
    location: str
    resource_group_id: pulumi.Input[str]  # the server's resource group (Reader for the vault)


@dataclass
class PostgresBackupVaultArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    retention: Retention  # drplan.retention.effective_retention(tier, overrides)
    locked: bool  # immutability Locked and soft delete always-on (prod)
    key: VaultKey | None = None
    schedules: Schedules = SCHEDULES
    soft_delete_days: int = SOFT_DELETE_DAYS
    vault_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class PostgresBackupVault(pulumi.ComponentResource):
    """`postoucancer:azure:PostgresBackupVault`."""

    vault: azure_native.dataprotection.BackupVault
    policy: azure_native.dataprotection.BackupPolicy

    def __init__(self, name: str, args: PostgresBackupVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:PostgresBackupVault", name, None, opts)
        low, high = SOFT_DELETE_RANGE
        if not low <= args.soft_delete_days <= high:
            raise ValueError(f"soft_delete_days: a Backup vault keeps deleted data {low}..{high} days")
        self._args = args
        self._name = name
        rules = policy_rules(args.retention, args.schedules)  # bad retention fails before anything
        security: dict = {
            # Locked is irreversible: no operation can shorten retention or delete early.
            "immutability_settings": {"state": "Locked" if args.locked else "Unlocked"},
            "soft_delete_settings": {"state": "AlwaysOn" if args.locked else "On",
                                     "retention_duration_in_days": args.soft_delete_days},
        }
        identity: dict = {"type": "SystemAssigned"}
        if args.key is not None:
            security["encryption_settings"] = {
                "state": "Enabled",
                "key_vault_properties": {"key_uri": args.key.key_uri},
                "kek_identity": {"identity_type": "UserAssigned", "identity_id": args.key.identity_id},
                "infrastructure_encryption": "Enabled",
            }
            identity = {"type": "SystemAssigned,UserAssigned", "user_assigned_identities": [args.key.identity_id]}
        self.vault = azure_native.dataprotection.BackupVault(
            name,
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            identity=identity,
            properties={
                "storage_settings": [{"datastore_type": "VaultStore", "type": "GeoRedundant"}],
                "feature_settings": {"cross_region_restore_settings": {"state": "Enabled"}},
                "security_settings": security,
                # Azure Monitor alerts for every failed job: the backup-failed signal.
                "monitoring_settings": {"azure_monitor_alert_settings": {"alerts_for_all_job_failures": "Enabled"}},
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.policy = azure_native.dataprotection.BackupPolicy(
            f"{name}-gfs",
            resource_group_name=args.resource_group_name,
            vault_name=self.vault.name,
            properties={
                "object_type": "BackupPolicy",
                "datasource_types": [POSTGRES_FLEXIBLE_DATASOURCE],
                "policy_rules": rules,
            },
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.instances: dict[str, azure_native.dataprotection.BackupInstance] = {}
        self.register_outputs({"vaultId": self.vault.id, "policyId": self.policy.id})

    def protect_server(self, key: str, server: ProtectedServer) -> azure_native.dataprotection.BackupInstance:
        """The backup instance of `server`, after the vault's identity may read it."""
        args = self._args
        if server.location != args.location:
            raise ValueError(
                f"server.location: Azure Backup protects a PostgreSQL flexible server only from a vault in its own "
                f"region ({server.location}), not from {args.location}"
            )
        principal = self.vault.identity.apply(lambda i: getattr(i, "principal_id", None))
        grants = [
            _rbac.assign_builtin(f"{self._name}-{key}-ltr-backup", subscription_id=args.subscription_id,
                                 principal_id=principal, role=_rbac.POSTGRES_LTR_BACKUP, scope=server.server_id,
                                 parent=self),
            # The LTR role's resource-group read does not apply at the server's scope.
            _rbac.assign_builtin(f"{self._name}-{key}-reader", subscription_id=args.subscription_id,
                                 principal_id=principal, role=_rbac.READER, scope=server.resource_group_id,
                                 parent=self),
        ]
        instance = azure_native.dataprotection.BackupInstance(
            f"{self._name}-{key}",
            resource_group_name=args.resource_group_name,
            vault_name=self.vault.name,
            properties={
                "object_type": "BackupInstance",
                "friendly_name": server.server_name,
                "data_source_info": {
                    "object_type": "Datasource",
                    "datasource_type": POSTGRES_FLEXIBLE_DATASOURCE,
                    "resource_type": POSTGRES_FLEXIBLE_DATASOURCE,
                    "resource_id": server.server_id,
                    "resource_uri": server.server_id,
                    "resource_name": server.server_name,
                    "resource_location": server.location,
                },
                "policy_info": {"policy_id": self.policy.id},
            },
            tags=args.tags,
            # The service validates its access when the instance is configured.
            opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=grants),
        )
        self.instances[key] = instance
        return instance
