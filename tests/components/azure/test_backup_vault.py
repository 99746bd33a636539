"""The Azure Backup (Data Protection) vault for PostgreSQL flexible server long-term retention
(components/azure/backup_vault.py) under mocks.

Sources: Azure Backup docs - "Back up Azure Database for PostgreSQL - flexible server using
Azure CLI" (policy object: datasource type, Full backup to VaultStore, schedule-based trigger with
tagging criteria, retention rules), "Azure Database for PostgreSQL Flexible server backup with
long-term retention" (weekly schedules only; retention 7 days .. 10 years; yearly > monthly >
weekly), the support matrix (vault in the server's region), "About ... Flexible server backup"
(roles), "Create and manage Backup vaults" (Cross Region Restore), soft delete (14..180 days).
"""

from __future__ import annotations

import pytest

from components.azure import _rbac
from components.azure.backup_vault import (
    POSTGRES_FLEXIBLE_DATASOURCE,
    PostgresBackupVault,
    PostgresBackupVaultArgs,
    ProtectedServer,
    VaultKey,
    daily_schedule,
    iso_duration,
    policy_rules,
)
from drplan.periods import days, years
from drplan.retention import RETENTION, Tier, effective_retention
from drplan.schedules import SCHEDULES

from .harness import RG_ID, SUBSCRIPTION, arm_id, run

VAULT = "azure-native:dataprotection:BackupVault"
POLICY = "azure-native:dataprotection:BackupPolicy"
INSTANCE = "azure-native:dataprotection:BackupInstance"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
SERVER_ID = arm_id("Microsoft.DBforPostgreSQL/flexibleServers", "prod-pg")
SERVER = ProtectedServer(SERVER_ID, "prod-pg", "francecentral", RG_ID)


def vault_args(**over) -> PostgresBackupVaultArgs:
    base = dict(resource_group_name="rg-data", location="francecentral", subscription_id=SUBSCRIPTION,
                retention=RETENTION[Tier.PROD], locked=True,
                key=VaultKey("https://kv-prod.vault.azure.net/keys/backup", "id-backup"))
    return PostgresBackupVaultArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    def program():
        PostgresBackupVault("prod-vault", vault_args()).protect_server("database", SERVER)
        PostgresBackupVault("staging-vault", vault_args(retention=RETENTION[Tier.STAGING], locked=False, key=None))

    return run(program)


def _rules(stack, name):
    return {r["name"]: r for r in stack.one(POLICY, name).inputs["properties"]["policyRules"]}


