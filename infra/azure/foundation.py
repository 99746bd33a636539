"""What every Azure concern of a site stands on: the site's explicit provider (subscription and
tenant from the typed config), its resource group and its network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from components.azure.network import SiteNetwork, SiteNetworkArgs
from components.azure.resource_group import SiteResourceGroup, SiteResourceGroupArgs
from drplan.names import STACK_TAG_KEY
from infra.site import Site


@dataclass(frozen=True)
class Foundation:
    provider: azure_native.Provider
    group: SiteResourceGroup
    network: SiteNetwork
    subscription_id: str
    tenant_id: str
    tags: dict[str, str]

    @property
    def opts(self) -> pulumi.ResourceOptions:
        """For a top-level component of the site: its children use the site's provider."""
        return pulumi.ResourceOptions(providers=[self.provider])


def build(site: Site) -> Foundation:
    azure = site.cfg.azure
    assert azure is not None  # config: cloud azure requires the section
    provider = azure_native.Provider(
        site.name("azure"),
        subscription_id=azure.subscription_id,
        tenant_id=azure.tenant_id,
        location=site.region,
    )
    # Every resource names the stack that owns it (drplan.names.STACK_TAG_KEY), as on AWS.
    tags = {STACK_TAG_KEY: site.stack, "role": site.cfg.role.value}
    opts = pulumi.ResourceOptions(providers=[provider])
    group = SiteResourceGroup(
        site.name("group"),
        SiteResourceGroupArgs(name=site.cfg.resource_group(site.stack), location=site.region, tags=tags),
        opts=opts,
    )
    network = SiteNetwork(
        site.name("network"),
        SiteNetworkArgs(
            resource_group_name=group.name, location=site.region, address_space=azure.address_space, tags=tags
        ),
        opts=opts,
    )
    site.export(
        "azure",
        {
            "subscriptionId": azure.subscription_id,
            "resourceGroup": group.name,
            "resourceGroupId": group.group.id,
            "location": site.region,
            "vnetId": network.vnet.id,
        },
    )
    return Foundation(provider, group, network, azure.subscription_id, azure.tenant_id, tags)
