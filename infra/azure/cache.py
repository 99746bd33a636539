"""The cache on Azure: Azure Cache for Redis Premium per site, RDB persistence into a storage
account of its own (components/azure/cache_storage.py says why neither the files account nor
the immutable backups account: both keep deleted blobs 90 days, which Azure discourages for
persistence, and the backups account also refuses the overwrite of the single snapshot).

Each site has its own cache; the DR cache starts empty and warms up after activation (the
plan: the cache can be rebuilt). Activation changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.azure.cache_storage import CacheStorage, CacheStorageArgs
from components.azure.names import storage_account_name
from components.azure.redis import Persistence, PrivateAccess, RedisCache, RedisCacheArgs
from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.site import Site

REDIS_TLS_PORT = 6380  # Azure Cache for Redis: TLS only, non-TLS port 6379 off


@dataclass(frozen=True)
class Cache:
    redis: RedisCache
    persistence: CacheStorage


def build(site: Site, base: Foundation, keys: Keys) -> Cache:
    azure = site.cfg.azure
    assert azure is not None
    storage = CacheStorage(
        site.name("cache-persistence"),
        CacheStorageArgs(
            resource_group_name=base.group.name,
            location=site.region,
            account_name=storage_account_name(base.subscription_id, site.stack, "cache"),
            key=keys.storage,
            identity=keys.identities["storage"],
            depends_on=list(keys.storage.grants),
            tags=base.tags,
        ),
        opts=base.opts,
    )
    redis = RedisCache(
        site.name("cache"),
        RedisCacheArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            private_access=PrivateAccess(
                base.network.subnet_ids["private-endpoints"], base.network.zone_ids["redisCache"]
            ),
            persistence=Persistence(storage.id, storage.name, site.region, soft_delete=storage.soft_delete),
            capacity=azure.redis_capacity,
            tags=base.tags,
        ),
        opts=base.opts,
    )
    site.export("cache", {"host": redis.cache.host_name, "port": REDIS_TLS_PORT, "persistence": storage.name})
    return Cache(redis, storage)