def test_prod_vault_is_locked_immutable_soft_deleting_geo_redundant_with_cross_region_restore(stack):
    """Cross Region Restore needs GeoRedundant vault storage and cannot be disabled once on
    (terraform-provider-azurerm#27197, from the service's behaviour); immutability Locked is
    irreversible; soft delete keeps deleted backups 14..180 days, AlwaysOn cannot be turned off."""
    vault = stack.one(VAULT, "prod-vault")
    props = vault.inputs["properties"]
    assert props["storageSettings"] == [{"datastoreType": "VaultStore", "type": "GeoRedundant"}]
    assert props["featureSettings"]["crossRegionRestoreSettings"] == {"state": "Enabled"}
    security = props["securitySettings"]
    assert security["immutabilitySettings"] == {"state": "Locked"}
    assert security["softDeleteSettings"] == {"state": "AlwaysOn", "retentionDurationInDays": 14}
    assert security["encryptionSettings"]["keyVaultProperties"]["keyUri"].endswith("/keys/backup")
    assert security["encryptionSettings"]["kekIdentity"] == {"identityType": "UserAssigned", "identityId": "id-backup"}
    assert vault.inputs["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert props["monitoringSettings"]["azureMonitorAlertSettings"]["alertsForAllJobFailures"] == "Enabled"
    assert vault.protect and stack.one(POLICY, "prod-vault-gfs").protect


def test_staging_vault_stays_reversible(stack):
    security = stack.one(VAULT, "staging-vault").inputs["properties"]["securitySettings"]
    assert security["immutabilitySettings"] == {"state": "Unlocked"}
    assert security["softDeleteSettings"]["state"] == "On"


def test_policy_keeps_the_plans_gfs_generations_from_drplan(stack):
    """Default (every backup) = daily 30 d, tagged weekly 12 w / monthly 12 mo / yearly 7 y:
    drplan.retention, rendered as ISO 8601 durations; the datasource type is PostgreSQL
    flexible server's and the backup rule is a Full backup into the VaultStore."""
    policy = stack.one(POLICY, "prod-vault-gfs").inputs["properties"]
    assert policy["datasourceTypes"] == [POSTGRES_FLEXIBLE_DATASOURCE] == ["Microsoft.DBforPostgreSQL/flexibleServers"]
    rules = _rules(stack, "prod-vault-gfs")
    keep = {n: r["lifecycles"][0]["deleteAfter"]["duration"] for n, r in rules.items() if n != "BackupDaily"}
    assert keep == {"Default": "P30D", "Weekly": "P12W", "Monthly": "P12M", "Yearly": "P7Y"}
    assert rules["Default"]["isDefault"] is True
    backup = rules["BackupDaily"]
    assert backup["backupParameters"]["backupType"] == "Full"
    assert backup["dataStore"]["dataStoreType"] == "VaultStore"
    staging = {n for n in _rules(stack, "staging-vault-gfs") if n != "BackupDaily"}
    assert staging == {"Default", "Weekly"}


def test_daily_backups_are_seven_weekly_intervals_at_the_plans_slot():
    """"Currently, only Weekly backup option is available. However, you can schedule the backups
    on multiple days of the week": one P1W interval per weekday, at drplan's 02:00 UTC slot."""
    intervals = daily_schedule(SCHEDULES)
    assert len(intervals) == 7 and all(i.endswith("T02:00:00+00:00/P1W") for i in intervals)
    assert len({i.split("T")[0] for i in intervals}) == 7


def test_tags_follow_the_plan_and_the_documented_priority():
    """Yearly beats monthly beats weekly, the default applies otherwise; the weekly tag is the
    plan's weekly day (Sunday), not the service's first-of-week."""
    trigger = policy_rules(RETENTION[Tier.PROD])[0]["trigger"]
    tags = {t["tag_info"]["tag_name"]: t for t in trigger["tagging_criteria"]}
    assert tags["Yearly"]["tagging_priority"] < tags["Monthly"]["tagging_priority"] < tags["Weekly"]["tagging_priority"]
    assert tags["Default"]["is_default"] and tags["Default"]["tagging_priority"] > tags["Weekly"]["tagging_priority"]
    assert tags["Weekly"]["criteria"][0]["days_of_the_week"] == ["Sunday"]
    assert tags["Monthly"]["criteria"][0]["absolute_criteria"] == ["FirstOfMonth"]
    assert tags["Yearly"]["criteria"][0]["absolute_criteria"] == ["FirstOfYear"]


def test_a_stack_override_reaches_the_policy_and_the_vault_bounds_are_enforced():
    """"Retention duration ranges from seven days to 10 years in the Backup data store"."""
    longer = effective_retention(Tier.PROD, {"weekly": days(16 * 7)})
    keep = {r["name"]: r for r in policy_rules(longer)}
    assert keep["Weekly"]["lifecycles"][0]["delete_after"]["duration"] == "P112D"
    assert iso_duration(years(10)) == "P10Y"
    with pytest.raises(ValueError, match=r"retention: 11y is outside .* \(7d to 10y\)"):
        iso_duration(years(11))
    with pytest.raises(ValueError, match=r"retention\.yearly: 11y is outside"):
        policy_rules(effective_retention(Tier.PROD, {"yearly": years(11)}))


def test_backup_instance_after_the_vault_may_read_the_server(stack):
    """The vault's identity needs "PostgreSQL Flexible Server Long Term Retention Backup Role on
    the server" and "Reader role on the resource group of the server"; the instance is configured
    only after both grants (the service validates its access at configuration)."""
    instance = stack.one(INSTANCE, "prod-vault-database")
    info = instance.inputs["properties"]["dataSourceInfo"]
    assert info["datasourceType"] == POSTGRES_FLEXIBLE_DATASOURCE and info["resourceID"] == SERVER_ID
    assert instance.inputs["properties"]["policyInfo"]["policyId"] == stack.one(POLICY, "prod-vault-gfs").id
    grants = {a.inputs["roleDefinitionId"].rsplit("/", 1)[-1]: a for a in stack.of_type(ASSIGNMENT)}
    assert grants[_rbac.POSTGRES_LTR_BACKUP].inputs["scope"] == SERVER_ID
    assert grants[_rbac.POSTGRES_LTR_BACKUP].inputs["roleDefinitionId"].startswith(f"/subscriptions/{SUBSCRIPTION}/")
    assert grants[_rbac.READER].inputs["scope"] == RG_ID
    principal = grants[_rbac.READER].inputs["principalId"]
    assert principal and all(a.inputs["principalType"] == "ServicePrincipal" for a in grants.values())
    assert {a.urn for a in grants.values()} <= set(instance.dependencies)
    assert instance.protect


def test_vault_refuses_a_server_of_another_region_and_soft_delete_out_of_range():
    """"Backups for the PostgreSQL server are supported when the Backup Vault is in the same or a
    different subscription as the database, provided they are within the same tenant and region"."""
    far = ProtectedServer(SERVER_ID, "prod-pg", "germanywestcentral", RG_ID)
    with pytest.raises(ValueError, match=r"server\.location: .* only from a vault in its own region"):
        run(lambda: PostgresBackupVault("v", vault_args()).protect_server("db", far))
    with pytest.raises(ValueError, match=r"soft_delete_days: a Backup vault keeps deleted data 14\.\.180 days"):
        run(lambda: PostgresBackupVault("v", vault_args(soft_delete_days=7)))
