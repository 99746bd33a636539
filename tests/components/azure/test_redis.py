"""Azure Cache for Redis Premium (components/azure/redis.py) under mocks.

Sources: "Configure data persistence for a Premium Azure Cache for Redis instance" (RDB or AOF,
not both; persistence excludes geo-replication; same region and subscription; soft delete
strongly discouraged; only the latest RDB kept), "Managed identity with Azure Cache for Redis"
(Storage Blob Data Contributor for the cache's identity), the SDK's documented RDB frequencies
(15, 30, 60, 360, 720, 1440 minutes) and Premium capacities (1..4).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.azure import _rbac
from components.azure.redis import Persistence, PrivateAccess, RedisCache, RedisCacheArgs, rdb_frequency

from .harness import SUBSCRIPTION, arm_id, run

REDIS = "azure-native:redis:Redis"
STORAGE_ID = arm_id("Microsoft.Storage/storageAccounts", "stcache")


def cache_args(**over) -> RedisCacheArgs:
    base = dict(resource_group_name="rg-data", location="francecentral", subscription_id=SUBSCRIPTION,
                private_access=PrivateAccess("subnet-redis", "zone-redis"),
                persistence=Persistence(STORAGE_ID, "stcache", "francecentral", soft_delete=False))
    return RedisCacheArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    return run(lambda: RedisCache("prod-redis", cache_args()))


def test_cache_is_premium_tls_only_private_and_entra_only(stack):
    i = stack.one(REDIS, "prod-redis").inputs
    assert i["sku"] == {"name": "Premium", "family": "P", "capacity": 1}
    assert i["enableNonSslPort"] is False and i["minimumTlsVersion"] == "1.2"
    assert i["publicNetworkAccess"] == "Disabled"
    assert i["disableAccessKeyAuthentication"] is True and i["redisConfiguration"]["aadEnabled"] == "true"
    assert i["replicasPerPrimary"] >= 1 and len(i["zones"]) >= 2
    pe = stack.one("azure-native:network:PrivateEndpoint", "prod-redis-pe").inputs
    assert pe["privateLinkServiceConnections"][0]["groupIds"] == ["redisCache"]
    assert stack.one(REDIS, "prod-redis").protect


def test_daily_rdb_persistence_with_the_managed_identity_and_no_aof(stack):
    """The plan's daily snapshot is RDB every 1440 minutes; AOF is not enabled (RDB and AOF
    cannot be combined; docs/data-tier.md answers AOF for a regenerable cache), and persistence
    writes with the cache's identity, which holds Storage Blob Data Contributor on the account."""
    # The engine sees the SDK's names; the provider writes them as rdb-backup-enabled etc.
    config = stack.one(REDIS, "prod-redis").inputs["redisConfiguration"]
    assert config["rdbBackupEnabled"] == "true" and config["rdbBackupFrequency"] == "1440"
    assert config["rdbBackupMaxSnapshotCount"] == "1"
    assert config["preferredDataPersistenceAuthMethod"] == "ManagedIdentity"
    assert config["storageSubscriptionId"] == SUBSCRIPTION
    assert "AccountKey" not in config["rdbStorageConnectionString"]
    assert "aofBackupEnabled" not in config
    grant = stack.one("azure-native:authorization:RoleAssignment", "prod-redis-persistence").inputs
    assert grant["scope"] == STORAGE_ID and grant["roleDefinitionId"].endswith(_rbac.STORAGE_BLOB_DATA_CONTRIBUTOR)
    assert grant["principalId"]  # the cache's system-assigned identity


def test_rdb_frequency_accepts_only_the_services_values():
    assert rdb_frequency(timedelta(hours=6)) == "360"
    with pytest.raises(ValueError, match=r"rdb frequency: .* not 120"):
        rdb_frequency(timedelta(hours=2))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (dict(persistence=Persistence(STORAGE_ID, "stcache", "germanywestcentral", soft_delete=False)),
         "persistence.location: the persistence storage account must be in the cache's region"),
        (dict(persistence=Persistence(STORAGE_ID, "stcache", "francecentral", soft_delete=True)),
         "persistence.soft_delete: turn blob soft delete off"),
        (dict(capacity=5), r"capacity: Premium caches are P1..P4"),
        (dict(replicas_per_primary=0), "replicas_per_primary: at least one replica"),
    ],
)
def test_cache_refuses_what_azure_refuses_or_discourages(over, message):
    """"Choose a storage account in the same region and subscription as the cache"; "Enabling
    soft delete on storage accounts is strongly discouraged when used with ... data persistence"."""
    with pytest.raises(ValueError, match=message):
        run(lambda: RedisCache("bad", cache_args(**over)))
