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


def _customer_key(value) -> bool:
    key = str(value or "")
    return bool(key) and "alias/aws/" not in key


def _encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in DATABASES:
        return
    if not truthy(get(args.props, "storageEncrypted")):
        report("storageEncrypted is not true")
    if not _customer_key(get(args.props, "kmsKeyId")):
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


def _insights_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_INSTANCE or not truthy(get(args.props, "performanceInsightsEnabled")):
        return
    if not _customer_key(get(args.props, "performanceInsightsKmsKeyId")):
        report("performanceInsightsKmsKeyId is not a customer-managed KMS key")


rds_performance_insights_encrypted = ResourceValidationPolicy(
    name="rds-performance-insights-encrypted",
    description=(
        "An RDS instance with Performance Insights keeps it under a customer-managed kmsKeyId. Mandatory: "
        "Performance Insights stores statement text, which carries personal data like the tables do."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_insights_encrypted,
)


def _insights_enabled(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and not truthy(get(args.props, "performanceInsightsEnabled")):
        report("performanceInsightsEnabled is not true")


rds_performance_insights_enabled = ResourceValidationPolicy(
    name="rds-performance-insights-enabled",
    description=(
        "Every RDS instance has Performance Insights. Advisory: it explains a slow or stuck database "
        "(the incident before a failover), but the data is safe without it."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_insights_enabled,
)


def _deletion_keeps_backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in DATABASES:
        return
    if is_replica(args.props):
        # RDS DeleteDBInstance: a read replica is deleted without a final snapshot (SkipFinalSnapshot
        # must be true, FinalDBSnapshotIdentifier can't be given); its data is the source's.
        if not truthy(get(args.props, "skipFinalSnapshot")) or get(args.props, "finalSnapshotIdentifier"):
            report("a read replica with a final snapshot cannot be deleted or replaced (RDS refuses it): "
                   "set skipFinalSnapshot true and no finalSnapshotIdentifier until it is promoted")
    elif truthy(get(args.props, "skipFinalSnapshot")) or not get(args.props, "finalSnapshotIdentifier"):
        report("deleting it takes no final snapshot: set skipFinalSnapshot false and a finalSnapshotIdentifier")
    if args.resource_type == RDS_INSTANCE and get(args.props, "deleteAutomatedBackups") is not False:
        report("deleteAutomatedBackups is not false: deleting the instance would delete its point-in-time backups")


rds_deletion_keeps_backups = ResourceValidationPolicy(
    name="rds-deletion-keeps-backups",
    description=(
        "Deleting an RDS instance or cluster leaves a final snapshot and (instances) keeps the automated "
        "backups; a read replica keeps its automated backups too but takes no final snapshot (RDS refuses "
        "one when a replica is deleted: SkipFinalSnapshot true, no FinalDBSnapshotIdentifier) until promoted. "
        "Mandatory: the provider's defaults delete the automated backups with the instance, the last way "
        "back after an accidental or malicious deletion."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_deletion_keeps_backups,
)


def _iam_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in DATABASES and not truthy(get(args.props, "iamDatabaseAuthenticationEnabled")):
        report("iamDatabaseAuthenticationEnabled is not true")


rds_iam_auth = ResourceValidationPolicy(
    name="rds-iam-auth",
    description=(
        "Every RDS instance and cluster accepts IAM database authentication. Mandatory: people and "
        "functions sign in with short-lived, audited IAM tokens; the master password stays in Secrets "
        "Manager for break-glass use only."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_iam_auth,
)


def _logs_exported(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in DATABASES:
        return
    exported = [str(x) for x in as_list(get(args.props, "enabledCloudwatchLogsExports"))]
    if "postgresql" not in exported:
        report("enabledCloudwatchLogsExports does not include 'postgresql'")


rds_logs_exported = ResourceValidationPolicy(
    name="rds-logs-exported",
    description=(
        "Every RDS instance and cluster exports its 'postgresql' log to CloudWatch Logs. Mandatory: the "
        "connection and DDL log (set by the parameter group) is the record of who did what to the data; "
        "on the instance alone it is rotated away within days and lost with it."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_logs_exported,
)


def _logs_connections(group: PolicyResource) -> bool:
    values = {str(get(p, "name")): str(get(p, "value")) for p in as_list(get(group.props, "parameters"))}
    return all(values.get(k) in ("1", "1.0", "true") for k in ("log_connections", "log_disconnections"))


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


def _parameter_group(stack: Stack, db: PolicyResource, report: ReportViolation, needs: str) -> PolicyResource | None:
    """The stack's parameter group that `db` uses, or None (reported: it must set `needs`)."""
    if db.resource_type == RDS_CLUSTER:
        key, group_type = "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP
    else:
        key, group_type = "parameterGroupName", PARAMETER_GROUP
    if not get(db.props, key):
        report(f"{label(db)} uses the default parameter group: set one with {needs}", db.urn)
        return None
    group = stack.find(db, key, group_type, ("name", "id"))
    if group is None:
        report(f"{label(db)}: parameter group {get(db.props, key)} is not declared in this stack", db.urn)
    return group


@stack_policy
def _tls_forced(stack: Stack, report: ReportViolation) -> None:
    def check(db: PolicyResource) -> None:
        group = _parameter_group(stack, db, report, "rds.force_ssl=1")
        if group is not None and not _forces_tls(group):
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


@stack_policy
def _connections_logged(stack: Stack, report: ReportViolation) -> None:
    def check(db: PolicyResource) -> None:
        group = _parameter_group(stack, db, report, "log_connections=1 and log_disconnections=1")
        if group is not None and not _logs_connections(group):
            report(f"{label(db)}: parameter group {label(group)} does not log connections and disconnections", db.urn)

    each_known(stack.of_type(*DATABASES), check)


rds_connections_logged = StackValidationPolicy(
    name="rds-connections-logged",
    description=(
        "Every RDS instance and cluster uses a parameter group declared in the stack that sets "
        "log_connections=1 and log_disconnections=1. Mandatory: with the exported log "
        "(rds-logs-exported) it is the record of who reached the personal data, and when."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_connections_logged,
)


def _enhanced_monitoring(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RDS_INSTANCE:
        return
    interval = number(get(args.props, "monitoringInterval"))
    if not interval or interval <= 0:
        report("monitoringInterval is 0: no Enhanced Monitoring (OS metrics during a restore or failover)")
    elif not get(args.props, "monitoringRoleArn"):
        report("monitoringInterval without monitoringRoleArn")


rds_enhanced_monitoring = ResourceValidationPolicy(
    name="rds-enhanced-monitoring",
    description=(
        "Every RDS instance, replicas included, has Enhanced Monitoring (monitoringInterval > 0 and a "
        "monitoringRoleArn). Mandatory: the OS metrics are what shows why a restore, a promotion or a "
        "failover is slower than its RTO, and they cannot be had after the fact."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_enhanced_monitoring,
)


POLICIES = [
    rds_encrypted,
    rds_multi_az,
    rds_deletion_protection,
    rds_backup_retention,
    rds_not_public,
    rds_tls_forced,
    rds_performance_insights_encrypted,
    rds_performance_insights_enabled,
    rds_deletion_keeps_backups,
    rds_iam_auth,
    rds_logs_exported,
    rds_connections_logged,
    rds_enhanced_monitoring,
]
