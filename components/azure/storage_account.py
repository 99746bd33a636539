"""A data-protecting StorageV2 account: customer-managed key with infrastructure encryption,
TLS 1.2, HTTPS only, no public blob access, no shared keys, blob versioning, change feed,
blob and container soft delete, and either point-in-time restore (user files) or version-level
immutability (backups); lifecycle rules that keep what the plan says and no longer.

Azure's documented constraints, encoded in `check_protection` (each cited where it is checked):
- point-in-time restore needs versioning, change feed and blob soft delete, and its retention
  must be at least one day shorter than soft delete's (point-in-time-restore-overview);
- point-in-time restore is for standard general-purpose v2 accounts only (same page);
- immutable storage is incompatible with point-in-time restore (immutable-storage-overview,
  "Feature support"); version-level immutability needs versioning
  (immutable-version-level-worm-policies): a backup account and a files account are separate;
- infrastructure encryption and account-level version-level immutability can only be set when
  the account is created (the SDK: `require_infrastructure_encryption`,
  `immutable_storage_with_versioning`): changing either replaces the account (infra/activation.py
  REPLACED_BY), which `protect=True` refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from drplan.periods import Period, days
from drplan.retention import Retention

from .identity import ManagedIdentity
from .key_vault import VaultKey
from .network import SiteNetwork
from .roles import STORAGE_BLOB_DATA_CONTRIBUTOR, assign

SOFT_DELETE_MAX_DAYS = 365  # DeleteRetentionPolicy.days: 1..365
IMMUTABILITY_MAX_DAYS = 146_000  # time-based retention: 1 day to 400 years
# Put Block docs: uncommitted blocks are discarded by the service after a week; lifecycle
# management has no action for them (lifecycle-management-policy-structure: tier and delete
# only). This is how "aborted uploads cleaned up" is met on Azure.
UNCOMMITTED_BLOCKS_DISCARDED_AFTER = days(7)


@dataclass(frozen=True)
class Immutability:
    """The account's default version-level immutability policy (inherited by every new version)."""

    period: Period
    locked: bool
    # Append blobs may grow under the policy (what Azure Monitor's exports write); backups: never.
    allow_protected_append_writes: bool = False


@dataclass(frozen=True)
class AccountFeatures:
    """What replication and the policy pack need to know of an account (also exported)."""

    versioning: bool
    change_feed: bool
    point_in_time_restore_days: int | None
    soft_delete_days: int
    immutable: bool

    def to_output(self) -> dict:
        return {
            "versioning": self.versioning,
            "changeFeed": self.change_feed,
            "pointInTimeRestoreDays": self.point_in_time_restore_days,
            "softDeleteDays": self.soft_delete_days,
            "immutable": self.immutable,
        }


@dataclass
class ProtectedStorageAccountArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    account_name: str
    retention: Retention
    key: VaultKey
    # The account's identity: it unwraps the key (Key Vault Crypto Service Encryption User).
    identity: ManagedIdentity
    containers: list[str]
    purpose: str
    point_in_time_restore: bool = False
    # A replication source needs it (object-replication-overview); point-in-time restore too.
    change_feed: bool = True
    immutability: Immutability | None = None
    # Further lifecycle rules (ManagementPolicyRuleArgs dicts), e.g. GFS expiry by index tag.
    lifecycle_rules: list[dict] = field(default_factory=list)
    # An encryption scope (name) under the same key, the containers' enforced default: writers
    # name it (the backup functions' BACKUP_KMS_KEY_ID).
    encryption_scope: str | None = None
    # Identities that write blobs (Storage Blob Data Contributor on the account); they can never
    # delete a locked version (immutability) nor purge soft-deleted ones.
    writers: list[ManagedIdentity] = field(default_factory=list)
    network: SiteNetwork | None = None
    # ZRS: three zones of the region. Not GZRS: the copy in the DR region is object replication's
    # (a GZRS secondary lives in the paired region, France South, not the DR site).
    sku: str = "Standard_ZRS"
    # Ordering: the identity's grant on the key must exist before an account encrypts with it.
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def soft_delete(self) -> Period:
        return self.retention.deleted_files

    @property
    def point_in_time_restore_days(self) -> int | None:
        """The longest restore window Azure allows: one day shorter than blob soft delete."""
        return self.soft_delete.days - 1 if self.point_in_time_restore else None


