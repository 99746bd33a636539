"""The monthly DR drill as AWS Backup restore testing, validated by a function.

`RestoreDrill` declares:
- a restore testing plan (the drill's cron, UTC, a one-hour start window) choosing the LATEST
  recovery point within the drill's period from the given (locked) vault, SNAPSHOT points only
  (cross-region copies are snapshots);
- its selection: the given RDS resources, restored into the site's private network (the subnet
  group and security groups given, never publicly accessible), kept for the validation window;
- the validation function (TaskFunction, in the site's VPC) and the EventBridge rule that runs it
  on "Restore Job State Change" events of this plan's COMPLETED jobs.

Why restore testing and not a Step Functions sequence of our own: AWS Backup picks the recovery
point, infers the restore metadata, measures the job and deletes the temporary instance when the
validation window closes (restore testing, "Once the optional validation completes or the
validation window closes, AWS Backup deletes the resources involved"), so nothing of ours can
leave an instance running; the function only checks and reports (PutRestoreValidationResult).

Provider constraints (AWS Backup API, CreateRestoreTestingPlan / CreateRestoreTestingSelection,
and the pinned provider's docs) are checked here: names of 1..50 of [a-zA-Z0-9_], a start window
and a validation window of 1..168 hours, a selection window of 1..365 days, at most 30 protected
resource ARNs; and the validation window outlasts the function's worst case with its retries
(else AWS Backup marks the validation TIMED_OUT and deletes the instance under it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_aws as aws

from drplan.names import METRIC_NAMESPACE
from drplan.periods import HOUR, Period

from .backup_plan import RESTORE_TESTING_NAME
from .task_function import TaskFunction, TaskFunctionArgs, statement, worst_case_run

WINDOW_HOURS = (1, 168)  # StartWindowHours, ValidationWindowHours
SELECTION_WINDOW_DAYS = (1, 365)
MAX_PROTECTED_RESOURCE_ARNS = 30
# Restore testing names the instances it restores "awsbackup-restore-test-<random>" (AWS Backup,
# "Restore testing inferred metadata"): the function may describe those instances only.
RESTORED_INSTANCE_PREFIX = "awsbackup-restore-test-"
HANDLER = "lambdas.aws_lambda.restore_test_handler"
VALIDATOR_TIMEOUT = timedelta(minutes=15)


def _hours(d: timedelta, what: str) -> int:
    hours = d / HOUR
    if hours != int(hours) or not WINDOW_HOURS[0] <= hours <= WINDOW_HOURS[1]:
        raise ValueError(f"{what} of {d} is not a whole number of hours in {WINDOW_HOURS[0]}..{WINDOW_HOURS[1]}")
    return int(hours)


@dataclass
class RestoreDrillArgs:
    region: str
    plan_name: str  # physical, unique per account and region: 1..50 of [a-zA-Z0-9_]
    schedule: str  # cron, UTC
    vault_arn: pulumi.Input[str]  # where the recovery points to restore are (the locked DR vault)
    resource_arns: list[pulumi.Input[str]]  # the protected RDS instances (the primary's database)
    iam_role_arn: pulumi.Input[str]  # AWS Backup's restore role (may use the vault's and the copies' keys)
    subnet_group_name: pulumi.Input[str]
    security_group_ids: list[pulumi.Input[str]]
    selection_window: timedelta  # pick the latest recovery point this recent (the drill's period)
    validation_window: timedelta
    # The validation function: the functions' image, in the site's private network.
    image_uri: pulumi.Input[str]
    function_name: str
    database: str
    db_secret_arn: pulumi.Input[str]
    db_secret_kms_key_arn: pulumi.Input[str]
    function_subnet_ids: list[pulumi.Input[str]]
    function_security_group_ids: list[pulumi.Input[str]]
    log_retention: Period
    probes: str | None = None  # VERIFY_PROBES (JSON), as the weekly verify runs them
    start_window: timedelta = HOUR
    tags: dict[str, str] = field(default_factory=dict)


def validator_statements(region: str, account_id: str, secret_arn: str, secret_key_arn: str) -> list[dict]:
    return [
        statement("DescribeRestoredInstances", ["rds:DescribeDBInstances"],
                  f"arn:aws:rds:{region}:{account_id}:db:{RESTORED_INSTANCE_PREFIX}*"),
        statement("DescribeRecoveryPoints", ["rds:DescribeDBSnapshots"],
                  f"arn:aws:rds:{region}:{account_id}:snapshot:*"),
        statement("ReadDatabaseSecret", ["secretsmanager:GetSecretValue"], secret_arn),
        statement("DecryptDatabaseSecret", ["kms:Decrypt"], secret_key_arn,
                  {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}}),
        # PutRestoreValidationResult has no resource-level permission (Service Authorization Reference,
        # AWS Backup: no resource type): "*" is the only Resource AWS accepts.
        statement("ReportValidation", ["backup:PutRestoreValidationResult"], "*"),
        # PutMetricData has no resource-level permission either; the namespace condition bounds it.
        statement("PublishDrillMetrics", ["cloudwatch:PutMetricData"], "*",
                  {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}),
    ]


def completed_jobs_pattern(plan_arn: str) -> str:
    return json.dumps({
        "source": ["aws.backup"],
        "detail-type": ["Restore Job State Change"],
        "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [plan_arn]},
    })


class RestoreDrill(pulumi.ComponentResource):
    """`postoucancer:aws:RestoreDrill`."""

    plan: aws.backup.RestoreTestingPlan
    selection: aws.backup.RestoreTestingSelection
    validator: TaskFunction
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, args: RestoreDrillArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:RestoreDrill", name, None, opts)
        if not RESTORE_TESTING_NAME.match(args.plan_name):
            raise ValueError(f"restore testing plan name {args.plan_name!r} is not 1..50 of [a-zA-Z0-9_]")
        if not 1 <= len(args.resource_arns) <= MAX_PROTECTED_RESOURCE_ARNS:
            raise ValueError(f"a restore testing selection names 1..{MAX_PROTECTED_RESOURCE_ARNS} resource ARNs")
        days = args.selection_window.days
        if args.selection_window != timedelta(days=days) or not SELECTION_WINDOW_DAYS[0] <= days <= \
                SELECTION_WINDOW_DAYS[1]:
            raise ValueError(f"selection window {args.selection_window} is not whole days in 1..365")
        start_hours = _hours(args.start_window, "start window")
        validation_hours = _hours(args.validation_window, "validation window")
        if worst_case_run(VALIDATOR_TIMEOUT) >= args.validation_window:
            raise ValueError(f"validation window {args.validation_window} does not outlast the validation function's "
                             f"worst case ({worst_case_run(VALIDATOR_TIMEOUT)} with retries)")
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.plan = aws.backup.RestoreTestingPlan(
            name,
            region=region,
            name=args.plan_name,
            schedule_expression=args.schedule,
            schedule_expression_timezone="Etc/UTC",
            start_window_hours=start_hours,
            recovery_point_selection={
                "algorithm": "LATEST_WITHIN_WINDOW",
                "include_vaults": [args.vault_arn],
                "recovery_point_types": ["SNAPSHOT"],
                "selection_window_days": days,
            },
            tags=args.tags,
            opts=child,
        )
        self.selection = aws.backup.RestoreTestingSelection(
            f"{name}-database",
            region=region,
            name="database",
            restore_testing_plan_name=self.plan.name,
            protected_resource_type="RDS",
            protected_resource_arns=args.resource_arns,
            iam_role_arn=args.iam_role_arn,
            validation_window_hours=validation_hours,
            # Into the site's private network, reachable by the validation function only.
            restore_metadata_overrides={
                "dbsubnetgroupname": args.subnet_group_name,
                "vpcsecuritygroupids": pulumi.Output.all(*args.security_group_ids).apply(json.dumps),
                "publiclyaccessible": "false",
            },
            opts=child,
        )
        account_id = aws.get_caller_identity_output().account_id
        environment = {
            "BACKUP_DATABASE": args.database,
            "DB_SECRET_ARN": args.db_secret_arn,
            "RESTORE_TEST_PLAN_ARN": self.plan.arn,
        }
        if args.probes:
            environment["VERIFY_PROBES"] = args.probes
        self.validator = TaskFunction(
            f"{name}-check",
            TaskFunctionArgs(
                region=region,
                image_uri=args.image_uri,
                handler=HANDLER,
                function_name=args.function_name,
                description="checks the DR drill's restored database, measures and reports it",
                statements=pulumi.Output.all(account_id, args.db_secret_arn, args.db_secret_kms_key_arn).apply(
                    lambda a: validator_statements(region, a[0], a[1], a[2])
                ),
                environment=environment,
                log_retention=args.log_retention,
                timeout=VALIDATOR_TIMEOUT,
                subnet_ids=args.function_subnet_ids,
                security_group_ids=args.function_security_group_ids,
                tags=args.tags,
            ),
            opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-completed",
            region=region,
            description=f"A restore job of {args.plan_name} completed: validate the restored database",
            event_pattern=self.plan.arn.apply(completed_jobs_pattern),
            state="ENABLED",
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-completed",
            region=region,
            action="lambda:InvokeFunction",
            function=self.validator.function.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-completed",
            region=region,
            rule=self.rule.name,
            arn=self.validator.function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self.register_outputs({"plan": self.plan.name, "validator": self.validator.function.name})
