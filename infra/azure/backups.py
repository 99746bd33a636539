"""The backup functions' store on Azure: an account with version-level immutability (Locked
in prod), the backups container under an enforced encryption scope, GFS retention by blob index
tags; the primary's container replicated into the DR site's (locked on arrival there too)."""

from __future__ import annotations

from dataclasses import dataclass

from components.azure.backup_storage import CONTAINER, ENCRYPTION_SCOPE, BackupStorage, BackupStorageArgs
from components.azure.names import storage_account_name
from components.azure.object_replication import ReplicationDestination, ReplicationSource
from drplan import layout
from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.azure.replication import replicate
from infra.site import Site

# The functions write under <PREFIX>/<database>/ (drplan.layout), as on AWS.
PREFIX = "postgres"


@dataclass(frozen=True)
class BackupStore:
    storage: BackupStorage
    replication: ReplicationSource | ReplicationDestination | None
    container: str = CONTAINER
    encryption_scope: str = ENCRYPTION_SCOPE


def build(site: Site, base: Foundation, keys: Keys) -> BackupStore:
    cfg = site.cfg
    retention = cfg.retention_policy
    if not cfg.immutability_locked and cfg.locked:
        # The documented first step of a locked site (Azure creates the policy Unlocked only).
        site.export(
            "immutabilityNextStep",
            f"the backup accounts' immutability policy is Unlocked: run `pulumi config rm --path "
            f"azure.immutability -s {site.stack}` and `pulumi up -s {site.stack}` to lock it",
        )
    storage = BackupStorage(
        site.name("backups"),
        BackupStorageArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            account_name=storage_account_name(base.subscription_id, site.stack, "backups"),
            retention=retention,
            key=keys.storage,
            identity=keys.identities["storage"],
            locked=cfg.immutability_locked,
            # Verification records are kept as long as the longest generation they speak of.
            expire_prefixes={f"{PREFIX}/{cfg.database.name}/{layout.VERIFY_DIR}/": retention.longest},
            network=base.network,
            depends_on=list(keys.storage.grants),
            tags=base.tags,
        ),
        opts=base.opts,
    )
    site.export(
        "backupStore",
        {
            "account": storage.storage.name,
            "blobEndpoint": storage.storage.blob_endpoint,
            "container": CONTAINER,
            "encryptionScope": ENCRYPTION_SCOPE,
            "prefix": PREFIX,
            "immutability": "Locked" if cfg.immutability_locked else "Unlocked",
        },
    )
    return BackupStore(storage, replicate(site, base, "backups", storage.storage, [CONTAINER]))
