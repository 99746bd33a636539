"""DNS failover between the sites with Azure Traffic Manager (azure-native `trafficmanager`,
API 2022-04-01): a priority-routed profile with HTTPS probes and one external endpoint per site.

Traffic Manager rather than Front Door: the API's clients need a DNS name that follows the
healthy site, which is Route 53's failover record on AWS; Traffic Manager is exactly that (DNS
only, no proxy in the data path, TLS stays on each site's ingress) and is global: its control
plane and DNS do not live in either region, so with the primary region gone the dr-azure stack
can still change it. Front Door would proxy every request through its edge with its own
certificates and WAF: a different architecture, not a failover record.

Owned by the dr-azure stack (like the AWS DNS failover, owned by the dr stack): activation is a
`pulumi up` of the DR stack, which must be able to switch traffic without the primary's stack.
Automatic failover happens anyway (priority routing skips a degraded endpoint); activation
(`activated=True`) also disables the primary endpoint, so that traffic stays on the DR site
even if the old primary comes back half-alive.

Probe settings: the plan's health check (drplan.thresholds: every 10 s, 3 tolerated failures).
Traffic Manager accepts an interval of 30 or 10 s, 0..9 tolerated failures, and a timeout of
5..10 s at 30 s or 5..9 s at 10 s ("Traffic Manager endpoint monitoring").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_azure_native as azure_native

from drplan.thresholds import HEALTH_CHECK_FAILURES, HEALTH_CHECK_INTERVAL

INTERVALS_S = (10, 30)
TIMEOUT_RANGE_S = {10: (5, 9), 30: (5, 10)}
TOLERATED_FAILURES_RANGE = (0, 9)
# The record TTL drplan.recovery.Assumptions.dns_switch budgets for.
DNS_TTL_S = 60
PROBE_TIMEOUT_S = 9  # Azure's default at a 10 s interval


def monitor_config(
    path: str,
    interval: timedelta = HEALTH_CHECK_INTERVAL,
    failures: int = HEALTH_CHECK_FAILURES,
    timeout_s: int = PROBE_TIMEOUT_S,
    port: int = 443,
) -> dict:
    seconds = int(interval.total_seconds())
    if seconds not in INTERVALS_S:
        raise ValueError(f"probe interval: Traffic Manager probes every {INTERVALS_S} seconds, not {seconds}")
    low, high = TIMEOUT_RANGE_S[seconds]
    if not low <= timeout_s <= high:
        raise ValueError(
            f"probe timeout: with a {seconds} s interval Traffic Manager takes {low}..{high} s, not {timeout_s}"
        )
    lo_f, hi_f = TOLERATED_FAILURES_RANGE
    if not lo_f <= failures <= hi_f:
        raise ValueError(f"tolerated failures: Traffic Manager takes {lo_f}..{hi_f}, not {failures}")
    if not path.startswith("/"):
        raise ValueError(f"health_path: a path from the root such as /healthz, not {path!r}")
    return {
        "protocol": "HTTPS",
        "port": port,
        "path": path,
        "interval_in_seconds": seconds,
        "timeout_in_seconds": timeout_s,
        "tolerated_number_of_failures": failures,
        "expected_status_code_ranges": [{"min": 200, "max": 299}],
    }


@dataclass
class SiteEndpoint:
    target: pulumi.Input[str]  # the site's public API host name (its ingress)
    location: str


@dataclass
class TrafficManagerArgs:
    resource_group_name: pulumi.Input[str]
    relative_dns_name: str  # <name>.trafficmanager.net; the API's CNAME points here
    primary: SiteEndpoint
    dr: SiteEndpoint
    health_path: str = "/healthz"
    activated: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class TrafficManager(pulumi.ComponentResource):
    """`postoucancer:azure:TrafficManager`."""

    profile: azure_native.trafficmanager.Profile
    endpoints: dict[str, azure_native.trafficmanager.Endpoint]

    def __init__(self, name: str, args: TrafficManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:TrafficManager", name, None, opts)
        if args.primary.location == args.dr.location:
            raise ValueError("dr.location: the DR endpoint must be in another region than the primary's")
        self.profile = azure_native.trafficmanager.Profile(
            name,
            resource_group_name=args.resource_group_name,
            location="global",
            profile_status="Enabled",
            traffic_routing_method="Priority",
            dns_config={"relative_name": args.relative_dns_name, "ttl": DNS_TTL_S},
            monitor_config=monitor_config(args.health_path),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoints = {}
        for priority, (site, endpoint) in enumerate((("primary", args.primary), ("dr", args.dr)), start=1):
            disabled = site == "primary" and args.activated
            self.endpoints[site] = azure_native.trafficmanager.Endpoint(
                f"{name}-{site}",
                resource_group_name=args.resource_group_name,
                profile_name=self.profile.name,
                endpoint_type="ExternalEndpoints",
                target=endpoint.target,
                endpoint_location=endpoint.location,
                priority=priority,
                endpoint_status="Disabled" if disabled else "Enabled",
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.fqdn = self.profile.dns_config.apply(lambda d: getattr(d, "fqdn", None) if d else None)
        self.register_outputs({"fqdn": self.fqdn})
