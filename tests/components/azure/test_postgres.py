"""PostgreSQL flexible server components (components/azure/postgres.py) under mocks, and the
geo-restore recovery source they add to the objectives (drplan/recovery.py).

Sources: Azure Database for PostgreSQL flexible server docs - "Backup and restore",
"Configure data encryption", "Read replicas", "Promote read replicas"; the REST API
2025-08-01 (`Servers_Update` promotion examples; `x-ms-mutability` of `sourceServerResourceId`
[read, create] and `backup.geoRedundantBackup` [read, create]).
"""

from __future__ import annotations

import itertools

import pytest

from components.azure.postgres import (
    PROMOTION,
    SERVER_PARAMETERS,
    PostgresNetwork,
    PostgresReplica,
    PostgresReplicaArgs,
    PostgresServer,
    PostgresServerArgs,
    ServerKey,
    check_retention,
    parse_sku,
)
from drplan.objectives import Scenario
from drplan.recovery import GEO_BACKUP_REPLICATION_DELAY, Topology, achieved_objectives, recovery_sources
from drplan.retention import Tier

from .harness import arm_id, children, run

SERVER = "azure-native:dbforpostgresql:Server"
CONFIG = "azure-native:dbforpostgresql:Configuration"
PRIMARY_ID = arm_id("Microsoft.DBforPostgreSQL/flexibleServers", "prod-pg")
NET = PostgresNetwork("subnet-db", "zone-pg")
KEY = ServerKey("https://kv-prod.vault.azure.net/keys/pg", "id-pg")
GEO_KEY = ServerKey("https://kv-paired.vault.azure.net/keys/pg-geo", "id-pg-geo")


def primary_args(**over) -> PostgresServerArgs:
    base = dict(resource_group_name="rg-data", location="francecentral", network=NET, key=KEY, geo_backup_key=GEO_KEY,
                administrator_password="s3cret", sku_name="Standard_D4ds_v5", storage_size_gb=128,
                backup_retention_days=7)
    return PostgresServerArgs(**{**base, **over})


def replica_args(**over) -> PostgresReplicaArgs:
    base = dict(resource_group_name="rg-dr", location="germanywestcentral", network=NET,
                key=ServerKey("https://kv-dr.vault.azure.net/keys/pg", "id-pg-dr"), source_server_id=PRIMARY_ID,
                source_location="francecentral", source_sku_name="Standard_D4ds_v5", source_storage_size_gb=128)
    return PostgresReplicaArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    def program():
        PostgresServer("prod-pg", primary_args())
        PostgresReplica("standby", replica_args())
        PostgresReplica("promoted", replica_args(promote=True))

    return run(program)


def test_primary_is_zone_redundant_geo_backed_up_cmk_and_private(stack):
    server = stack.one(SERVER, "prod-pg")
    i = server.inputs
    assert i["highAvailability"]["mode"] == "ZoneRedundant"
    assert i["highAvailability"]["standbyAvailabilityZone"] != i["availabilityZone"]
    assert i["backup"] == {"backupRetentionDays": 7, "geoRedundantBackup": "Enabled"}
    assert i["dataEncryption"] == {
        "type": "AzureKeyVault", "primaryKeyURI": KEY.key_uri, "primaryUserAssignedIdentityId": KEY.identity_id,
        "geoBackupKeyURI": GEO_KEY.key_uri, "geoBackupUserAssignedIdentityId": GEO_KEY.identity_id,
    }
    assert set(i["identity"]["userAssignedIdentities"]) == {"id-pg", "id-pg-geo"}
    assert i["network"] == {"delegatedSubnetResourceId": "subnet-db", "privateDnsZoneArmResourceId": "zone-pg",
                            "publicNetworkAccess": "Disabled"}
    assert i["storage"]["type"] == "Premium_LRS" and i["storage"]["autoGrow"] == "Enabled"
    assert server.protect


def test_create_only_settings_are_replacements_the_protected_server_refuses(stack):
    """Geo-redundant backup "can be configured only at the time of server creation" and the key
    type only at creation ("Backup and restore"; "Configure data encryption"); the API marks
    geoRedundantBackup [read, create]. Declared as replace-on-change, protect=True turns a change
    into an engine error instead of an update Azure would refuse or ignore."""
    server = stack.one(SERVER, "prod-pg")
    assert {"backup.geoRedundantBackup", "dataEncryption.type"} <= set(server.replace_on_changes)


def test_tls_parameters_are_written_one_at_a_time_with_value_and_source(stack):
    """Concurrent configuration writes fail with ServerIsBusy (Azure/ResourceModules#3324), and
    the API needs both value and source (azure-rest-api-specs#30143)."""
    server = stack.one(SERVER, "prod-pg")
    params = [r for r in children(stack, stack.by_urn(server.parent)) if r.type == CONFIG]
    values = {p.inputs["configurationName"]: p.inputs["value"] for p in params}
    assert values["require_secure_transport"] == "on"
    assert values["ssl_min_protocol_version"] == "TLSv1.2"
    assert set(values) == set(SERVER_PARAMETERS)
    assert all(p.inputs["source"] == "user-override" for p in params)
    order = sorted(params, key=lambda p: len(p.dependencies))
    # Each parameter waits for the one before it (the first for the server).
    for before, after in itertools.pairwise(order):
        assert before.urn in after.dependencies


