"""DNS failover between the Azure sites: a Traffic Manager profile owned by dr-azure (global, no
region to lose: activation changes it with the primary region gone), priority routing with the
plan's HTTPS probes, one external endpoint per site: each site's `appEndpoint`, the primary's
read from the peer stack, the DR site's its own. Activation disables the primary endpoint
(components/azure/traffic_manager.py), so traffic stays on the DR site even if the old primary
comes back half-alive. The API's public name is a CNAME to the profile's
`<name>.trafficmanager.net` (exported as `dns.fqdn`: the name `python -m infra.activate` reads, as on AWS).
"""

from __future__ import annotations

from components.azure.names import traffic_manager_name
from components.azure.traffic_manager import SiteEndpoint, TrafficManager, TrafficManagerArgs
from infra.azure.app import App
from infra.azure.foundation import Foundation
from infra.site import Site


def build(site: Site, base: Foundation, app: App) -> TrafficManager | None:
    if not site.is_dr:
        return None  # the DR stack owns it: the primary only exports its appEndpoint
    azure = site.cfg.azure
    assert azure is not None
    primary = site.peer.get("appEndpoint")
    if primary is None:
        site.export("dns", {"enabled": False, "waitingFor": "appEndpoint of the primary"})
        return None
    name = azure.traffic_manager_name or traffic_manager_name(base.subscription_id, site.stack)
    manager = TrafficManager(
        site.name("traffic-manager"),
        TrafficManagerArgs(
            resource_group_name=base.group.name,
            relative_dns_name=name,
            primary=SiteEndpoint(primary, site.cfg.peer_region),
            dr=SiteEndpoint(app.endpoint, site.region),
            health_path=site.cfg.app.health_path,
            activated=site.cfg.activated,
            tags=base.tags,
        ),
        opts=base.opts,
    )
    site.export(
        "dns",
        {
            "enabled": True,
            "fqdn": manager.fqdn,
            "routing": "Priority",
            "serving": "dr" if site.cfg.activated else "primary",
        },
    )
    return manager
