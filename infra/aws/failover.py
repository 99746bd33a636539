"""DNS failover and the activation record; on the dr stack only (Route 53 is global).

The prod stack exports its load balancer's name (`appEndpoint`); the dr stack reads it
through the StackReference — from the state backend, which lives outside the primary
region — and owns the health checks and failover records. Activation (`activated: true`)
forces the failover and records when it happened.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pulumi
import pulumi_aws as aws

from components.aws.dns_failover import DnsFailover, DnsFailoverArgs
from infra.aws.app import App
from infra.site import Site


def activation_parameter_name(stack: str) -> str:
    return f"/postoucancer/{stack}/activated-at"


def build(site: Site, app: App) -> DnsFailover | None:
    """The failover records (dr only, when dns.* is configured), and the activation record."""
    if not site.is_dr:
        return None  # never on the primary: it must be changeable with the primary region gone
    cfg = site.cfg
    api = app.api
    dns = None
    if cfg.dns.zone_id and cfg.dns.record_name:
        primary_endpoint = site.peer.get("appEndpoint")
        dns = DnsFailover(
            site.name("dns"),
            DnsFailoverArgs(
                zone_id=cfg.dns.zone_id,
                record_name=cfg.dns.record_name,
                ttl=cfg.dns.ttl,
                health_path=cfg.app.health_path,
                dr_endpoint=api.endpoint,
                primary_endpoint=primary_endpoint,
                forced=cfg.activated,
            ),
        )
        site.export(
            "dns",
            {
                "record": cfg.dns.record_name,
                "zoneId": cfg.dns.zone_id,
                "failover": "forced" if cfg.activated else "automatic",
                "primaryTarget": dns.primary_record.records[0] if dns.primary_record else None,
                "secondaryTarget": dns.secondary_record.records[0] if dns.secondary_record else None,
                "primaryHealthCheckId": dns.primary_check.id if dns.primary_check else None,
                "drHealthCheckId": dns.dr_check.id,
            },
        )
    else:
        site.export("dns", {"failover": "not managed (set dns.zoneId, dns.zoneName, dns.recordName)"})
    if cfg.activated:
        # The activation time is stable across later `pulumi up`s: taken from config
        # `activatedAt` (set by `python -m infra.activate`), else the time of the first
        # `pulumi up` with activated=true, and kept by ignore_changes afterwards.
        at = cfg.activated_at or datetime.now(UTC).replace(microsecond=0)
        param = aws.ssm.Parameter(
            site.name("activated-at"),
            name=activation_parameter_name(site.stack),
            type="String",
            value=at.isoformat().replace("+00:00", "Z"),
            description="When the DR site was activated (deleted again on failback)",
            region=site.region,
            opts=pulumi.ResourceOptions(ignore_changes=["value"]),
        )
        site.export("activatedAt", param.value)
    site.export("activated", cfg.activated)
    return dns
