"""PostgreSQL on RDS: the primary (prod site) and the warm standby (DR site).

`PostgresPrimary` is Multi-AZ, encrypted with a customer key, protected three ways
(`protect=True`, deletion protection, a final snapshot), keeps automated backups
(continuous WAL, point-in-time recovery) as long as the DR model's WAL retention, and
forces TLS through its parameter group.

`PostgresStandby` lives in the DR region and holds two independent ways back:
  * `backups`: cross-region automated-backup replication of the primary (snapshots and
    transaction logs copied into this region under a DR-region key): point-in-time
    restore in the DR region, even to a moment before a logical fault;
  * `replica`: a cross-region read replica (warm standby), encrypted with a DR-region
    key. With `promote=True` (the site's `activated: true`) the same resource loses
    `replicate_source_db`: RDS promotes it in place to a standalone, writable primary.
    Its logical name, URN and protection stay; nothing is replaced.

A promoted instance never becomes a replica again (RDS: "cannot elect new source database
for replication"), so failback re-seeds with new instances: `generation` (config
`database.generation`) names them, `<name>-g<N>` from the second on. Every instance is
retained on delete: an instance that leaves the program (a former generation, after
`pulumi state unprotect`) stays in AWS with its diverged data until someone deletes it on
purpose (docs/failback.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_aws as aws

from drplan.schedules import SCHEDULES, Schedules
from drplan.thresholds import BACKUP_WINDOW_GAP

from .backup_plan import SELECTION_TAG
from .iam import from_account, service_trust_policy
from .kms import CustomerKey
from .windows import daily_window, weekly_window

# RDS keeps automated backups (and transaction logs) at most this long.
RDS_MAX_BACKUP_RETENTION_DAYS = 35
# The shortest backup window RDS accepts.
RDS_MIN_BACKUP_WINDOW = timedelta(minutes=30)
# Performance Insights' free retention tier (7 days); longer is billed per month.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7
LOG_EXPORTS = ["postgresql", "upgrade"]
SLOW_STATEMENT_MS = 1000
# Storage autoscaling ceiling, as a multiple of the allocated storage.
STORAGE_AUTOSCALING_FACTOR = 4
# Enhanced Monitoring: OS metrics every minute (RDS accepts 0, 1, 5, 10, 15, 30, 60 s; 60 s is
# the cheapest interval that still shows a minute-scale stall during a restore or failover).
ENHANCED_MONITORING_INTERVAL_S = 60
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def parameters() -> list[dict[str, str]]:
    """TLS only, and enough logging to investigate an incident."""
    values = {
        "rds.force_ssl": "1",
        "log_connections": "1",
        "log_disconnections": "1",
        "log_lock_waits": "1",
        "log_min_duration_statement": str(SLOW_STATEMENT_MS),
        "log_statement": "ddl",
    }
    return [{"name": k, "value": v, "apply_method": "immediate"} for k, v in sorted(values.items())]


def family(engine_version: str) -> str:
    return f"postgres{engine_version.split('.', 1)[0]}"


def backup_window(schedules: Schedules = SCHEDULES) -> str:
    """RDS's own daily backup window: ends `BACKUP_WINDOW_GAP` before the AWS Backup slot.

    AWS Backup refuses to snapshot an RDS instance while its automated backup runs, and
    recommends an hour between the two; the window is as short as RDS accepts.
    """
    return daily_window(schedules, BACKUP_WINDOW_GAP, RDS_MIN_BACKUP_WINDOW)


def maintenance_window(schedules: Schedules = SCHEDULES) -> str:
    """Weekly maintenance after the backup slot and before the restore test, mid-week."""
    return weekly_window(schedules, 2 * BACKUP_WINDOW_GAP, RDS_MIN_BACKUP_WINDOW, 3)


def check_retention(days: int) -> int:
    if not 1 <= days <= RDS_MAX_BACKUP_RETENTION_DAYS:
        raise ValueError(f"RDS keeps automated backups 1..{RDS_MAX_BACKUP_RETENTION_DAYS} days, not {days}")
    return days


def instance_name(name: str, generation: int) -> str:
    """The logical (and final-snapshot) name of a generation's instance; the first keeps the
    component's name, so that stacks deployed before generations existed change nothing."""
    if generation < 1:
        raise ValueError(f"{name}: database generations start at 1, not {generation}")
    return name if generation == 1 else f"{name}-g{generation}"


@dataclass
class DatabaseNetwork:
    subnet_ids: list[pulumi.Input[str]]
    security_group_ids: list[pulumi.Input[str]]


