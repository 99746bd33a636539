"""Azure built-in role definitions this project assigns, by their fixed GUIDs (Azure docs,
"Azure built-in roles"; the same GUID in every subscription), and the role assignment helper.

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
# Read secret contents (the database credentials).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# Read, write and delete blobs (object data; delete is still refused by immutability).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"

ROLE_NAMES = {
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: "Key Vault Crypto Service Encryption User",
    KEY_VAULT_SECRETS_USER: "Key Vault Secrets User",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
}


def role_definition_id(subscription_id: str, role: str) -> str:
    if role not in ROLE_NAMES:
        raise ValueError(f"{role} is not a built-in role this project knows (components/azure/roles.py)")
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assign(
    name: str,
    *,
    subscription_id: str,
    principal_id: pulumi.Input[str],
    role: str,
    scope: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleAssignment:
    """`role` for a managed identity at `scope` (a resource id): least privilege by scope."""
    return azure_native.authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id(subscription_id, role),
        scope=scope,
        description=ROLE_NAMES[role],
        opts=pulumi.ResourceOptions(parent=parent),
    )
