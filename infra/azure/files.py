"""User files on Azure: a StorageV2 account per site (point-in-time restore, versioning,
change feed, 90-day blob and container soft delete, CMK with infrastructure encryption), the
primary's files container replicated into the DR site's twin by object replication."""

from __future__ import annotations

from dataclasses import dataclass

from components.azure.names import storage_account_name
from components.azure.object_replication import ReplicationDestination, ReplicationSource
from components.azure.storage_account import ProtectedStorageAccount, ProtectedStorageAccountArgs
from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.azure.replication import replicate
from infra.site import Site

CONTAINER = "files"


@dataclass(frozen=True)
class Files:
    account: ProtectedStorageAccount
    replication: ReplicationSource | ReplicationDestination | None


def build(site: Site, base: Foundation, keys: Keys) -> Files:
    account = ProtectedStorageAccount(
        site.name("files"),
        ProtectedStorageAccountArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            account_name=storage_account_name(base.subscription_id, site.stack, "files"),
            retention=site.cfg.retention_policy,
            key=keys.storage,
            identity=keys.identities["storage"],
            containers=[CONTAINER],
            purpose="user-files",
            point_in_time_restore=True,
            network=base.network,
            depends_on=list(keys.storage.grants),
            tags=base.tags,
        ),
        opts=base.opts,
    )
    return Files(account, replicate(site, base, "files", account, [CONTAINER]))
