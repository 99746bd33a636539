"""The plan's tests that a person runs (the quarterly DR activation test, the yearly plan review),
opened on schedule as tracked tasks, and the watch on the activation test's record.

`TrackedTask`: EventBridge Scheduler opens an SSM OpsItem (universal target
`arn:aws:scheduler:::aws-sdk:ssm:createOpsItem`, no function) whose description and operational
data carry the exact commands to run, and publishes the same text to the on-call topic (an OpsItem
notifies its topic only when it is edited, SSM API CreateOpsItem `Notifications`). The OpsItem is
the tracked record: open until someone resolves it.

`ActivationTestWatch`: the SSM parameter the activation tests are recorded in (created saying none
is recorded yet, then written only by `python -m infra.activate --record-test`: `ignore_changes`),
and a daily function publishing the record's age (lambdas/core/overdue.py); the caller alarms on it.

Provider constraints checked here: an OpsItem's Description is 1..2048 characters, its Title
1..1024, its Source 1..128 and may not contain "aws", "amazon" or "amzn" (SSM API, CreateOpsItem).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.names import ACTIVATION_TEST_NOT_RECORDED, METRIC_NAMESPACE
from drplan.periods import Period

from .backup_functions import MAX_EVENT_AGE, SCHEDULER_RETRIES, assume_role_policy
from .task_function import TaskFunction, TaskFunctionArgs, statement

OPS_ITEM_TARGET = "arn:aws:scheduler:::aws-sdk:ssm:createOpsItem"
DESCRIPTION_MAX = 2048
TITLE_MAX = 1024
SOURCE_MAX = 128
_RESERVED_SOURCE = re.compile(r"aws|amazon|amzn", re.IGNORECASE)
SOURCE = "postoucancer-dr"
COMMANDS_KEY = "postoucancer:commands"  # OperationalData keys may not begin with aws, amazon or ssm
AGE_HANDLER = "lambdas.aws_lambda.activation_age_handler"


def ops_item(title: str, description: str, commands: str, category: str, severity: str) -> dict:
    """The CreateOpsItem request, checked against the API's documented bounds."""
    if not 1 <= len(description) <= DESCRIPTION_MAX:
        raise ValueError(f"an OpsItem description is 1..{DESCRIPTION_MAX} characters, this one {len(description)}")
    if not 1 <= len(title) <= TITLE_MAX:
        raise ValueError(f"an OpsItem title is 1..{TITLE_MAX} characters, this one {len(title)}")
    if not 1 <= len(SOURCE) <= SOURCE_MAX or _RESERVED_SOURCE.search(SOURCE):
        raise ValueError(f"OpsItem source {SOURCE!r} must be 1..{SOURCE_MAX} characters without aws/amazon/amzn")
    return {
        "Title": title,
        "Description": description,
        "Source": SOURCE,
        "Category": category,
        "Severity": severity,
        "OperationalData": {COMMANDS_KEY: {"Type": "String", "Value": commands}},
    }


@dataclass
class TrackedTaskArgs:
    region: str
    schedule_name: str  # physical, unique per account and region (a suffix is added per target)
    schedule: str  # cron, UTC
    title: str
    description: str  # Markdown, at most DESCRIPTION_MAX characters
    commands: str  # every command, one per line: the OpsItem's operational data and the notification
    topic_arn: pulumi.Input[str]  # the on-call topic
    topic_key_arn: pulumi.Input[str]  # its customer key (publishing encrypts with it)
    category: str = "Recovery"
    severity: str = "2"
    tags: dict[str, str] = field(default_factory=dict)


def _retry() -> dict:
    return {"maximum_retry_attempts": SCHEDULER_RETRIES, "maximum_event_age_in_seconds":
            int(MAX_EVENT_AGE.total_seconds())}


