"""Azure data-tier rules (policy/rules/azure_data.py): a bad resource is caught, a good one passes.
The good resources are the components' own (components/azure), so the pack and the components
cannot drift apart; every number comes from drplan."""

from __future__ import annotations

import pulumi_azure_native as azure_native

from components.azure.backup_vault import PostgresBackupVault, PostgresBackupVaultArgs, policy_rules
from components.azure.container_jobs import WRITER_ACTIONS, WRITER_DATA_ACTIONS
from components.azure.postgres import PostgresNetwork, PostgresServer, PostgresServerArgs, ServerKey
from components.azure.redis import Persistence, PrivateAccess, RedisCache, RedisCacheArgs
from drplan.periods import days, months, weeks, years
from drplan.retention import RETENTION, Retention, Tier, effective_retention
from policy.rules import azure_data
from tests.policy.harness import names, violations

SUB = "00000000-0000-4000-8000-000000000001"
PROD_SITE = {"role": "primary", "tier": "prod"}
STAGING_SITE = {"role": "primary", "tier": "staging"}


def pg_server(**over) -> None:
    args = dict(resource_group_name="rg", location="francecentral", network=PostgresNetwork("subnet", "zone"),
                key=ServerKey("https://kv/keys/pg", "id-a"), geo_backup_key=ServerKey("https://kv2/keys/pg", "id-b"),
                administrator_password="x", sku_name="Standard_D4ds_v5", storage_size_gb=128, backup_retention_days=7)
    PostgresServer("db", PostgresServerArgs(**{**args, **over}))


def raw_server(name: str = "db", **props) -> None:
    base = {
        "resource_group_name": "rg", "create_mode": "Create",
        "data_encryption": {"type": "AzureKeyVault", "primary_key_uri": "k", "geo_backup_key_uri": "g"},
        "network": {"delegated_subnet_resource_id": "s", "public_network_access": "Disabled"},
        "high_availability": {"mode": "ZoneRedundant"},
        "backup": {"backup_retention_days": 7, "geo_redundant_backup": "Enabled"},
    }
    azure_native.dbforpostgresql.Server(name, **{**base, **props})


BAD_SERVERS = [
    {"high_availability": {"mode": "Disabled"}},
    {"backup": {"backup_retention_days": 7, "geo_redundant_backup": "Disabled"}},
    {"backup": {"backup_retention_days": 3, "geo_redundant_backup": "Enabled"}},
    {"data_encryption": {"type": "SystemManaged"}},
    {"data_encryption": {"type": "AzureKeyVault", "primary_key_uri": "k"}},  # no key for the geo copy
    {"network": {"public_network_access": "Enabled"}},
]


def test_postgres_hardened_rule():
    """One program: each bad server is caught, the component's server passes."""

    def program():
        pg_server()
        for i, bad in enumerate(BAD_SERVERS):
            raw_server(f"bad-{i}", **bad)

    found = violations(azure_data.azure_postgres_hardened, program)
    assert names(found) == {f"bad-{i}" for i in range(len(BAD_SERVERS))}


def test_postgres_replica_is_judged_as_a_replica():
    """A read replica has no HA and no backups (Azure does not support them on replicas)."""
    replica = {"create_mode": "Replica", "high_availability": {"mode": "Disabled"}, "backup": None}
    assert violations(azure_data.azure_postgres_hardened, lambda: raw_server(**replica)) == []


def test_postgres_tls_rule():
    p = azure_data.azure_postgres_tls

    def weak():
        server = azure_native.dbforpostgresql.Server("db", resource_group_name="rg")
        azure_native.dbforpostgresql.Configuration("db-tls", resource_group_name="rg", server_name=server.name,
                                                   configuration_name="ssl_min_protocol_version", value="TLSv1.1",
                                                   source="user-override")

    found = violations(p, weak)
    assert names(found) == {"db"} and {"require_secure_transport", "TLSv1.2"} <= {
        w for v in found for w in ("require_secure_transport", "TLSv1.2") if w in v.message}
    assert violations(p, pg_server) == []


def vault(retention=RETENTION[Tier.PROD], locked=True) -> PostgresBackupVault:
    return PostgresBackupVault("vault", PostgresBackupVaultArgs(resource_group_name="rg", location="francecentral",
                                                                subscription_id=SUB, retention=retention,
                                                                locked=locked))


def raw_vault(name="vault", state="Locked", soft="AlwaysOn", storage="GeoRedundant", crr="Enabled") -> None:
    azure_native.dataprotection.BackupVault(name, resource_group_name="rg", properties={
        "storage_settings": [{"datastore_type": "VaultStore", "type": storage}],
        "feature_settings": {"cross_region_restore_settings": {"state": crr}},
        "security_settings": {"immutability_settings": {"state": state}, "soft_delete_settings": {"state": soft}},
    })


BAD_VAULTS = [{"state": "Unlocked"}, {"soft": "On"}, {"storage": "LocallyRedundant"}, {"crr": "Disabled"}]


