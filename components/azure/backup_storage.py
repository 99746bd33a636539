"""Where the backup functions' dumps live on Azure: a storage account of its own with
version-level immutability (a default policy every new version inherits, Locked where the
tier asks for it), the backups container under an enforced encryption scope on the site's
customer-managed key, and GFS retention enforced by lifecycle rules on the functions' blob
index tags (drplan.layout.GFS_TAG_KEY), the way S3 expires by object tag.

What Azure's lifecycle management can and cannot do here (lifecycle-management-policy-structure,
storage-manage-find-blobs):
- `blobIndexMatch` filters on the *current* version's index tags only ("Index tags are
  preserved for previous versions, but those tags aren't passed to the blob index engine"):
  one rule per GFS class deletes the current version `for_class(c)` after it was written;
- with versioning on, that delete turns the current version into a previous version, which a
  tag cannot select: `expired_versions_rule` deletes previous versions `shortest` days after
  they were written. It cannot cut a generation short: a backup becomes a previous version only
  once it is deleted, and no version can be deleted before its own immutability period (the
  class's retention, set by the function; at least the account default) is over;
- prefixes start with the container name; up to 10 tag conditions and 10 prefixes per rule;
- Azure also documents that "the delete action of a lifecycle management policy won't work
  with any blob in an immutable container": expired versions of an immutable container may
  then stay (cost, never a loss), which the first real deployment must check (docs/azure.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from drplan import layout
from drplan.periods import Period
from drplan.retention import Retention

from .identity import ManagedIdentity
from .key_vault import VaultKey
from .network import SiteNetwork
from .storage_account import Immutability, ProtectedStorageAccount, ProtectedStorageAccountArgs

CONTAINER = "backups"
# The encryption scope the functions write with (their BACKUP_KMS_KEY_ID on Azure).
ENCRYPTION_SCOPE = "backups-cmk"
MAX_TAG_CONDITIONS = MAX_PREFIXES = 10


def _rule(name: str, filters: dict, actions: dict) -> dict:
    if len(filters.get("blob_index_match", [])) > MAX_TAG_CONDITIONS:
        raise ValueError(f"lifecycle rule {name}: at most {MAX_TAG_CONDITIONS} blob index tag conditions")
    if len(filters.get("prefix_match", [])) > MAX_PREFIXES:
        raise ValueError(f"lifecycle rule {name}: at most {MAX_PREFIXES} prefixes")
    return {
        "name": name,
        "enabled": True,
        "type": "Lifecycle",
        "definition": {"filters": {"blob_types": ["blockBlob"], **filters}, "actions": actions},
    }


def gfs_rules(container: str, retention: Retention, tag_key: str = layout.GFS_TAG_KEY) -> list[dict]:
    """One rule per GFS class of `retention`: the current version tagged `<tag_key>=<class>`
    is deleted `for_class(class)` days after it was written."""
    return [
        _rule(
            f"expire-{gfs.value}",
            {
                "prefix_match": [f"{container}/"],
                "blob_index_match": [{"name": tag_key, "op": "==", "value": gfs.value}],
            },
            {"base_blob": {"delete": {"days_after_creation_greater_than": retention.for_class(gfs).days}}},
        )
        for gfs in retention.classes
    ]


def expired_versions_rule(container: str, retention: Retention) -> dict:
    """Previous versions of backups (what a GFS rule's delete leaves) go `shortest` days after
    they were written: by then each has outlived its own lock (see the module docstring)."""
    return _rule(
        "expired-backup-versions",
        {"prefix_match": [f"{container}/"]},
        {"version": {"delete": {"days_after_creation_greater_than": retention.shortest.days}}},
    )


def prefix_rules(container: str, expire_prefixes: dict[str, Period]) -> list[dict]:
    """Current versions under each prefix (inside `container`) deleted after the period."""
    return [
        _rule(
            f"expire-{prefix.strip('/').replace('/', '-') or 'all'}",
            {"prefix_match": [f"{container}/{prefix.lstrip('/')}"]},
            {"base_blob": {"delete": {"days_after_creation_greater_than": period.days}}},
        )
        for prefix, period in sorted(expire_prefixes.items())
    ]


@dataclass
class BackupStorageArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    account_name: str
    retention: Retention
    key: VaultKey
    identity: ManagedIdentity
    # Locked: the default policy cannot be shortened or removed (Azure creates it Unlocked only:
    # the first deployment of a locked site runs unlocked, docs/azure.md).
    locked: bool
    # Extra expirations under the container (e.g. the verification records): {prefix: period}.
    expire_prefixes: dict[str, Period] = field(default_factory=dict)
    network: SiteNetwork | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class BackupStorage(pulumi.ComponentResource):
    """`postoucancer:azure:BackupStorage`."""

    storage: ProtectedStorageAccount

    def __init__(self, name: str, args: BackupStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:BackupStorage", name, None, opts)
        rules = [
            *gfs_rules(CONTAINER, args.retention),
            expired_versions_rule(CONTAINER, args.retention),
            *prefix_rules(CONTAINER, args.expire_prefixes),
        ]
        self.storage = ProtectedStorageAccount(
            name,
            ProtectedStorageAccountArgs(
                resource_group_name=args.resource_group_name,
                location=args.location,
                subscription_id=args.subscription_id,
                account_name=args.account_name,
                retention=args.retention,
                key=args.key,
                identity=args.identity,
                containers=[CONTAINER],
                purpose="backups",
                point_in_time_restore=False,  # incompatible with immutability
                change_feed=True,  # the replication source needs it
                # The floor every version gets, replicated copies included: the shortest class.
                immutability=Immutability(period=args.retention.shortest, locked=args.locked),
                lifecycle_rules=rules,
                encryption_scope=ENCRYPTION_SCOPE,
                network=args.network,
                depends_on=args.depends_on,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"id": self.storage.id, "container": CONTAINER})