def check_protection(args: ProtectedStorageAccountArgs) -> AccountFeatures:
    """The account's features, or ValueError naming the documented constraint it breaks."""
    soft = args.soft_delete.days
    if not 1 <= soft <= SOFT_DELETE_MAX_DAYS:
        raise ValueError(f"blob soft delete of {soft} days: Azure allows 1 to {SOFT_DELETE_MAX_DAYS}")
    pitr = args.point_in_time_restore_days
    if pitr is not None:
        if args.immutability is not None:
            raise ValueError(
                "point-in-time restore and immutable storage cannot share an account "
                "(immutable-storage-overview: incompatible with point-in-time restore)"
            )
        if not args.change_feed:
            raise ValueError("point-in-time restore needs the change feed (point-in-time-restore-overview)")
        if not 1 <= pitr <= soft - 1:
            raise ValueError(
                f"point-in-time restore of {pitr} days must be at least one day shorter than "
                f"blob soft delete ({soft} days) (point-in-time-restore-overview)"
            )
        if not args.sku.startswith("Standard_"):
            raise ValueError(f"point-in-time restore needs a standard general-purpose v2 account, not {args.sku}")
    if args.immutability is not None and not 1 <= args.immutability.period.days <= IMMUTABILITY_MAX_DAYS:
        raise ValueError(f"an immutability period of {args.immutability.period}: Azure allows 1 day to 400 years")
    return AccountFeatures(
        versioning=True,
        change_feed=args.change_feed,
        point_in_time_restore_days=pitr,
        soft_delete_days=soft,
        immutable=args.immutability is not None,
    )


def previous_versions_rule(retention: Retention) -> dict:
    """Previous versions (deleted or overwritten blobs) go `deleted_files` after they were written.

    Azure counts a previous version's age from when it was first written, not from when it
    became a previous version (lifecycle-management-policy-structure, "Action run conditions"),
    so a blob deleted late in its life loses its version soon after. It is not lost then: with
    blob soft delete a deleted version stays recoverable for the soft-delete period
    (lifecycle-management-policy-delete), which is `deleted_files`: every deleted file can be
    brought back for at least that long after its deletion.
    """
    return {
        "name": "previous-versions",
        "enabled": True,
        "type": "Lifecycle",
        "definition": {
            "filters": {"blob_types": ["blockBlob"]},
            "actions": {"version": {"delete": {"days_after_creation_greater_than": retention.deleted_files.days}}},
        },
    }


