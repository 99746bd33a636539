"""Redis on ElastiCache: a replication group with automatic failover across AZs, encrypted
at rest (customer key) and in transit, AUTH-protected, with daily snapshots.

The plan asks for RDB snapshots daily (kept 7 days) and AOF. ElastiCache takes the daily
snapshots (`snapshot_retention_limit`, `snapshot_window`, a final snapshot on delete) but
does not offer AOF for Redis OSS 2.8.22 and later; its replacement is the synchronous
replica in another AZ with automatic failover, which covers what AOF covers (a node that
dies loses nothing acknowledged to its replica). See docs/data-tier.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_aws as aws

from drplan.schedules import SCHEDULES, Schedules

from .kms import CustomerKey
from .windows import daily_window, weekly_window

# ElastiCache keeps automatic snapshots at most this long.
ELASTICACHE_MAX_SNAPSHOT_RETENTION_DAYS = 35
# The shortest snapshot window ElastiCache accepts.
ELASTICACHE_MIN_SNAPSHOT_WINDOW = timedelta(minutes=60)
ENGINE = "redis"
ENGINE_VERSION = "7.1"


def snapshot_window(schedules: Schedules = SCHEDULES) -> str:
    """The hour that ends at the daily backup slot: the cache snapshot is taken with the rest."""
    return daily_window(schedules, timedelta(0), ELASTICACHE_MIN_SNAPSHOT_WINDOW)


def maintenance_window(schedules: Schedules = SCHEDULES) -> str:
    return weekly_window(schedules, 2 * ELASTICACHE_MIN_SNAPSHOT_WINDOW, ELASTICACHE_MIN_SNAPSHOT_WINDOW, 2)


@dataclass
class RedisCacheArgs:
    region: str
    kms_key: CustomerKey
    subnet_ids: list[pulumi.Input[str]]
    security_group_ids: list[pulumi.Input[str]]
    auth_token: pulumi.Input[str]
    node_type: str
    replicas: int  # read replicas besides the primary node (>= 1 for automatic failover)
    snapshot_retention_days: int
    # Physical names AWS requires to be unique per account and region (final snapshots, the
    # vault, restore-testing plans) derive from this; give it the stack, e.g. "staging-database",
    # so that stacks sharing an account never collide. Default: the resource name.
    physical_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class RedisCache(pulumi.ComponentResource):
    """`postoucancer:aws:RedisCache`."""

    group: aws.elasticache.ReplicationGroup

    def __init__(self, name: str, args: RedisCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:RedisCache", name, None, opts)
        if args.replicas < 1:
            raise ValueError("automatic failover and Multi-AZ need at least one replica")
        if not 1 <= args.snapshot_retention_days <= ELASTICACHE_MAX_SNAPSHOT_RETENTION_DAYS:
            raise ValueError(
                f"ElastiCache keeps snapshots 1..{ELASTICACHE_MAX_SNAPSHOT_RETENTION_DAYS} days, "
                f"not {args.snapshot_retention_days}"
            )
        subnets = aws.elasticache.SubnetGroup(
            name,
            region=args.region,
            description="Private subnets of the site network",
            subnet_ids=args.subnet_ids,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.group = aws.elasticache.ReplicationGroup(
            name,
            region=args.region,
            description="Post Ou Cancer cache (regenerable; snapshots for faster recovery)",
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            node_type=args.node_type,
            num_cache_clusters=1 + args.replicas,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key.arn,
            transit_encryption_enabled=True,
            auth_token=pulumi.Output.secret(args.auth_token),
            subnet_group_name=subnets.name,
            security_group_ids=args.security_group_ids,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=snapshot_window(),
            maintenance_window=maintenance_window(),
            final_snapshot_identifier=f"{args.physical_name or name}-final",
            auto_minor_version_upgrade=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True, ignore_changes=["authToken"]),
        )
        self.register_outputs({"primaryEndpoint": self.group.primary_endpoint_address})