def test_backup_vault_rule():
    def program():
        vault()
        for i, bad in enumerate(BAD_VAULTS):
            raw_vault(f"bad-{i}", **bad)

    p = azure_data.azure_backup_vault_immutable
    assert names(violations(p, program, site=PROD_SITE)) == {f"bad-{i}" for i in range(len(BAD_VAULTS))}
    # Staging: reversible immutability and soft delete are enough, disabled is not.
    assert violations(p, lambda: vault(RETENTION[Tier.STAGING], locked=False), site=STAGING_SITE) == []
    assert names(violations(p, lambda: raw_vault("bad", state="Disabled", soft="On"), site=STAGING_SITE)) == {"bad"}


def raw_policy(retention) -> None:
    azure_native.dataprotection.BackupPolicy("vault-gfs", resource_group_name="rg", vault_name="v", properties={
        "object_type": "BackupPolicy", "datasource_types": ["Microsoft.DBforPostgreSQL/flexibleServers"],
        "policy_rules": policy_rules(retention),
    })


def test_backup_policy_retention_rule():
    """Floors are the site's effective retention: the plan's, lengthened by the stack's overrides."""
    p = azure_data.azure_backup_policy_retention
    staging_rules = RETENTION[Tier.STAGING]  # no monthly, no yearly; 7 d / 4 w
    found = violations(p, lambda: raw_policy(staging_rules), site=PROD_SITE)
    assert names(found) == {"vault-gfs"} and {"Default", "Weekly", "Monthly", "Yearly"} <= {
        w for v in found for w in ("Default", "Weekly", "Monthly", "Yearly") if w in v.message}
    assert violations(p, lambda: raw_policy(RETENTION[Tier.PROD]), site=PROD_SITE) == []
    short = Retention(daily=days(30), weekly=weeks(12), monthly=months(6), yearly=years(7))
    (found,) = violations(p, lambda: raw_policy(short), site=PROD_SITE)
    assert "rule Monthly keeps 183 days, less than the plan's 12mo" in found.message
    longer = {"role": "primary", "tier": "prod", "retention": {"weekly": "16w"}}
    assert names(violations(p, lambda: raw_policy(RETENTION[Tier.PROD]), site=longer)) == {"vault-gfs"}
    assert violations(p, lambda: raw_policy(effective_retention(Tier.PROD, {"weekly": weeks(16)})), site=longer) == []


def redis(**over) -> None:
    args = dict(resource_group_name="rg", location="francecentral", subscription_id=SUB,
                private_access=PrivateAccess("subnet", "zone"),
                persistence=Persistence("st-id", "st", "francecentral", soft_delete=False))
    RedisCache("cache", RedisCacheArgs(**{**args, **over}))


BAD_CACHES = [
    {"enable_non_ssl_port": True},
    {"minimum_tls_version": "1.0"},
    {"public_network_access": "Enabled"},
    {"redis_configuration": {"rdb_backup_enabled": "false"}},
]


def test_redis_rule():
    base = {"sku": {"name": "Premium", "family": "P", "capacity": 1}, "enable_non_ssl_port": False,
            "minimum_tls_version": "1.2", "public_network_access": "Disabled",
            "redis_configuration": {"rdb_backup_enabled": "true"}}

    def program():
        redis()
        for i, bad in enumerate(BAD_CACHES):
            azure_native.redis.Redis(f"bad-{i}", resource_group_name="rg", **{**base, **bad})

    found = violations(azure_data.azure_redis_hardened, program)
    assert names(found) == {f"bad-{i}" for i in range(len(BAD_CACHES))}


def audit_policy(name: str = "audit", **over) -> None:
    args = dict(account_name="staudit", resource_group_name="rg", container_name="insights-activity-logs",
                immutability_period_since_creation_in_days=RETENTION[Tier.PROD].audit_logs.days,
                allow_protected_append_writes=True)
    azure_native.storage.BlobContainerImmutabilityPolicy(name, **{**args, **over})


def test_audit_container_rule():
    def program():
        audit_policy("good")
        audit_policy("short", immutability_period_since_creation_in_days=365)
        audit_policy("no-appends", allow_protected_append_writes=False)
        # Not an Azure Monitor export container: not the audit archive's business.
        audit_policy("backups", container_name="postgres-backups", allow_protected_append_writes=False)

    assert names(violations(azure_data.azure_audit_container_retention, program)) == {"short", "no-appends"}


BAD_ACTIONS = [
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*",
]


def test_custom_role_rule():
    def role(name, data_actions):
        azure_native.authorization.RoleDefinition(name, scope="/subscriptions/x", role_name=name,
                                                  permissions=[{"actions": WRITER_ACTIONS,
                                                                "data_actions": data_actions}])

    def program():
        role("writer", WRITER_DATA_ACTIONS)  # the functions' role (components/azure/container_jobs.py)
        for i, bad in enumerate(BAD_ACTIONS):
            role(f"bad-{i}", [*WRITER_DATA_ACTIONS, bad])

    found = violations(azure_data.azure_custom_role_no_delete, program)
    assert names(found) == {f"bad-{i}" for i in range(len(BAD_ACTIONS))}
