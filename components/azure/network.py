"""A site's virtual network, kept to what the data tier needs today: a subnet for private
endpoints (Key Vault and blob storage are reached over Private Link only) and a subnet for
the workloads, with the private DNS zones that make the services' names resolve to the
endpoints inside the network.

The data tier's own subnets: PostgreSQL flexible server's private access needs a subnet
delegated to `Microsoft.DBforPostgreSQL/flexibleServers` (nothing else may live in it) and a
private DNS zone whose name ends in `.postgres.database.azure.com` ("Networking with private
access": not the `privatelink.` zone, which is for private endpoints); the Container Apps
environment of the backup jobs needs a subnet delegated to `Microsoft.App/environments` (a
workload-profiles environment takes a /27 or larger). Redis is reached through a private
endpoint in the endpoints subnet (zone `privatelink.redis.cache.windows.net`), the jobs' image
registry through one too (`privatelink.azurecr.io`: Container Apps is no trusted service of a
registry whose network default is Deny).

Not here: AKS (each site's cluster exists already and is reached by its kubeconfig), NSGs
beyond Azure's defaults, peering between the two sites' networks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

# The Private Link DNS zones of the services this network reaches privately (Azure docs,
# "Azure Private Endpoint private DNS zone values": Key Vault "vault", Storage "blob").
KEY_VAULT_ZONE = "privatelink.vaultcore.azure.net"
BLOB_ZONE = "privatelink.blob.core.windows.net"
REDIS_ZONE = "privatelink.redis.cache.windows.net"
REGISTRY_ZONE = "privatelink.azurecr.io"
ZONES = {"vault": KEY_VAULT_ZONE, "blob": BLOB_ZONE, "redisCache": REDIS_ZONE, "registry": REGISTRY_ZONE}
# Private access (VNet integration) of PostgreSQL flexible server: a zone of the site's own.
POSTGRES_ZONE = "postoucancer.private.postgres.database.azure.com"
# Subnets handed to one service only (Azure "subnet delegation").
DELEGATIONS = {"postgres": "Microsoft.DBforPostgreSQL/flexibleServers", "jobs": "Microsoft.App/environments"}


@dataclass
class SiteNetworkArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    address_space: str
    tags: dict[str, str] = field(default_factory=dict)


def subnet_prefixes(address_space: str) -> dict[str, str]:
    """The subnets carved from the site's address space: private endpoints get the first /24,
    workloads the second /20 (room for AKS nodes), PostgreSQL and the jobs' environment the
    second and third /24 (the order is the VNet's: new subnets are appended, never inserted)."""
    net = ipaddress.ip_network(address_space)
    if net.prefixlen > 19:
        raise ValueError(f"address space {address_space} is too small: a /19 or larger holds its subnets")
    small = net.subnets(new_prefix=24)
    endpoints, postgres, jobs = next(small), next(small), next(small)
    workloads = list(net.subnets(new_prefix=20))[1]
    return {"private-endpoints": str(endpoints), "workloads": str(workloads), "postgres": str(postgres),
            "jobs": str(jobs)}


class SiteNetwork(pulumi.ComponentResource):
    """`postoucancer:azure:SiteNetwork`."""

    vnet: azure_native.network.VirtualNetwork
    subnet_ids: dict[str, pulumi.Output[str]]
    zone_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SiteNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:SiteNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefixes = subnet_prefixes(args.address_space)
        self.vnet = azure_native.network.VirtualNetwork(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space={"address_prefixes": [args.address_space]},
            # Subnets inline: a VirtualNetwork update would otherwise reset subnets it does not list.
            subnets=[
                {
                    "name": subnet,
                    "address_prefix": prefix,
                    # Private endpoints honour NSGs and route tables only with network policies on.
                    "private_endpoint_network_policies": "Enabled",
                    # No implicit internet egress (Azure retires default outbound access).
                    "default_outbound_access": False,
                    **(
                        {"delegations": [{"name": subnet, "service_name": DELEGATIONS[subnet]}]}
                        if subnet in DELEGATIONS
                        else {}
                    ),
                }
                for subnet, prefix in prefixes.items()
            ],
            tags=args.tags,
            opts=child,
        )
        self.subnet_ids = {
            subnet: self.vnet.subnets.apply(lambda subnets, i=i: (subnets or [])[i].id if subnets else "")
            for i, subnet in enumerate(prefixes)
        }
        self.zone_ids = {}
        for group, zone in {**ZONES, "postgres": POSTGRES_ZONE}.items():
            private_zone = azure_native.privatedns.PrivateZone(
                f"{name}-{group}-zone",
                resource_group_name=args.resource_group_name,
                private_zone_name=zone,
                location="global",  # private DNS zones are global resources
                tags=args.tags,
                opts=child,
            )
            azure_native.privatedns.VirtualNetworkLink(
                f"{name}-{group}-link",
                resource_group_name=args.resource_group_name,
                private_zone_name=private_zone.name,
                location="global",
                virtual_network={"id": self.vnet.id},
                registration_enabled=False,
                tags=args.tags,
                opts=child,
            )
            self.zone_ids[group] = private_zone.id
        self.register_outputs({"vnetId": self.vnet.id, "subnetIds": self.subnet_ids})

    def private_endpoint(
        self,
        name: str,
        *,
        resource_group_name: pulumi.Input[str],
        location: str,
        target_id: pulumi.Input[str],
        group: str,
        parent: pulumi.Resource,
    ) -> azure_native.network.PrivateEndpoint:
        """A private endpoint for `target_id`'s `group` ("vault", "blob") in the endpoints subnet,
        registered in the group's private DNS zone."""
        if group not in ZONES:
            raise ValueError(f"no private DNS zone for group {group!r}: known {sorted(ZONES)}")
        child = pulumi.ResourceOptions(parent=parent)
        endpoint = azure_native.network.PrivateEndpoint(
            name,
            resource_group_name=resource_group_name,
            location=location,
            subnet={"id": self.subnet_ids["private-endpoints"]},
            private_link_service_connections=[
                {"name": name, "private_link_service_id": target_id, "group_ids": [group]}
            ],
            opts=child,
        )
        azure_native.network.PrivateDnsZoneGroup(
            f"{name}-dns",
            resource_group_name=resource_group_name,
            private_endpoint_name=endpoint.name,
            private_dns_zone_configs=[{"name": group, "private_dns_zone_id": self.zone_ids[group]}],
            opts=child,
        )
        return endpoint
