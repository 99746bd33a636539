"""The database on Azure: PostgreSQL flexible server and its long-term backups.

- prod-azure: the primary (zone-redundant HA, PITR backups kept the plan's WAL retention,
  geo-redundant backups, CMK with a second key and identity for the geo-backups), private
  access in the site's delegated subnet; exported as `database` for the DR site.
- dr-azure: a cross-region read replica of it (the warm standby), from the peer's exported
  server id; activation promotes it in place (components/azure/postgres.py: `replica.promoteMode
  Standalone`, Forced), `activationComplete` then gives it zone-redundant HA.
- each site: a Data Protection backup vault (vaults protect servers of their own region only)
  with the plan's GFS policy. The primary's vault protects the primary server; the DR vault
  protects the promoted server once activated (a read replica takes no backups).

The recovery sources this topology offers (drplan.recovery, with Azure's geo-restore as a
source of its own) are exported as `recoverySources`, each with its documented RPO: the
objectives table shows the best per scenario, this list shows them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.azure.backup_vault import PostgresBackupVault, PostgresBackupVaultArgs, ProtectedServer
from components.azure.backup_vault import VaultKey as BackupVaultKey
from components.azure.postgres import (
    PostgresNetwork,
    PostgresReplica,
    PostgresReplicaArgs,
    PostgresServer,
    PostgresServerArgs,
    ServerKey,
)
from drplan.periods import format_duration
from drplan.recovery import recovery_sources
from infra.azure.credentials import Credentials
from infra.azure.foundation import Foundation
from infra.azure.keys import GEO_BACKUP, Keys
from infra.site import Site

PEER_OUTPUT = "database"  # what the primary exports and the DR site's replica reads


@dataclass(frozen=True)
class Database:
    server: PostgresServer | PostgresReplica | None  # None: DR site before the primary's first run
    vault: PostgresBackupVault
    protected: bool  # the vault has a backup instance of this site's server

    @property
    def fqdn(self) -> pulumi.Output[str] | None:
        return self.server.server.fully_qualified_domain_name if self.server is not None else None


def _network(base: Foundation) -> PostgresNetwork:
    return PostgresNetwork(base.network.subnet_ids["postgres"], base.network.zone_ids["postgres"])


def _key(keys: Keys, purpose: str) -> ServerKey:
    key = keys.database if purpose == "database" else keys.database_geo
    assert key is not None
    return ServerKey(key.uri, keys.identities[purpose].id)


def _server(site: Site, base: Foundation, keys: Keys, creds: Credentials) -> PostgresServer | PostgresReplica | None:
    cfg, azure = site.cfg, site.cfg.azure
    assert azure is not None
    grants = [*keys.database.grants, *(keys.database_geo.grants if keys.database_geo else ())]
    opts = pulumi.ResourceOptions(providers=[base.provider], depends_on=grants)
    if site.is_primary:
        assert creds.password is not None  # the primary generates it
        server: PostgresServer | PostgresReplica = PostgresServer(
            site.name("database"),
            PostgresServerArgs(
                resource_group_name=base.group.name,
                location=site.region,
                network=_network(base),
                key=_key(keys, "database"),
                geo_backup_key=_key(keys, GEO_BACKUP),
                administrator_password=creds.password,
                administrator_login=creds.username,
                sku_name=azure.postgres_sku,
                storage_size_gb=azure.postgres_storage_gb,
                # The plan's WAL retention: point-in-time restore reaches back this far.
                backup_retention_days=cfg.retention_policy.wal.days,
                tags=base.tags,
            ),
            opts=opts,
        )
        site.export(
            PEER_OUTPUT,
            {
                "id": server.id,
                "location": site.region,
                "skuName": azure.postgres_sku,
                "storageGb": azure.postgres_storage_gb,
                "fqdn": server.server.fully_qualified_domain_name,
            },
        )
        return server
    source = site.peer.get(PEER_OUTPUT)
    if source is None:
        site.export("standby", {"enabled": False, "waitingFor": f"{PEER_OUTPUT} of the primary"})
        return None
    from infra import sdk

    # Known now: the replica's size is checked against the primary's before anything registers.
    primary = sdk.sync_await(source.future()) or {}
    replica = PostgresReplica(
        site.name("database"),
        PostgresReplicaArgs(
            resource_group_name=base.group.name,
            location=site.region,
            network=_network(base),
            key=_key(keys, "database"),
            source_server_id=source.apply(lambda s: s["id"]),
            source_location=primary.get("location", cfg.peer_region),
            source_sku_name=primary.get("skuName", azure.postgres_sku),
            source_storage_size_gb=int(primary.get("storageGb", azure.postgres_storage_gb)),
            sku_name=azure.postgres_sku,
            storage_size_gb=azure.postgres_storage_gb,
            promote=cfg.activated,
            production_scale=cfg.activation_complete,
            tags=base.tags,
        ),
        opts=opts,
    )
    site.export(
        "standby",
        {
            "enabled": True,
            "promoted": cfg.activated,
            "highAvailability": cfg.activation_complete,
            "sourceRegion": cfg.peer_region,
        },
    )
    return replica


def _vault(site: Site, base: Foundation, keys: Keys) -> PostgresBackupVault:
    cfg = site.cfg
    return PostgresBackupVault(
        site.name("backup-vault"),
        PostgresBackupVaultArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            retention=cfg.retention_policy,
            locked=cfg.locked,
            key=BackupVaultKey(keys.backup_vault.uri, keys.identities["backup-vault"].id),
            tags=base.tags,
        ),
        opts=pulumi.ResourceOptions(providers=[base.provider], depends_on=list(keys.backup_vault.grants)),
    )


def recovery_table(site: Site) -> list[dict]:
    return [
        {
            "source": s.name,
            "rpo": format_duration(s.rpo),
            "rto": format_duration(s.rto),
            "survivesRegionLoss": s.survives_region_loss,
            "pointInTime": s.point_in_time,
            "immutable": s.immutable,
        }
        for s in recovery_sources(site.cfg.topology)
    ]


def build(site: Site, base: Foundation, keys: Keys, creds: Credentials) -> Database:
    server = _server(site, base, keys, creds)
    vault = _vault(site, base, keys)
    # A read replica takes no backups: the DR vault protects the server once it is promoted.
    protect = server is not None and (site.is_primary or site.cfg.activated)
    if protect:
        assert server is not None
        vault.protect_server(
            "database",
            ProtectedServer(server.id, server.server.name, site.region, base.group.group.id),
        )
    site.export("backupVault", {"id": vault.vault.id, "protectsServer": protect})
    site.export("recoverySources", recovery_table(site))
    return Database(server, vault, protect)
