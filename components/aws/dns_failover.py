"""Route 53 failover for the public API name: health checks and PRIMARY/SECONDARY records.

Route 53 is a global service: these resources keep working, and can be changed, with the
primary region gone. The dr stack owns them (never the prod stack) for that reason.

Failover is automatic while `forced` is false: PRIMARY → the prod site's load balancer,
guarded by an HTTPS health check on its health endpoint; SECONDARY → the DR site's.
`forced` (the dr stack's `activated`) points the PRIMARY record at the DR site as well, so
every answer is the DR site whatever any health check says — needed when the primary still
answers (database corruption, ransomware) and safe when it does not (data-centre loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.thresholds import HEALTH_CHECK_FAILURES, HEALTH_CHECK_INTERVAL

PRIMARY = "PRIMARY"
SECONDARY = "SECONDARY"
HTTPS_PORT = 443


@dataclass
class DnsFailoverArgs:
    zone_id: str
    record_name: str
    ttl: int
    health_path: str
    dr_endpoint: pulumi.Input[str]
    primary_endpoint: pulumi.Input[str] | None  # None: the prod stack has not been deployed yet
    forced: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class DnsFailover(pulumi.ComponentResource):
    """`postoucancer:aws:DnsFailover`."""

    primary_check: aws.route53.HealthCheck | None
    dr_check: aws.route53.HealthCheck
    primary_record: aws.route53.Record | None
    secondary_record: aws.route53.Record | None

    def __init__(self, name: str, args: DnsFailoverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:DnsFailover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.primary_check = None
        if args.primary_endpoint is not None:
            self.primary_check = self._check(f"{name}-primary-health", args.primary_endpoint, "primary", args, child)
        self.dr_check = self._check(f"{name}-dr-health", args.dr_endpoint, "dr", args, child)

        self.primary_record = self.secondary_record = None
        if args.forced:
            primary_target, primary_check = args.dr_endpoint, self.dr_check
        elif self.primary_check is not None:
            primary_target, primary_check = args.primary_endpoint, self.primary_check
        else:
            # No prod endpoint yet and no activation: a record pair would send users to a
            # standby. Nothing until the prod stack has outputs (see the stack's nextStep).
            primary_target = primary_check = None
        if primary_target is not None and primary_check is not None:
            self.primary_record = self._record(f"{name}-primary", PRIMARY, primary_target, primary_check, args, child)
            self.secondary_record = self._record(
                f"{name}-secondary", SECONDARY, args.dr_endpoint, self.dr_check, args, child
            )
        self.register_outputs(
            {
                "primaryRecord": self.primary_record.fqdn if self.primary_record else None,
                "forced": args.forced,
            }
        )

    @staticmethod
    def _check(name, endpoint, site, args: DnsFailoverArgs, opts) -> aws.route53.HealthCheck:
        return aws.route53.HealthCheck(
            name,
            type="HTTPS",
            fqdn=endpoint,
            port=HTTPS_PORT,
            resource_path=args.health_path,
            request_interval=int(HEALTH_CHECK_INTERVAL.total_seconds()),
            failure_threshold=HEALTH_CHECK_FAILURES,
            enable_sni=True,
            measure_latency=True,
            tags={**args.tags, "Name": f"{args.record_name} {site} site"},
            opts=opts,
        )

    @staticmethod
    def _record(name, role, target, check, args: DnsFailoverArgs, opts) -> aws.route53.Record:
        return aws.route53.Record(
            name,
            zone_id=args.zone_id,
            name=args.record_name,
            type="CNAME",
            ttl=args.ttl,
            records=[target],
            set_identifier=role.lower(),
            failover_routing_policies=[{"type": role}],
            health_check_id=check.id,
            opts=opts,
        )