class ProtectedStorageAccount(pulumi.ComponentResource):
    """`postoucancer:azure:StorageAccount`."""

    account: azure_native.storage.StorageAccount
    blob_service: azure_native.storage.BlobServiceProperties
    containers: dict[str, azure_native.storage.BlobContainer]
    features: AccountFeatures
    id: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ProtectedStorageAccountArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:StorageAccount", name, None, opts)
        self.features = check_protection(args)
        child = pulumi.ResourceOptions(parent=self)
        immutability = None
        if args.immutability is not None:
            immutability = {
                "enabled": True,
                "immutability_policy": {
                    "immutability_period_since_creation_in_days": args.immutability.period.days,
                    "state": "Locked" if args.immutability.locked else "Unlocked",
                    "allow_protected_append_writes": args.immutability.allow_protected_append_writes,
                },
            }
        self.account = azure_native.storage.StorageAccount(
            name,
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku={"name": args.sku},
            access_tier="Hot",
            **hardened_account(args.identity, args.key, bypass="AzureServices, Logging, Metrics"),
            immutable_storage_with_versioning=immutability,
            tags={"purpose": args.purpose, **args.tags},
            opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=args.depends_on),
        )
        self.id, self.name = self.account.id, self.account.name
        pitr = self.features.point_in_time_restore_days
        self.blob_service = azure_native.storage.BlobServiceProperties(
            f"{name}-blob-service",
            resource_group_name=args.resource_group_name,
            account_name=self.account.name,
            blob_services_name="default",
            is_versioning_enabled=True,
            change_feed={"enabled": args.change_feed, "retention_in_days": args.soft_delete.days}
            if args.change_feed
            else {"enabled": False},
            delete_retention_policy={"enabled": True, "days": args.soft_delete.days, "allow_permanent_delete": False},
            container_delete_retention_policy={"enabled": True, "days": args.soft_delete.days},
            restore_policy={"enabled": True, "days": pitr} if pitr is not None else {"enabled": False},
            opts=child,
        )
        scope = None
        if args.encryption_scope is not None:
            scope = azure_native.storage.EncryptionScope(
                f"{name}-scope",
                resource_group_name=args.resource_group_name,
                account_name=self.account.name,
                encryption_scope_name=args.encryption_scope,
                source="Microsoft.KeyVault",
                key_vault_properties={"key_uri": args.key.uri},  # versionless: follows rotation
                require_infrastructure_encryption=True,
                state="Enabled",
                opts=child,
            )
        self.containers = {
            container: azure_native.storage.BlobContainer(
                f"{name}-{container}",
                resource_group_name=args.resource_group_name,
                account_name=self.account.name,
                container_name=container,
                public_access="None",
                default_encryption_scope=scope.name if scope is not None else None,
                deny_encryption_scope_override=True if scope is not None else None,
                opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=[self.blob_service]),
            )
            for container in args.containers
        }
        azure_native.storage.ManagementPolicy(
            f"{name}-lifecycle",
            resource_group_name=args.resource_group_name,
            account_name=self.account.name,
            management_policy_name="default",
            policy={"rules": [previous_versions_rule(args.retention), *args.lifecycle_rules]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.blob_service]),
        )
        for writer in args.writers:
            assign(
                f"{name}-writer-{writer.logical_name}",
                subscription_id=args.subscription_id,
                principal_id=writer.principal_id,
                role=STORAGE_BLOB_DATA_CONTRIBUTOR,
                scope=self.account.id,
                parent=self,
            )
        if args.network is not None:
            args.network.private_endpoint(
                f"{name}-endpoint",
                resource_group_name=args.resource_group_name,
                location=args.location,
                target_id=self.account.id,
                group="blob",
                parent=self,
            )
        self.blob_endpoint = self.account.primary_endpoints.apply(lambda e: e.blob if e else None)
        self.register_outputs({"id": self.id, "name": self.name})

    def output(self) -> pulumi.Output[dict]:
        """What the peer site is told of this account (its id, name, features)."""
        return pulumi.Output.all(self.id, self.name, self.versioned_id).apply(
            lambda a: {"id": a[0], "name": a[1], **self.features.to_output()}
        )

    @property
    def versioned_id(self) -> pulumi.Output[str]:
        """The account id, known only once versioning (and the change feed) are on: replication
        refuses an account without them, so the peer is told of it no earlier."""
        return pulumi.Output.all(self.id, self.blob_service.id).apply(lambda a: a[0])


def hardened_account(identity: ManagedIdentity, key: VaultKey, bypass: str) -> dict:
    """What every storage account of this project has, whatever it holds: TLS 1.2 and HTTPS only,
    no public blob access, no shared keys (Entra ID only), copies within the tenant, a flat
    namespace, the network closed but to `bypass` trusted services, and infrastructure
    encryption with the customer key through the account's own identity."""
    return dict(
        minimum_tls_version="TLS1_2",
        enable_https_traffic_only=True,
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        # Copies from and to this account only within the tenant (no exfiltration by copy).
        allowed_copy_scope="AAD",
        is_hns_enabled=False,  # versioning, immutability and object replication need a flat namespace
        public_network_access="Enabled",
        network_rule_set={"default_action": "Deny", "bypass": bypass},
        identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
        encryption={
            "key_source": "Microsoft.Keyvault",
            "require_infrastructure_encryption": True,
            # No key version: the account follows the key's rotation (automatic key version update).
            "key_vault_properties": {"key_name": key.name, "key_vault_uri": key.vault_uri},
            "encryption_identity": {"encryption_user_assigned_identity": identity.id},
            "services": {
                "blob": {"enabled": True, "key_type": "Account"},
                "file": {"enabled": True, "key_type": "Account"},
            },
        },
    )