def _parameter_group(name: str, region: str, engine_version: str, parent: pulumi.Resource) -> aws.rds.ParameterGroup:
    return aws.rds.ParameterGroup(
        name,
        region=region,
        name_prefix=f"{name}-",
        family=family(engine_version),
        description="Post Ou Cancer: TLS only, connection/DDL/slow-statement logging",
        parameters=parameters(),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _subnet_group(name: str, region: str, net: DatabaseNetwork, parent: pulumi.Resource) -> aws.rds.SubnetGroup:
    return aws.rds.SubnetGroup(
        name,
        region=region,
        name_prefix=f"{name}-",
        description="Private subnets of the site network",
        subnet_ids=net.subnet_ids,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass
class PostgresPrimaryArgs:
    region: str
    kms_key: CustomerKey
    network: DatabaseNetwork
    password: pulumi.Input[str]
    backup_retention_days: int
    instance_class: str
    allocated_storage_gb: int
    engine_version: str = "15"
    db_name: str = "postoucancer"
    username: str = "postoucancer_admin"
    # Physical names AWS requires to be unique per account and region (final snapshots, the
    # vault, restore-testing plans) derive from this; give it the stack, e.g. "staging-database",
    # so that stacks sharing an account never collide. Default: the resource name.
    physical_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Failback: the instance of this generation is born a replica of another region's database.
    generation: int = 1
    # Failback seeding: the ARN of the (promoted) DR database this generation replicates until
    # it is switched over (None again promotes it, in place). Only for generation 2 and later.
    replicate_from: pulumi.Input[str] | None = None


class PostgresPrimary(pulumi.ComponentResource):
    """`postoucancer:aws:PostgresPrimary`."""

    instance: aws.rds.Instance
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresPrimaryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:PostgresPrimary", name, None, opts)
        region = args.region
        self.parameter_group = _parameter_group(name, region, args.engine_version, self)
        self.subnet_group = _subnet_group(name, region, args.network, self)
        self.monitoring_role = _monitoring_role(name, self)
        instance = instance_name(name, args.generation)
        seeding = args.replicate_from is not None
        if seeding and args.generation < 2:
            raise ValueError(f"{name}: the first generation was created a primary; a replica is a new generation")
        # The first generation was created with credentials; a later one was born a replica and
        # inherits them (with the database) from its source: declaring them would be refused.
        credentials = (
            dict(db_name=args.db_name, username=args.username, password=pulumi.Output.secret(args.password))
            if args.generation == 1
            else {}
        )
        self.instance = aws.rds.Instance(
            instance,
            region=region,
            engine="postgres",
            engine_version=args.engine_version,
            # Seeding, it replicates the DR site's database across regions; the switch-over
            # removes this and RDS promotes the instance in place.
            replicate_source_db=args.replicate_from,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.allocated_storage_gb * STORAGE_AUTOSCALING_FACTOR,
            # Multi-AZ from birth, even while a replica (RDS creates Multi-AZ read replicas): the
            # switch-over is then a promotion only, with no conversion to wait for.
            multi_az=True,
            **credentials,
            **{**_hardened(instance, args, self, check_retention(args.backup_retention_days)),
               **(REPLICA_DELETION if seeding else {})},
            # A later generation's promotion (the switch-over) must not wait for the maintenance
            # window; the first keeps the window for its size changes, as it always had.
            apply_immediately=True if args.generation > 1 else None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=True,
                retain_on_delete=True,
                # The password is generated once and lives in Secrets Manager from then on.
                ignore_changes=["password"] if args.generation == 1 else None,
            ),
        )
        self.arn = self.instance.arn
        self.register_outputs({"arn": self.arn, "endpoint": self.instance.endpoint})


@dataclass
class PostgresStandbyArgs:
    region: str
    kms_key: CustomerKey  # a key in the DR region: replica storage and replicated backups
    network: DatabaseNetwork
    source_instance_arn: pulumi.Input[str] | None  # None: the primary has no outputs yet
    backup_retention_days: int
    standby_instance_class: str
    promoted_instance_class: str
    warm_standby: bool = True
    promote: bool = False
    # Once promoted (a second `pulumi up`): Multi-AZ at the promoted class. Promotion alone keeps
    # the standby's size, so that it is quick and nothing waits for a Multi-AZ conversion.
    production_scale: bool = False
    engine_version: str = "15"
    # Physical names AWS requires to be unique per account and region (final snapshots, the
    # vault, restore-testing plans) derive from this; give it the stack, e.g. "staging-database",
    # so that stacks sharing an account never collide. Default: the resource name.
    physical_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Failback re-seeds the standby as a new instance (the promoted one cannot follow again).
    generation: int = 1


class PostgresStandby(pulumi.ComponentResource):
    """`postoucancer:aws:PostgresStandby`."""

    backups: aws.rds.InstanceAutomatedBackupsReplication | None = None
    replica: aws.rds.Instance | None = None

    def __init__(self, name: str, args: PostgresStandbyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:PostgresStandby", name, None, opts)
        region = args.region
        retention = check_retention(args.backup_retention_days)
        self.parameter_group = _parameter_group(name, region, args.engine_version, self)
        self.subnet_group = _subnet_group(name, region, args.network, self)
        self.monitoring_role = _monitoring_role(name, self)
        if args.source_instance_arn is not None:
            # Created in (and managed through) the DR region's API: it keeps working, and the
            # replicated backups stay restorable, with the primary region gone.
            self.backups = aws.rds.InstanceAutomatedBackupsReplication(
                f"{instance_name(name, args.generation)}-backups",
                region=region,
                source_db_instance_arn=args.source_instance_arn,
                kms_key_id=args.kms_key.arn,
                retention_period=retention,
                # It replicates the instance it was created for (the source is ForceNew): during
                # failback the primary site exports its next generation before this site
                # re-seeds, and that must not replace a protected resource. A new source comes
                # with a new generation, hence a new resource.
                opts=pulumi.ResourceOptions(parent=self, protect=True, ignore_changes=["sourceDbInstanceArn"]),
            )
        if args.warm_standby and (args.source_instance_arn is not None or args.promote):
            self.replica = self._replica(name, args, retention)
        self.register_outputs(
            {
                "replicaArn": self.replica.arn if self.replica else None,
                "backupsReplicationArn": self.backups.id if self.backups else None,
            }
        )

    def _replica(self, name: str, args: PostgresStandbyArgs, retention: int) -> aws.rds.Instance:
        promoted = args.promote
        if args.production_scale and not promoted:
            raise ValueError(f"{name}: production_scale applies to a promoted standby only")
        scaled = promoted and args.production_scale
        instance = instance_name(name, args.generation)
        return aws.rds.Instance(
            instance,
            region=args.region,
            # Present: a cross-region read replica of the primary. Absent (activation):
            # RDS promotes this same instance to a standalone primary, in place.
            replicate_source_db=None if promoted else args.source_instance_arn,
            instance_class=args.promoted_instance_class if scaled else args.standby_instance_class,
            # Serving production traffic needs a second AZ too: after promotion, as its own step.
            multi_az=scaled,
            # The key must be in this (the replica's) region. Backups are kept on the replica as
            # well, so promotion changes no backup setting: from the moment it is writable it
            # archives WAL and can be restored to a point in time.
            # A read replica cannot be deleted with a final snapshot (RDS DeleteDBInstance:
            # "FinalDBSnapshotIdentifier ... can't be specified when deleting a read replica";
            # SkipFinalSnapshot "must be enabled"): until promoted it takes none (its data is the
            # primary's, which keeps its own); promoted, it takes one like any primary.
            **{**_hardened(instance, args, self, retention), **({} if promoted else REPLICA_DELETION)},
            apply_immediately=True,  # promotion must not wait for the maintenance window
            # Promoted, it carries the backup tag: the DR site's own plan starts protecting it.
            tags={**args.tags, "role": "primary", **dict([SELECTION_TAG])}
            if promoted
            else {**args.tags, "role": "warm-standby"},
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )


REPLICA_DELETION = {"skip_final_snapshot": True, "final_snapshot_identifier": None}


def _hardened(name: str, args, owner, retention_days: int) -> dict:
    """What every PostgreSQL instance of this project has, primary or standby alike: encrypted
    with its site's key, private, TLS via the parameter group, IAM auth, point-in-time backups,
    deletion protection and a final snapshot, logs and Performance Insights under the same key."""
    return dict(
        storage_type="gp3",
        storage_encrypted=True,
        kms_key_id=args.kms_key.arn,
        iam_database_authentication_enabled=True,
        db_subnet_group_name=owner.subnet_group.name,
        vpc_security_group_ids=args.network.security_group_ids,
        publicly_accessible=False,
        parameter_group_name=owner.parameter_group.name,
        backup_retention_period=retention_days,
        backup_window=backup_window(),
        maintenance_window=maintenance_window(),
        copy_tags_to_snapshot=True,
        delete_automated_backups=False,
        deletion_protection=True,
        skip_final_snapshot=False,
        final_snapshot_identifier=f"{_physical(name, args)}-final",
        enabled_cloudwatch_logs_exports=LOG_EXPORTS,
        performance_insights_enabled=True,
        performance_insights_kms_key_id=args.kms_key.arn,
        performance_insights_retention_period=PERFORMANCE_INSIGHTS_RETENTION_DAYS,
        monitoring_interval=ENHANCED_MONITORING_INTERVAL_S,
        monitoring_role_arn=owner.monitoring_role.arn,
        auto_minor_version_upgrade=True,
    )


def _physical(instance: str, args) -> str:
    """The physical base name of a generation's instance: `physical_name`, plus `-g<N>` from the
    second generation on (final snapshots are unique per account and region)."""
    if not args.physical_name:
        return instance
    return instance_name(args.physical_name, getattr(args, "generation", 1))


def _monitoring_role(name: str, parent: pulumi.Resource) -> aws.iam.Role:
    """The role RDS Enhanced Monitoring publishes OS metrics with (AWS's managed policy: writes
    to the RDSOSMetrics log group only), assumable by RDS for this account only."""
    account_id = aws.get_caller_identity_output().account_id
    role = aws.iam.Role(
        f"{name}-monitoring",
        description="RDS Enhanced Monitoring: publishes the instance's OS metrics",
        assume_role_policy=account_id.apply(
            lambda a: service_trust_policy("monitoring.rds.amazonaws.com", from_account(a))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-monitoring",
        role=role.name,
        policy_arn=ENHANCED_MONITORING_POLICY,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return role
