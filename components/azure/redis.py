"""Redis on Azure Cache for Redis, Premium tier (azure-native `redis`, API 2024-11-01).

The cache is regenerable (plan: "data loss is acceptable, the cache can be rebuilt"), so each
site has its own cache and the DR cache starts empty and warms up after activation, exactly as
on ElastiCache (docs/data-tier.md). Premium gives: a replica per primary with automatic
failover, zones, TLS 1.2 only (no non-TLS port), no public network access (a private
endpoint), Microsoft Entra authentication with access keys off, and RDB persistence to a
storage account of the same region and subscription, written with the cache's managed identity.

Why RDB and not AOF, and no geo-replication (Azure, "Configure data persistence for a Premium
Azure Cache for Redis instance"):
- RDB and AOF cannot be enabled together; AOF costs 15-20 % throughput and cannot be used with
  more than one replica. What AOF adds - the writes since the last snapshot when both nodes die -
  is what the plan accepts losing for a cache; losing one node loses nothing acknowledged to its
  replica (automatic failover), the answer given for ElastiCache.
- "If you enable data persistence, geo-replication can't be enabled": the DR answer is to rebuild,
  which the plan allows, not a geo-replication link.
- Persistence keeps only the latest snapshot ("All RDB persistence backups, except for the most
  recent one, are automatically deleted"), and the storage account must not use blob soft
  delete (Azure strongly discourages it: every snapshot would be kept, at cost). The plan's
  "retention 7 days" for Redis snapshots is therefore not met by persistence; it is a restore
  point for the same cache, not an archive (see docs/azure-data.md).

Retirement: Microsoft announced Azure Cache for Redis (Basic/Standard/Premium) retires on
30 September 2028 (Azure Updates 499577) with Azure Managed Redis (`redisenterprise`) as the
successor, and creation is blocked for new customers from 1 April 2026 (as reported from that
notice: check the retirement FAQ before a first deployment in a new tenant). See
docs/azure-data.md for the choice and the migration path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_azure_native as azure_native

from drplan.periods import DAY, MINUTE

from . import _rbac

# rdb-backup-frequency in minutes: the only values the service accepts.
RDB_FREQUENCIES = (15, 30, 60, 360, 720, 1440)
# The SDK documents the valid Premium (P family) capacities: 1, 2, 3, 4.
PREMIUM_CAPACITIES = (1, 2, 3, 4)
REDIS_VERSION = "6"
MIN_TLS = "1.2"
# The plan: Redis RDB snapshots daily.
RDB_EVERY = DAY


def rdb_frequency(every: timedelta = RDB_EVERY) -> str:
    minutes = int(every / MINUTE)
    if minutes not in RDB_FREQUENCIES:
        raise ValueError(f"rdb frequency: Azure Cache for Redis takes {RDB_FREQUENCIES} minutes, not {minutes}")
    return str(minutes)


@dataclass
class PrivateAccess:
    subnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str]  # privatelink.redis.cache.windows.net


@dataclass
class Persistence:
    storage_account_id: pulumi.Input[str]
    storage_account_name: pulumi.Input[str]
    location: str  # must be the cache's
    soft_delete: bool  # the account's blob soft delete; must be off for persistence


@dataclass
class RedisCacheArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    private_access: PrivateAccess
    persistence: Persistence
    capacity: int = 1  # P1..P4
    replicas_per_primary: int = 1
    zones: list[str] = field(default_factory=lambda: ["1", "2"])
    cache_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class RedisCache(pulumi.ComponentResource):
    """`postoucancer:azure:RedisCache`."""

    cache: azure_native.redis.Redis
    id: pulumi.Output[str]

    def __init__(self, name: str, args: RedisCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:RedisCache", name, None, opts)
        if args.capacity not in PREMIUM_CAPACITIES:
            raise ValueError(f"capacity: Premium caches are P1..P4 ({PREMIUM_CAPACITIES}), not {args.capacity}")
        if args.replicas_per_primary < 1:
            raise ValueError("replicas_per_primary: at least one replica, or a node failure loses the cache")
        if args.persistence.location != args.location:
            raise ValueError(
                f"persistence.location: the persistence storage account must be in the cache's region "
                f"({args.location}), not {args.persistence.location}"
            )
        if args.persistence.soft_delete:
            raise ValueError(
                "persistence.soft_delete: turn blob soft delete off on the persistence account (Azure strongly "
                "discourages it with data persistence: every overwritten snapshot would be kept and billed)"
            )
        self.cache = azure_native.redis.Redis(
            name,
            name=args.cache_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": "Premium", "family": "P", "capacity": args.capacity},
            redis_version=REDIS_VERSION,
            enable_non_ssl_port=False,
            minimum_tls_version=MIN_TLS,
            public_network_access="Disabled",
            disable_access_key_authentication=True,
            replicas_per_primary=args.replicas_per_primary,
            zones=args.zones,
            identity={"type": "SystemAssigned"},
            redis_configuration={
                "aad_enabled": "true",
                "rdb_backup_enabled": "true",
                "rdb_backup_frequency": rdb_frequency(),
                "rdb_backup_max_snapshot_count": "1",
                "rdb_storage_connection_string": pulumi.Output.format(
                    "BlobEndpoint=https://{0}.blob.core.windows.net/;AccountName={0}",
                    args.persistence.storage_account_name,
                ),
                "preferred_data_persistence_auth_method": "ManagedIdentity",
                "storage_subscription_id": args.subscription_id,
            },
            tags={**args.tags, "purpose": "cache"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        principal = self.cache.identity.apply(lambda i: getattr(i, "principal_id", None))
        self.persistence_access = _rbac.assign_builtin(
            f"{name}-persistence", subscription_id=args.subscription_id, principal_id=principal,
            role=_rbac.STORAGE_BLOB_DATA_CONTRIBUTOR, scope=args.persistence.storage_account_id, parent=self,
        )
        self.endpoint = azure_native.network.PrivateEndpoint(
            f"{name}-pe",
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet={"id": args.private_access.subnet_id},
            private_link_service_connections=[
                {"name": f"{name}-redis", "private_link_service_id": self.cache.id, "group_ids": ["redisCache"]}
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        azure_native.network.PrivateDnsZoneGroup(
            f"{name}-pe-dns",
            resource_group_name=args.resource_group_name,
            private_endpoint_name=self.endpoint.name,
            private_dns_zone_configs=[
                {"name": "redis", "private_dns_zone_id": args.private_access.private_dns_zone_id}
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = self.cache.id
        self.register_outputs({"id": self.id, "hostName": self.cache.host_name})
