"""PostgreSQL on RDS: encryption, Multi-AZ, deletion protection, backups, exposure, TLS."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from drplan.names import Role

from ._util import SITE_SCHEMA, Stack, as_list, each_known, get, label, number, stack_policy, truthy

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
DATABASES = (RDS_INSTANCE, RDS_CLUSTER)


def is_replica(props) -> bool:
    return bool(get(props, "replicateSourceDb") or get(props, "replicationSourceIdentifier"))


def _encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in DATABASES:
        return
    if not truthy(get(args.props, "storageEncrypted")):
        report("storageEncrypted is not true")
    key = str(get(args.props, "kmsKeyId") or "")
    if not key or "alias/aws/" in key:
        report("kmsKeyId is not a customer-managed KMS key (the aws/rds managed key cannot be shared or shredded)")


rds_encrypted = ResourceValidationPolicy(
    name="rds-encrypted",
    description=(
        "Every RDS instance and cluster, replicas included, has storageEncrypted and a customer-managed "
        "kmsKeyId. Mandatory: the database holds the platform's personal data (GDPR: encryption at rest), "
        "and snapshots/replicas inherit the key."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_encrypted,
)


def _deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in DATABASES and not truthy(get(args.props, "deletionProtection")):
        report("deletionProtection is not true")


rds_deletion_protection = ResourceValidationPolicy(
    name="rds-deletion-protection",
    description=(
        "Every RDS instance and cluster has deletionProtection. Mandatory: `protect` only guards against "
        "Pulumi; deletion protection also stops the console, the API and a compromised credential."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_deletion_protection,
)


def _not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in DATABASES and truthy(get(args.props, "publiclyAccessible")):
        report("publiclyAccessible is true")


rds_not_public = ResourceValidationPolicy(
    name="rds-not-public",
    description=(
        "No RDS instance or cluster is publicly accessible. Mandatory: the database is reached only from "
        "the application and the backup functions inside the VPC."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_not_public,
)


@stack_policy
def _multi_az(stack: Stack, report: ReportViolation) -> None:
    if stack.site().role is not Role.PRIMARY:
        return

    def check(db: PolicyResource) -> None:
        if not is_replica(db.props) and not truthy(get(db.props, "multiAz")):
            report(f"{label(db)} (primary database) is not Multi-AZ", db.urn)

    each_known(stack.of_type(RDS_INSTANCE), check)


rds_multi_az = StackValidationPolicy(
    name="rds-multi-az",
    description=(
        "On the primary site every RDS instance that is not a read replica is Multi-AZ. Mandatory: an "
        "AZ failure must cost a failover of a minute or two, not a restore (RTO of the plan)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_multi_az,
)


@stack_policy
def _backup_retention(stack: Stack, report: ReportViolation) -> None:
    floor = stack.site().retention.wal.days

    def check(db: PolicyResource) -> None:
        if is_replica(db.props):
            return  # a read replica's automated backups start when it is promoted
        kept = number(get(db.props, "backupRetentionPeriod"))
        if kept is None or kept < floor:
            report(f"{label(db)} backupRetentionPeriod {kept} < {floor} d (the model's WAL/PITR window)", db.urn)

    each_known(stack.of_type(*DATABASES), check)


rds_backup_retention = StackValidationPolicy(
    name="rds-backup-retention",
    description=(
        "Every RDS instance or cluster that is not a replica keeps automated backups at least the tier's "
        "WAL retention from drplan.retention.RETENTION (7 d): continuous WAL archiving and point-in-time recovery. "
        "Mandatory: it is the RPO of the plan for database corruption and accidental deletion."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_backup_retention,
)


def _forces_tls(group: PolicyResource) -> bool:
    for p in as_list(get(group.props, "parameters")):
        if get(p, "name") == "rds.force_ssl" and str(get(p, "value")) in ("1", "1.0", "true"):
            return True
    return False


@stack_policy
def _tls_forced(stack: Stack, report: ReportViolation) -> None:
    def check(db: PolicyResource) -> None:
        if db.resource_type == RDS_CLUSTER:
            key, group_type = "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP
        else:
            key, group_type = "parameterGroupName", PARAMETER_GROUP
        if not get(db.props, key):
            report(f"{label(db)} uses the default parameter group: set one with rds.force_ssl=1", db.urn)
            return
        group = stack.find(db, key, group_type, ("name", "id"))
        if group is None:
            report(f"{label(db)}: parameter group {get(db.props, key)} is not declared in this stack", db.urn)
        elif not _forces_tls(group):
            report(f"{label(db)}: parameter group {label(group)} does not set rds.force_ssl=1", db.urn)

    each_known(stack.of_type(*DATABASES), check)


rds_tls_forced = StackValidationPolicy(
    name="rds-tls-forced",
    description=(
        "Every RDS instance and cluster uses a parameter group declared in the stack that sets "
        "rds.force_ssl=1, so the server refuses unencrypted connections. Mandatory: the plan requires "
        "encryption in transit, and a client-side sslmode can silently fall back."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_tls_forced,
)


POLICIES = [rds_encrypted, rds_multi_az, rds_deletion_protection, rds_backup_retention, rds_not_public, rds_tls_forced]
