"""The site's private network: VPC, private subnets, endpoints, security groups."""

from __future__ import annotations

from components.aws.network import SiteNetwork, SiteNetworkArgs
from infra.site import Site


def build(site: Site) -> SiteNetwork:
    net = site.cfg.network
    network = SiteNetwork(
        site.name("network"),
        SiteNetworkArgs(
            region=site.region,
            cidr=net.cidr,
            existing_vpc_id=net.vpc_id,
            existing_subnet_ids=list(net.subnet_ids),
        ),
    )
    site.export(
        "network",
        {
            "vpcId": network.vpc_id,
            "privateSubnetIds": network.private_subnet_ids,
            "securityGroups": {
                "app": network.app_sg.id,
                "functions": network.functions_sg.id,
                "database": network.database_sg.id,
                "redis": network.redis_sg.id,
            },
        },
    )
    return network
