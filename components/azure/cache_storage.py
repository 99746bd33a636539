"""The storage account Azure Cache for Redis writes its RDB persistence to: an account of its
own, in the cache's region, encrypted like the others (customer-managed key with
infrastructure encryption, TLS 1.2, HTTPS only, no public access, no shared key, network
default Deny with the trusted services let through) but *without* blob soft delete and
versioning.

Why its own account (not the files or the backups account): Azure strongly discourages soft
delete on a persistence account ("Configure data persistence for a Premium Azure Cache for
Redis instance": every overwritten snapshot would be kept and billed), and both data accounts
keep deleted blobs 90 days by the plan; the backups account is also immutable, and the cache
overwrites its single snapshot at every RDB interval, which an immutability policy refuses.
What it holds is regenerable (the cache), so nothing here is a recovery point of the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from .identity import ManagedIdentity
from .key_vault import VaultKey
from .storage_account import hardened_account

PURPOSE = "cache-persistence"  # policy/rules/azure_storage.py exempts it from soft delete


@dataclass
class CacheStorageArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    account_name: str
    key: VaultKey
    identity: ManagedIdentity  # unwraps the key (Key Vault Crypto Service Encryption User)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class CacheStorage(pulumi.ComponentResource):
    """`postoucancer:azure:CacheStorage`."""

    account: azure_native.storage.StorageAccount
    id: pulumi.Output[str]
    name: pulumi.Output[str]
    soft_delete: bool = False  # what RedisCacheArgs.persistence asks

    def __init__(self, name: str, args: CacheStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:CacheStorage", name, None, opts)
        self.account = azure_native.storage.StorageAccount(
            name,
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku={"name": "Standard_ZRS"},
            access_tier="Hot",
            # The cache reaches the account as a trusted service with its managed identity.
            **hardened_account(args.identity, args.key, bypass="AzureServices"),
            tags={"purpose": PURPOSE, **args.tags},
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.blob_service = azure_native.storage.BlobServiceProperties(
            f"{name}-blob-service",
            resource_group_name=args.resource_group_name,
            account_name=self.account.name,
            blob_services_name="default",
            is_versioning_enabled=False,
            delete_retention_policy={"enabled": False},
            container_delete_retention_policy={"enabled": False},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id, self.name = self.account.id, self.account.name
        self.register_outputs({"id": self.id, "name": self.name})
