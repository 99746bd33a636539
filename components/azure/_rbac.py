"""Role assignments of the data components (backup vault, cache, functions): built-in role
GUIDs (the same in every subscription, Azure docs "Azure built-in roles") and one helper.

Every assignment here is to a managed identity created in the same deployment, so it names
`principal_type="ServicePrincipal"`: Azure documents that without it a new identity may not
have replicated yet and the assignment fails with PrincipalNotFound ("Assign Azure roles using
Azure Resource Manager templates"). Kept beside components/azure/roles.py (the foundation's)
until the two are merged: the GUIDs are the same.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# Azure Backup for PostgreSQL flexible server (vaulted, long-term) backups: granted to the
# backup vault's identity on the server ("About Azure Database for PostgreSQL Flexible server
# backup", permissions for backup).
POSTGRES_LTR_BACKUP = "c088a766-074b-43ba-90d4-1fb21feae531"

ROLE_NAMES = {
    READER: "Reader",
    STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
    POSTGRES_LTR_BACKUP: "PostgreSQL Flexible Server Long Term Retention Backup Role",
}


def subscription_role(subscription_id: str, role: str) -> str:
    """The role definition id of a built-in role, as a role assignment takes it."""
    if role not in ROLE_NAMES:
        raise ValueError(f"{role} is not a built-in role known to components/azure/_rbac.py")
    if not subscription_id or "/" in subscription_id:
        raise ValueError(f"subscription_id: a subscription GUID, not {subscription_id!r}")
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assign(
    name: str,
    *,
    principal_id: pulumi.Input[str],
    role_definition_id: pulumi.Input[str],
    scope: pulumi.Input[str],
    description: str,
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleAssignment:
    return azure_native.authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id,
        scope=scope,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def assign_builtin(
    name: str, *, subscription_id: str, principal_id: pulumi.Input[str], role: str, scope: pulumi.Input[str],
    parent: pulumi.Resource,
) -> azure_native.authorization.RoleAssignment:
    return assign(
        name, principal_id=principal_id, role_definition_id=subscription_role(subscription_id, role),
        scope=scope, description=ROLE_NAMES[role], parent=parent,
    )
