"""A site's Key Vault: RBAC authorization, purge protection, a private network ACL, and the
customer-managed keys (with a rotation policy) and secrets the site's services use.

The vault denies every network but its private endpoint, the listed deployer addresses, and
the trusted Azure services (Storage, PostgreSQL and Backup reach their keys as trusted
services). Keys and secrets are created through Azure Resource Manager (azure-native's
keyvault.Key and keyvault.Secret), with the data-plane permissions granted by RBAC roles to
each consumer's managed identity, scoped to its own key or secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from drplan.periods import Period, days

from .identity import ManagedIdentity
from .network import SiteNetwork
from .roles import KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, KEY_VAULT_SECRETS_USER, assign

# The longest soft-delete retention Key Vault allows (7..90 days): a deleted vault, key or
# secret stays recoverable this long, and with purge protection nobody can shorten it.
SOFT_DELETE_DAYS = 90
# Customer-managed keys rotate yearly; each version expires two years after its creation and
# Key Vault notifies a month before. Key Vault requires a rotation policy's expiry of at least
# 28 days (Azure docs, KeyRotationPolicy.ExpiresIn: "It should be at least 28 days") and a
# rotation that happens before the expiry.
KEY_ROTATE_AFTER = days(365)
KEY_EXPIRES_AFTER = days(730)
KEY_NOTIFY_BEFORE_EXPIRY = days(30)
MIN_KEY_EXPIRY = days(28)
# RSA 3072: accepted by every consumer here (Storage, PostgreSQL Flexible Server and the Data
# Protection backup vault take RSA 2048, 3072 or 4096 keys). Wrap and unwrap are all CMK needs.
KEY_TYPE, KEY_SIZE = "RSA", 3072
KEY_OPERATIONS = ["wrapKey", "unwrapKey"]


def iso_days(period: Period) -> str:
    return f"P{period.days}D"


def rotation_policy(
    rotate_after: Period = KEY_ROTATE_AFTER,
    expires_after: Period = KEY_EXPIRES_AFTER,
    notify_before: Period = KEY_NOTIFY_BEFORE_EXPIRY,
) -> dict:
    """A key rotation policy Key Vault accepts: expiry ≥ 28 days, rotation before expiry."""
    if expires_after.days < MIN_KEY_EXPIRY.days:
        raise ValueError(f"a key's expiry must be at least {MIN_KEY_EXPIRY} (Key Vault), not {expires_after}")
    if rotate_after.days >= expires_after.days:
        raise ValueError(f"rotation after {rotate_after} would come after the version expired ({expires_after})")
    if notify_before.days >= expires_after.days:
        raise ValueError(f"notification {notify_before} before expiry is longer than the key's life {expires_after}")
    return {
        "attributes": {"expiry_time": iso_days(expires_after)},
        "lifetime_actions": [
            {"trigger": {"time_after_create": iso_days(rotate_after)}, "action": {"type": "rotate"}},
            {"trigger": {"time_before_expiry": iso_days(notify_before)}, "action": {"type": "notify"}},
        ],
    }


@dataclass
class SiteKeyVaultArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    tenant_id: str
    vault_name: str  # globally unique (components/azure/names.py)
    # The deployer's public egress allowed to the data plane (CIDRs); empty: none.
    allowed_ips: list[str] = field(default_factory=list)
    # The site network: the vault gets a private endpoint in it.
    network: SiteNetwork | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VaultKey:
    """A customer-managed key, as its consumers take it."""

    key: azure_native.keyvault.Key
    id: pulumi.Output[str]  # the ARM resource id (role assignment scope)
    name: pulumi.Output[str]
    # Versionless: consumers that take this follow the key's rotation automatically.
    uri: pulumi.Output[str]
    vault_uri: pulumi.Output[str]
    # The users' grants on the key: a consumer that encrypts with it must be created after them.
    grants: tuple[pulumi.Resource, ...] = ()


class SiteKeyVault(pulumi.ComponentResource):
    """`postoucancer:azure:KeyVault`."""

    vault: azure_native.keyvault.Vault
    id: pulumi.Output[str]
    uri: pulumi.Output[str]

    def __init__(self, name: str, args: SiteKeyVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:KeyVault", name, None, opts)
        self._name, self._args = name, args
        public = "Enabled" if args.allowed_ips else "Disabled"
        self.vault = azure_native.keyvault.Vault(
            name,
            vault_name=args.vault_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties={
                "tenant_id": args.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": SOFT_DELETE_DAYS,
                # Once on, purge protection cannot be turned off (Key Vault): protected resource.
                "enable_purge_protection": True,
                "enabled_for_deployment": False,
                "enabled_for_disk_encryption": False,
                "enabled_for_template_deployment": False,
                "public_network_access": public,
                "network_acls": {
                    "default_action": "Deny",
                    "bypass": "AzureServices",
                    "ip_rules": [{"value": ip} for ip in args.allowed_ips],
                    "virtual_network_rules": [],
                },
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.id = self.vault.id
        self.uri = self.vault.properties.apply(lambda p: p.vault_uri)
        if args.network is not None:
            args.network.private_endpoint(
                f"{name}-endpoint",
                resource_group_name=args.resource_group_name,
                location=args.location,
                target_id=self.vault.id,
                group="vault",
                parent=self,
            )
        self.register_outputs({"id": self.id, "uri": self.uri})

    def customer_key(self, purpose: str, *, users: list[ManagedIdentity]) -> VaultKey:
        """A rotating RSA key for `purpose`, which only `users` may wrap and unwrap with."""
        name = f"{self._name}-{purpose}"
        key = azure_native.keyvault.Key(
            name,
            resource_group_name=self._args.resource_group_name,
            vault_name=self.vault.name,
            properties={
                "kty": KEY_TYPE,
                "key_size": KEY_SIZE,
                "key_ops": KEY_OPERATIONS,
                "attributes": {"enabled": True, "exportable": False},
                "rotation_policy": rotation_policy(),
            },
            tags={"purpose": purpose, **self._args.tags},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        grants = tuple(
            assign(
                f"{name}-{user.logical_name}",
                subscription_id=self._args.subscription_id,
                principal_id=user.principal_id,
                role=KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
                scope=key.id,
                parent=self,
            )
            for user in users
        )
        return VaultKey(key=key, id=key.id, name=key.name, uri=key.key_uri, vault_uri=self.uri, grants=grants)

    def secret(
        self, purpose: str, value: pulumi.Input[str], *, readers: list[ManagedIdentity], content_type: str
    ) -> azure_native.keyvault.Secret:
        """A secret (its value a Pulumi secret), readable by `readers` only."""
        name = f"{self._name}-{purpose}"
        secret = azure_native.keyvault.Secret(
            name,
            resource_group_name=self._args.resource_group_name,
            vault_name=self.vault.name,
            secret_name=purpose,
            properties={"value": pulumi.Output.secret(value), "content_type": content_type},
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        for reader in readers:
            assign(
                f"{name}-reader-{reader.logical_name}",
                subscription_id=self._args.subscription_id,
                principal_id=reader.principal_id,
                role=KEY_VAULT_SECRETS_USER,
                scope=secret.id,
                parent=self,
            )
        return secret
