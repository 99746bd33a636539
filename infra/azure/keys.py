"""Keys and secrets per site: the Key Vault, one managed identity per consumer of a
customer-managed key, and the keys themselves (storage, PostgreSQL, the backup vault). The
database and backup-vault keys and identities are handed to those concerns' components."""

from __future__ import annotations

from dataclasses import dataclass

from components.azure.identity import ManagedIdentity, ManagedIdentityArgs
from components.azure.key_vault import SiteKeyVault, SiteKeyVaultArgs, VaultKey
from components.azure.names import key_vault_name
from infra.azure.foundation import Foundation
from infra.site import Site

# Who encrypts with a key of this site: each gets its own identity and only its own key.
CONSUMERS = ("storage", "database", "backup-vault")
# The primary server's geo-redundant backups need a second key and a *different* identity
# (Azure, "Configure data encryption"). Azure recommends (does not require) them in the paired
# region; France Central's pair, France South, is restricted-access, so the key lives in the
# site's own vault, whose contents Key Vault itself keeps readable in the paired region.
GEO_BACKUP = "database-geo"


@dataclass(frozen=True)
class Keys:
    vault: SiteKeyVault
    identities: dict[str, ManagedIdentity]
    storage: VaultKey  # the site's storage accounts (files, backups) and their encryption scopes
    database: VaultKey  # PostgreSQL Flexible Server's data encryption
    backup_vault: VaultKey  # the Data Protection backup vault's encryption
    database_geo: VaultKey | None = None  # the primary server's geo-backups (primary site only)


def build(site: Site, base: Foundation) -> Keys:
    azure = site.cfg.azure
    assert azure is not None
    consumers = (*CONSUMERS, GEO_BACKUP) if site.is_primary else CONSUMERS
    identities = {
        purpose: ManagedIdentity(
            site.name(f"{purpose}-identity"),
            ManagedIdentityArgs(
                resource_group_name=base.group.name, location=site.region, purpose=purpose, tags=base.tags
            ),
            opts=base.opts,
        )
        for purpose in consumers
    }
    vault = SiteKeyVault(
        site.name("vault"),
        SiteKeyVaultArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            tenant_id=base.tenant_id,
            vault_name=key_vault_name(base.subscription_id, site.stack),
            allowed_ips=list(azure.key_vault_allowed_ips),
            network=base.network,
            tags=base.tags,
        ),
        opts=base.opts,
    )
    keys = {purpose: vault.customer_key(purpose, users=[identities[purpose]]) for purpose in consumers}
    site.export(
        "keyVault",
        {
            "id": vault.id,
            "uri": vault.uri,
            "keys": {purpose: key.id for purpose, key in keys.items()},
            "identities": {purpose: identity.id for purpose, identity in identities.items()},
        },
    )
    return Keys(vault, identities, keys["storage"], keys["database"], keys["backup-vault"], keys.get(GEO_BACKUP))
