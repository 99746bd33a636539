"""A site's resource group: everything of one stack lives in one group of its own region."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native


@dataclass
class SiteResourceGroupArgs:
    name: str  # the physical name (config azure.resourceGroup, default postoucancer-<stack>)
    location: str
    tags: dict[str, str] = field(default_factory=dict)


class SiteResourceGroup(pulumi.ComponentResource):
    """`postoucancer:azure:ResourceGroup`. Protected: deleting a group deletes all it holds."""

    group: azure_native.resources.ResourceGroup
    name: pulumi.Output[str]

    def __init__(self, name: str, args: SiteResourceGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:ResourceGroup", name, None, opts)
        self.group = azure_native.resources.ResourceGroup(
            name,
            resource_group_name=args.name,
            location=args.location,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.name = self.group.name
        self.location = args.location
        self.register_outputs({"name": self.name, "id": self.group.id})
