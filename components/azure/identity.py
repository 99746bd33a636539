"""A user-assigned managed identity: one per consumer (a storage account's key access, the
database server's, the backup vault's), so that each gets exactly its own grants."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native


@dataclass
class ManagedIdentityArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    purpose: str
    tags: dict[str, str] = field(default_factory=dict)


class ManagedIdentity(pulumi.ComponentResource):
    """`postoucancer:azure:ManagedIdentity`."""

    identity: azure_native.managedidentity.UserAssignedIdentity
    id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    client_id: pulumi.Output[str]

    def __init__(self, name: str, args: ManagedIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:ManagedIdentity", name, None, opts)
        self.logical_name = name
        self.identity = azure_native.managedidentity.UserAssignedIdentity(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags={"purpose": args.purpose, **args.tags},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = self.identity.id
        self.principal_id = self.identity.principal_id
        self.client_id = self.identity.client_id
        self.register_outputs({"id": self.id, "principalId": self.principal_id, "clientId": self.client_id})
