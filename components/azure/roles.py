"""Azure built-in role definitions this project assigns, by their fixed GUIDs (Azure docs,
"Azure built-in roles"; the same GUID in every subscription), and the role assignment helpers:
the one home of both for every Azure component (components/azure/_rbac.py re-exports them).

A role assignment to an identity created in the same deployment names its `principal_type`:
Azure documents that without it a new service principal may not have replicated yet and the
assignment fails with PrincipalNotFound ("Assign Azure roles using Azure Resource Manager
templates": set principalType to ServicePrincipal for new identities).
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

# Wrap/unwrap with a key: what Storage, PostgreSQL and the backup vault need for CMK encryption.
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
# Read secret contents (the database credentials, the jobs' DSN).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# Read, write and delete blobs (object data; delete is still refused by immutability).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
# Azure Backup for PostgreSQL flexible server (vaulted, long-term) backups: granted to the
# backup vault's identity on the server ("About Azure Database for PostgreSQL Flexible server
# backup", permissions for backup).
POSTGRES_LTR_BACKUP = "c088a766-074b-43ba-90d4-1fb21feae531"
# Pull images from a container registry (the backup jobs' image).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"

ROLE_NAMES = {
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: "Key Vault Crypto Service Encryption User",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    READER: "Reader",
    POSTGRES_LTR_BACKUP: "PostgreSQL Flexible Server Long Term Retention Backup Role",
    ACR_PULL: "AcrPull",
}


def role_definition_id(subscription_id: str, role: str) -> str:
    """The role definition id of a built-in role, as a role assignment takes it."""
    if role not in ROLE_NAMES:
        raise ValueError(f"{role} is not a built-in role this project knows (components/azure/roles.py)")
    if not subscription_id or "/" in subscription_id:
        raise ValueError(f"subscription_id: a subscription GUID, not {subscription_id!r}")
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assign_definition(
    name: str,
    *,
    principal_id: pulumi.Input[str],
    role_definition_id: pulumi.Input[str],
    scope: pulumi.Input[str],
    description: str,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> azure_native.authorization.RoleAssignment:
    """Any role definition (a custom one too) for a managed identity at `scope`."""
    return azure_native.authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id,
        scope=scope,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )


def assign(
    name: str,
    *,
    subscription_id: str,
    principal_id: pulumi.Input[str],
    role: str,
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleAssignment:
    """Built-in `role` for a managed identity at `scope` (a resource id): least privilege by scope."""
    return assign_definition(
        name,
        principal_id=principal_id,
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        description=ROLE_NAMES[role],
        parent=parent,
    )