class TrackedTask(pulumi.ComponentResource):
    """`postoucancer:aws:TrackedTask`."""

    opens: aws.scheduler.Schedule
    notifies: aws.scheduler.Schedule
    role: aws.iam.Role

    def __init__(self, name: str, args: TrackedTaskArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:TrackedTask", name, None, opts)
        item = ops_item(args.title, args.description, args.commands, args.category, args.severity)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output().account_id
        self.role = aws.iam.Role(
            name,
            description=f"EventBridge Scheduler: opens the tracked task {args.title!r}",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("scheduler.amazonaws.com", a)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            name,
            role=self.role.id,
            policy=pulumi.Output.all(args.topic_arn, args.topic_key_arn).apply(
                lambda a: json.dumps({"Version": "2012-10-17", "Statement": [
                    # CreateOpsItem has no resource-level permission (Service Authorization Reference,
                    # AWS Systems Manager; AWS's own managed policies grant it on "*").
                    statement("OpenTrackedTask", ["ssm:CreateOpsItem"], "*"),
                    statement("NotifyOnCall", ["sns:Publish"], a[0]),
                    statement("EncryptForTheTopic", ["kms:GenerateDataKey", "kms:Decrypt"], a[1]),
                ]})
            ),
            opts=child,
        )
        common = {
            "region": args.region,
            "schedule_expression": args.schedule,
            "schedule_expression_timezone": "UTC",
            "flexible_time_window": {"mode": "OFF"},
            "state": "ENABLED",
        }
        after_policy = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        self.opens = aws.scheduler.Schedule(
            f"{name}-opens",
            name=f"{args.schedule_name}-opens",
            description=f"Opens the OpsItem {args.title!r} ({args.schedule}, UTC; from drplan)",
            target={"arn": OPS_ITEM_TARGET, "role_arn": self.role.arn, "input": json.dumps(item),
                    "retry_policy": _retry()},
            opts=after_policy,
            **common,
        )
        self.notifies = aws.scheduler.Schedule(
            f"{name}-notifies",
            name=f"{args.schedule_name}-notifies",
            description=f"Tells the on-call topic about {args.title!r} ({args.schedule}, UTC)",
            target={"arn": args.topic_arn, "role_arn": self.role.arn,
                    "input": f"{args.title}\n\n{args.description}\n\nCommands:\n{args.commands}",
                    "retry_policy": _retry()},
            opts=after_policy,
            **common,
        )
        self.ops_item = item
        self.register_outputs({"opens": self.opens.name, "notifies": self.notifies.name})


@dataclass
class ActivationTestWatchArgs:
    region: str
    parameter_name: str  # drplan.names.activation_test_parameter(stack)
    stack: str
    image_uri: pulumi.Input[str]
    function_name: str
    schedule_name: str
    schedule: str  # daily cron, UTC
    log_retention: Period
    tags: dict[str, str] = field(default_factory=dict)


class ActivationTestWatch(pulumi.ComponentResource):
    """`postoucancer:aws:ActivationTestWatch`."""

    record: aws.ssm.Parameter
    age: TaskFunction
    daily: aws.scheduler.Schedule

    def __init__(self, name: str, args: ActivationTestWatchArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:ActivationTestWatch", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.record = aws.ssm.Parameter(
            f"{name}-record",
            region=region,
            name=args.parameter_name,
            type="String",
            # A new DR site counts from its deployment (the parameter's creation date): the first test
            # is due a quarter (plus grace) later. A constant, so that every run declares the same.
            value=ACTIVATION_TEST_NOT_RECORDED,
            description="When the last DR activation test was recorded (python -m infra.activate --record-test)",
            tags=args.tags,
            # Written by the on-call afterwards, never reset by a later `pulumi up`.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
        )
        self.age = TaskFunction(
            f"{name}-age",
            TaskFunctionArgs(
                region=region,
                image_uri=args.image_uri,
                handler=AGE_HANDLER,
                function_name=args.function_name,
                description="publishes the age of the last recorded DR activation test",
                statements=self.record.arn.apply(lambda arn: [
                    statement("ReadTheRecord", ["ssm:GetParameter"], arn),
                    # PutMetricData has no resource-level permission; the namespace condition bounds it.
                    statement("PublishTheAge", ["cloudwatch:PutMetricData"], "*",
                              {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}),
                ]),
                environment={"ACTIVATION_TEST_PARAMETER": self.record.name, "ACTIVATION_TEST_STACK": args.stack},
                log_retention=args.log_retention,
                tags=args.tags,
            ),
            opts=child,
        )
        account_id = aws.get_caller_identity_output().account_id
        role = aws.iam.Role(
            f"{name}-scheduler",
            description="EventBridge Scheduler: runs the daily activation-test age function",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("scheduler.amazonaws.com", a)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-scheduler",
            role=role.id,
            policy=pulumi.Output.all(self.age.function.arn, self.age.dlq.arn).apply(
                lambda a: json.dumps({"Version": "2012-10-17", "Statement": [
                    statement("InvokeTheAgeFunction", ["lambda:InvokeFunction"], a[0]),
                    statement("DeadLetter", ["sqs:SendMessage"], a[1]),
                ]})
            ),
            opts=child,
        )
        self.daily = aws.scheduler.Schedule(
            f"{name}-daily",
            region=region,
            name=args.schedule_name,
            description=f"Age of the last recorded activation test ({args.schedule}, UTC)",
            schedule_expression=args.schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "OFF"},
            state="ENABLED",
            target={"arn": self.age.function.arn, "role_arn": role.arn, "input": json.dumps({}),
                    "retry_policy": _retry(), "dead_letter_config": {"arn": self.age.dlq.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs({"record": self.record.name, "function": self.age.function.name})