def test_standby_is_a_cross_region_replica_without_ha_or_backups(stack):
    """Read replicas support neither HA nor backups (geo-backups included) ("Read replicas")."""
    replica = stack.one(SERVER, "standby")
    i = replica.inputs
    assert i["createMode"] == "Replica" and i["sourceServerResourceId"] == PRIMARY_ID
    assert i["highAvailability"] == {"mode": "Disabled"}
    assert "backup" not in i and "replica" not in i
    assert i["dataEncryption"]["primaryKeyURI"].startswith("https://kv-dr.")
    assert replica.protect and "sourceServerResourceId" in replica.replace_on_changes


def test_activation_adds_only_the_documented_forced_standalone_promotion(stack):
    """Promotion through ARM is a write of `replica: {promoteMode: Standalone, promoteOption:
    Forced}` (REST API 2025-08-01, Servers_Update example "Promote a read replica to a standalone
    server with forced data synchronization"); Forced is the option for regional outages
    ("Promote read replicas"). createMode and sourceServerResourceId stay: the latter is
    create-only, so changing it would replace (here: refuse to replace) the server."""
    standby, promoted = stack.one(SERVER, "standby").inputs, stack.one(SERVER, "promoted").inputs
    assert promoted["replica"] == {"promoteMode": "Standalone", "promoteOption": "Forced"} == {
        "promoteMode": PROMOTION["promote_mode"], "promoteOption": PROMOTION["promote_option"]}
    diff = {k for k in set(standby) | set(promoted) if standby.get(k) != promoted.get(k)}
    assert diff == {"replica", "tags"}
    assert promoted["tags"]["role"] == "primary" and standby["tags"]["role"] == "warm-standby"


def test_production_scale_enables_ha_only_after_promotion():
    stack = run(lambda: PostgresReplica("scaled", replica_args(promote=True, production_scale=True)))
    assert stack.one(SERVER, "scaled").inputs["highAvailability"]["mode"] == "ZoneRedundant"
    with pytest.raises(ValueError, match="production_scale: applies to a promoted standby only"):
        run(lambda: PostgresReplica("bad", replica_args(production_scale=True)))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (dict(geo_backup_key=None), "geo_backup_key: geo-redundant backups of a CMK server need"),
        (dict(geo_backup_key=ServerKey("https://kv-paired.vault.azure.net/keys/g", "id-pg")),
         "geo_backup_key.identity_id: .* need a second user-assigned identity"),
        (dict(sku_name="Standard_B2s"), "sku_name: Standard_B2s is Burstable"),
        (dict(backup_retention_days=36), "backup_retention_days: .* 7..35 days, not 36"),
    ],
)
def test_primary_refuses_what_azure_refuses(over, message):
    """Two identities for CMK + geo-backup ("Configure data encryption": "If your server has
    geo-redundant backups enabled, you need to create two different identities"); replicas and
    zone-redundant HA need General Purpose or Memory Optimized; retention 7..35 days."""
    with pytest.raises(ValueError, match=message):
        run(lambda: PostgresServer("bad", primary_args(**over)))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (dict(location="francecentral"), "location: the warm standby belongs in the DR region"),
        (dict(storage_size_gb=64), "storage_size_gb: 64 GB is less than the primary's 128 GB"),
        (dict(sku_name="Standard_D2ds_v5"), "sku_name: Standard_D2ds_v5 has fewer vCores"),
    ],
)
def test_replica_refuses_what_azure_refuses(over, message):
    """"Storage size on the primary must be always equal or smaller than the storage size on the
    smallest replica"; "Compute on the primary must always be equal or smaller than the compute on
    the smallest replica" ("Read replicas", Scale)."""
    with pytest.raises(ValueError, match=message):
        run(lambda: PostgresReplica("bad", replica_args(**over)))


def test_sku_and_retention_parsing():
    assert parse_sku("Standard_E8ds_v5").tier == "MemoryOptimized" and parse_sku("Standard_D16s_v3").vcores == 16
    with pytest.raises(ValueError, match="sku_name: a flexible-server compute size"):
        parse_sku("GP_Gen5_4")
    assert check_retention(35) == 35
    with pytest.raises(ValueError, match="not 6"):
        check_retention(6)


def test_geo_restore_is_a_recovery_source_with_azures_documented_rpo():
    """"There might be up to one hour of delay in data transmission. So, you can expect up to one
    hour of RPO when you restore ... PITR of geo-redundant backups is not available" ("Backup and
    restore", geo-redundant backup and restore). A source that survives the region, cannot go back
    in time, and is not immutable; AWS topologies (geo_backup False) do not list it."""
    plain = Topology(Tier.PROD, database_size_gb=20)
    assert all("geo-restore" not in s.name for s in recovery_sources(plain))
    geo = Topology(Tier.PROD, database_size_gb=20, warm_standby=False, dr_copies=False, cross_region_pitr=False,
                   geo_backup=True)
    source = next(s for s in recovery_sources(geo) if s.name == "geo-restore (paired region)")
    assert source.rpo == GEO_BACKUP_REPLICATION_DELAY and GEO_BACKUP_REPLICATION_DELAY.total_seconds() == 3600
    assert source.survives_region_loss and not source.point_in_time and not source.immutable
    loss = next(a for a in achieved_objectives(geo) if a.scenario is Scenario.DATACENTRE_LOSS)
    assert loss.source == source and loss.met  # RPO 1 h meets the plan's 1 h
