"""One Lambda function of the functions' image for a task of the plan's testing schedule (the DR
drill's validation, the activation test's age), with the hardening the backup functions have:
its own customer key (log group and environment), an encrypted log group kept as long as the
audit records, a least-privilege role (the caller's statements plus logs, dead letters and, in a
VPC, the network interfaces), a dead-letter queue, reserved concurrency 1.

The backup and verify functions are one component (components/aws/backup_functions.py) because
they share a bucket, a schedule role and a database; these tasks share nothing but the image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_aws as aws

from drplan.periods import Period

from .backup_functions import (
    DLQ_RETENTION,
    INVOKE_RETRIES,
    LAMBDA_MAX_TIMEOUT,
    MAX_EVENT_AGE,
    assume_role_policy,
    log_retention_days,
)
from .kms import CustomerKey, CustomerKeyArgs, logs_key_statements


def statement(sid: str, actions: list[str], resources, condition: dict | None = None) -> dict:
    s = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        s["Condition"] = condition
    return s


@dataclass
class TaskFunctionArgs:
    region: str
    image_uri: pulumi.Input[str]
    handler: str  # "lambdas.aws_lambda.<name>"
    function_name: str  # physical, unique per account and region
    description: str
    # What the task may do, besides logging and dead-lettering: IAM statements (dicts) once known.
    statements: pulumi.Input[list[dict]]
    environment: dict[str, pulumi.Input[str]]
    log_retention: Period
    timeout: timedelta = timedelta(minutes=5)
    memory_mb: int = 512
    # In the site's private network (to reach a database): its subnets and security groups.
    subnet_ids: list[pulumi.Input[str]] | None = None
    security_group_ids: list[pulumi.Input[str]] | None = None
    tags: dict[str, str] = field(default_factory=dict)


# Lambda waits 1 minute before the second attempt of a failed asynchronous invocation and 2 before
# the third (Lambda developer guide, "Error handling and automatic retries").
RETRY_WAITS = timedelta(minutes=1 + 2)


def worst_case_run(timeout: timedelta) -> timedelta:
    """The longest an asynchronous invocation and Lambda's retries of it can take."""
    return timeout * (1 + INVOKE_RETRIES) + RETRY_WAITS


def _vpc_statements() -> list[dict]:
    # Lambda in a VPC: these EC2 actions have no resource-level permissions (Service Authorization
    # Reference, Amazon EC2): "*" is the only Resource AWS accepts.
    return [statement("VpcNetworkInterfaces", [
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], "*")]


class TaskFunction(pulumi.ComponentResource):
    """`postoucancer:aws:TaskFunction`."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    dlq: aws.sqs.Queue
    log_group: aws.cloudwatch.LogGroup
    key: CustomerKey

    def __init__(self, name: str, args: TaskFunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:TaskFunction", name, None, opts)
        if args.timeout > LAMBDA_MAX_TIMEOUT:
            raise ValueError(f"{name}: a Lambda function runs at most {LAMBDA_MAX_TIMEOUT}, not {args.timeout}")
        if (args.subnet_ids is None) != (args.security_group_ids is None):
            raise ValueError(f"{name}: give both subnet_ids and security_group_ids (in a VPC) or neither")
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        account_id = aws.get_caller_identity_output().account_id
        log_group_name = f"/aws/lambda/{args.function_name}"
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=region,
                description=f"Post Ou Cancer task function {args.function_name}: logs and environment",
                extra_statements=logs_key_statements(region, [log_group_name]),
                tags=args.tags,
            ),
            opts=child,
        )
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            region=region,
            message_retention_seconds=int(DLQ_RETENTION.total_seconds()),
            sqs_managed_sse_enabled=True,
            tags=args.tags,
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            name,
            region=region,
            name=log_group_name,
            retention_in_days=log_retention_days(args.log_retention),
            kms_key_id=self.key.arn,
            tags=args.tags,
            # Evidence of the plan's tests (each run logs its verdict): kept like the audit records.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self.role = aws.iam.Role(
            name,
            description=f"Post Ou Cancer task function {args.function_name}: {args.description}",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("lambda.amazonaws.com", a)),
            tags=args.tags,
            opts=child,
        )
        in_vpc = args.subnet_ids is not None
        policy = aws.iam.RolePolicy(
            name,
            role=self.role.id,
            policy=pulumi.Output.all(self.log_group.arn, self.dlq.arn, self.key.arn, args.statements).apply(
                lambda a: json.dumps({"Version": "2012-10-17", "Statement": [
                    *a[3],
                    # The log group exists beforehand with its retention: no logs:CreateLogGroup.
                    statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{a[0]}:*"),
                    statement("DeadLetter", ["sqs:SendMessage"], a[1]),
                    statement("DecryptOwnEnvironment", ["kms:Decrypt"], a[2]),
                    *(_vpc_statements() if in_vpc else []),
                ]})
            ),
            opts=child,
        )
        vpc = {"vpc_config": {"subnet_ids": args.subnet_ids, "security_group_ids": args.security_group_ids}} \
            if in_vpc else {}
        self.function = aws.lambda_.Function(
            name,
            region=region,
            name=args.function_name,
            description=f"Post Ou Cancer: {args.description}",
            package_type="Image",
            image_uri=args.image_uri,
            image_config={"commands": ["awslambdaric", args.handler]},
            architectures=["x86_64"],
            role=self.role.arn,
            timeout=int(args.timeout.total_seconds()),
            memory_size=args.memory_mb,
            environment={"variables": args.environment},
            kms_key_arn=self.key.arn,
            reserved_concurrent_executions=1,  # one run at a time: a task is never its own competitor
            dead_letter_config={"target_arn": self.dlq.arn},
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            tracing_config={"mode": "PassThrough"},
            tags=args.tags,
            **vpc,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, self.log_group]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            name,
            region=region,
            function_name=self.function.name,
            maximum_retry_attempts=INVOKE_RETRIES,
            maximum_event_age_in_seconds=int(MAX_EVENT_AGE.total_seconds()),
            opts=child,
        )
        self.register_outputs({"function": self.function.name, "dlq": self.dlq.arn})
