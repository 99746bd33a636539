"""The backup and restore-verify functions on AWS Lambda, scheduled by EventBridge Scheduler.

One container image (lambdas/Dockerfile) serves both functions; each gets its own
least-privilege role, log group, dead-letter queue target and schedule:

  backup  daily at the model's full-backup slot (the model's schedule, rendered by components/aws/cron.py)
  verify  weekly, after the weekly backup has landed (cron.restore_test)

Both run in the site's private subnets with the network's `functions` security group
(allowed to reach the database on 5432 and AWS APIs through VPC endpoints only).

Failures are never silent: a schedule that cannot invoke the function retries and then
drops the event into the dead-letter queue; an invocation that fails is retried by Lambda
and then sent to the same queue (`dead_letter_config`); both are alarmed on
(infra/aws/monitoring.py). Roles follow lambdas/README.md "IAM": they can write backups
but never delete them, shorten their lock, or change the bucket.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_aws as aws

from drplan import layout
from drplan.handover import ENV_VAR as POLICY_ENV
from drplan.handover import BackupPolicy
from drplan.periods import HOUR, Period
from drplan.thresholds import BACKUP_OVERDUE_AFTER

from . import cron
from .iam import from_account, service_trust_policy
from .kms import CustomerKey, CustomerKeyArgs, logs_key_statements

# Lambda's ceiling for one invocation.
LAMBDA_MAX_TIMEOUT = timedelta(minutes=15)
# Lambda retries a failed asynchronous invocation at most twice; the scheduler retries
# delivering the event. Both give up well within the slot's overdue window.
INVOKE_RETRIES = 2
SCHEDULER_RETRIES = 3
# Lambda keeps a queued asynchronous event at most 6 hours; the scheduler at most 24.
MAX_EVENT_AGE = timedelta(hours=6)
# SQS keeps a message at most 14 days: time enough to notice (alarm) and replay.
DLQ_RETENTION = timedelta(days=14)
# CloudWatch Logs accepts only these retention periods (days): short ones, then whole years
# of 365.25 days rounded up (2, 3 and 5 to 10 years; AWS offers no 4-year value).
_WHOLE_YEARS = tuple(math.ceil(365.25 * y) for y in (2, 3, 5, 6, 7, 8, 9, 10))
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, *_WHOLE_YEARS)
# At most one run of each function at a time: two backups of the same slot would race for the
# same manifest (the function's idempotency is per slot, not per concurrent run), and a second
# restore test would only compete for the same restore server.
RESERVED_CONCURRENCY = {"backup": 1, "verify": 1}
BACKUP_HANDLER = "lambdas.aws_lambda.backup_handler"
VERIFY_HANDLER = "lambdas.aws_lambda.verify_handler"


def log_retention_days(period: Period) -> int:
    """The shortest retention CloudWatch Logs accepts that keeps logs at least `period`."""
    for d in LOG_RETENTION_DAYS:
        if d >= period.days:
            return d
    raise ValueError(f"CloudWatch Logs cannot keep logs {period} ({period.days} d); export them to S3")


@dataclass
class BackupFunctionsArgs:
    region: str
    image_uri: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]  # the backup bucket's key: the only key the functions use for data
    database: str
    # The deployment's effective plan (tier, retention with overrides, slot): BACKUP_POLICY.
    policy: BackupPolicy
    subnet_ids: list[pulumi.Input[str]]
    security_group_ids: list[pulumi.Input[str]]
    log_retention: Period  # as long as the audit requirement (model: audit_logs)
    db_secret_arn: pulumi.Input[str] | None = None
    db_secret_kms_key_arn: pulumi.Input[str] | None = None
    # The site's own database (PGHOST): the secret may be the primary's replica, whose host
    # is the primary region's instance.
    db_host: pulumi.Input[str] | None = None
    # verify's server (CREATEDB), if not the database's: a restore-test instance.
    verify_secret_arn: pulumi.Input[str] | None = None
    verify_secret_kms_key_arn: pulumi.Input[str] | None = None
    prefix: str = "postgres"
    object_lock: bool = True  # the bucket has Object Lock: refuse to write unlocked backups
    enabled: bool = True  # schedules ENABLED (a standby DR site: DISABLED until activation)
    timeout: timedelta = LAMBDA_MAX_TIMEOUT
    memory_mb: int = 2048
    # Function and schedule names are per account and region: carry the stack in them.
    name_prefix: str = "postoucancer"
    tags: dict[str, str] = field(default_factory=dict)


def _statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    s = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        s["Condition"] = condition
    return s


def _base(prefix: str, database: str) -> str:
    return f"{prefix.strip('/')}/{database}" if prefix.strip("/") else database


def backup_policy(
    bucket_arn: str,
    prefix: str,
    database: str,
    key_arn: str,
    log_group_arn: str | None,
    dlq_arn: str | None,
    secret_arn: str | None = None,
    secret_key_arn: str | None = None,
    env_key_arn: str | None = None,
) -> str:
    base = _base(prefix, database)
    objects = [f"{bucket_arn}/{base}/{layout.DATA_DIR}/*", f"{bucket_arn}/{base}/{layout.MANIFEST_DIR}/*"]
    statements = [
        _statement("ListOwnPrefix", ["s3:ListBucket"], bucket_arn, {"StringLike": {"s3:prefix": [f"{base}/*"]}}),
        _statement("ReadLockConfiguration", ["s3:GetBucketObjectLockConfiguration"], bucket_arn),
        _statement(
            "WriteBackups",
            [
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:PutObjectRetention",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:AbortMultipartUpload",
            ],
            objects,
        ),
        _statement("EncryptWithBackupKey", ["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"], key_arn),
        *_common(log_group_arn, dlq_arn, secret_arn, secret_key_arn, env_key_arn),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def verify_policy(
    bucket_arn: str,
    prefix: str,
    database: str,
    key_arn: str,
    log_group_arn: str | None,
    dlq_arn: str | None,
    secret_arn: str | None = None,
    secret_key_arn: str | None = None,
    env_key_arn: str | None = None,
) -> str:
    base = _base(prefix, database)
    statements = [
        # ListBucketVersions: verify reads a manifest's first version and refuses any later one
        # (lambdas/core/verify.py, tamper evidence).
        _statement(
            "ListOwnPrefix",
            ["s3:ListBucket", "s3:ListBucketVersions"],
            bucket_arn,
            {"StringLike": {"s3:prefix": [f"{base}/*"]}},
        ),
        _statement(
            "ReadBackups",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [f"{bucket_arn}/{base}/{layout.DATA_DIR}/*", f"{bucket_arn}/{base}/{layout.MANIFEST_DIR}/*"],
        ),
        _statement("WriteVerificationRecords", ["s3:PutObject"], f"{bucket_arn}/{base}/{layout.VERIFY_DIR}/*"),
        _statement("UseBackupKey", ["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"], key_arn),
        *_common(log_group_arn, dlq_arn, secret_arn, secret_key_arn, env_key_arn),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _common(
    log_group_arn: str | None,
    dlq_arn: str | None,
    secret_arn: str | None,
    secret_key_arn: str | None,
    env_key_arn: str | None = None,
) -> list[dict]:
    """Lambda's needs (log_group_arn/dlq_arn given) and the database secret's; a pod
    (Kubernetes runner) gets only the latter."""
    statements = []
    if log_group_arn is not None and dlq_arn is not None:
        statements += _lambda_statements(log_group_arn, dlq_arn)
    if env_key_arn:
        # The function's environment is encrypted with the functions' key (kms_key_arn).
        statements.append(_statement("DecryptOwnEnvironment", ["kms:Decrypt"], env_key_arn))
    if secret_arn:
        statements.append(_statement("ReadDatabaseSecret", ["secretsmanager:GetSecretValue"], secret_arn))
    if secret_key_arn:
        statements.append(
            _statement(
                "DecryptDatabaseSecret",
                ["kms:Decrypt"],
                secret_key_arn,
                {"StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}},
            )
        )
    return statements


def _lambda_statements(log_group_arn: str, dlq_arn: str) -> list[dict]:
    return [
        # The log group is created with its retention beforehand: no logs:CreateLogGroup.
        _statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group_arn}:*"),
        _statement("DeadLetter", ["sqs:SendMessage"], dlq_arn),
        # Lambda in a VPC: these EC2 actions do not support resource-level permissions (Service
        # Authorization Reference, Amazon EC2), so "*" is the only Resource AWS accepts. The one
        # "*" of this program's identity policies (tests/infra/test_hardening.py).
        _statement(
            "VpcNetworkInterfaces",
            [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "*",
        ),
    ]


def _secret_env(arn: pulumi.Input[str] | None, host: pulumi.Input[str] | None = None) -> dict[str, pulumi.Input[str]]:
    env: dict[str, pulumi.Input[str]] = {"DB_SECRET_ARN": arn} if arn is not None else {}
    if arn is not None and host is not None:
        env["PGHOST"] = host
    return env


def assume_role_policy(service: str, account_id: str) -> str:
    return service_trust_policy(service, from_account(account_id))


class BackupFunctions(pulumi.ComponentResource):
    """`postoucancer:aws:BackupFunctions`: the backup and verify functions of one database."""

    dlq: aws.sqs.Queue
    functions: dict[str, aws.lambda_.Function]
    roles: dict[str, aws.iam.Role]
    schedules: dict[str, aws.scheduler.Schedule]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    key: CustomerKey  # logs and environment of both functions

    def __init__(self, name: str, args: BackupFunctionsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:BackupFunctions", name, None, opts)
        if args.timeout > LAMBDA_MAX_TIMEOUT:
            raise ValueError(f"{name}: a Lambda function runs at most {LAMBDA_MAX_TIMEOUT}, not {args.timeout}")
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        account_id = aws.get_caller_identity_output().account_id
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            region=region,
            message_retention_seconds=int(DLQ_RETENTION.total_seconds()),
            sqs_managed_sse_enabled=True,
            tags=args.tags,
            opts=child,
        )
        common_env = {
            "BACKUP_DATABASE": args.database,
            "BACKUP_BUCKET": args.bucket_name,
            "BACKUP_PREFIX": args.prefix,
            "BACKUP_TIER": args.policy.tier.value,
        }
        secrets = {
            "backup": (args.db_secret_arn, args.db_secret_kms_key_arn),
            "verify": (args.verify_secret_arn, args.verify_secret_kms_key_arn)
            if args.verify_secret_arn is not None
            else (args.db_secret_arn, args.db_secret_kms_key_arn),
        }
        specs = {
            "backup": (
                BACKUP_HANDLER,
                backup_policy,
                {
                    **common_env,
                    **_secret_env(secrets["backup"][0], args.db_host),
                    "BACKUP_KMS_KEY_ID": args.kms_key_arn,
                    "BACKUP_OBJECT_LOCK": "on" if args.object_lock else "auto",
                    POLICY_ENV: args.policy.to_json(),
                },
                cron.daily(args.policy.schedules),
            ),
            "verify": (
                VERIFY_HANDLER,
                verify_policy,
                {
                    **common_env,
                    # A dedicated restore-test server's secret names its own host.
                    **_secret_env(secrets["verify"][0], args.db_host if args.verify_secret_arn is None else None),
                    "VERIFY_RECORD": "true",
                    # The newest backup must be from the last slot: older is a missed backup.
                    "VERIFY_MAX_AGE_HOURS": str(int(BACKUP_OVERDUE_AFTER / HOUR)),
                },
                cron.restore_test(args.policy.schedules),
            ),
        }
        self.functions, self.roles, self.log_groups, self.schedules = {}, {}, {}, {}
        log_group_names = {key: f"/aws/lambda/{args.name_prefix}-{key}" for key in specs}
        # The functions' own key: their log groups (audit records) and their environment.
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=region,
                description=f"Post Ou Cancer backup functions {name}: logs and environment",
                extra_statements=logs_key_statements(region, sorted(log_group_names.values())),
                tags=args.tags,
            ),
            opts=child,
        )
        for key, (handler, policy_fn, env, _cron) in specs.items():
            fn_name = f"{args.name_prefix}-{key}"
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-{key}",
                region=region,
                name=log_group_names[key],
                retention_in_days=log_retention_days(args.log_retention),
                kms_key_id=self.key.arn,
                tags=args.tags,
                # Audit evidence (every backup/verify writes one audit record here).
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
            role = aws.iam.Role(
                f"{name}-{key}",
                description=f"Post Ou Cancer {key} function ({name}): writes, never deletes, backups",
                assume_role_policy=account_id.apply(lambda a: assume_role_policy("lambda.amazonaws.com", a)),
                tags=args.tags,
                opts=child,
            )
            policy = aws.iam.RolePolicy(
                f"{name}-{key}",
                role=role.id,
                policy=pulumi.Output.all(
                    args.bucket_arn,
                    args.kms_key_arn,
                    log_group.arn,
                    self.dlq.arn,
                    *secrets[key],
                    self.key.arn,
                ).apply(
                    lambda a, f=policy_fn: f(a[0], args.prefix, args.database, a[1], a[2], a[3], a[4], a[5], a[6])
                ),
                opts=child,
            )
            fn = aws.lambda_.Function(
                f"{name}-{key}",
                region=region,
                name=fn_name,
                description=f"Post Ou Cancer PostgreSQL {key} of database {args.database}",
                package_type="Image",
                image_uri=args.image_uri,
                image_config={"commands": ["awslambdaric", handler]},
                architectures=["x86_64"],
                role=role.arn,
                timeout=int(args.timeout.total_seconds()),
                memory_size=args.memory_mb,
                environment={"variables": env},
                kms_key_arn=self.key.arn,
                reserved_concurrent_executions=RESERVED_CONCURRENCY[key],
                vpc_config={"subnet_ids": args.subnet_ids, "security_group_ids": args.security_group_ids},
                dead_letter_config={"target_arn": self.dlq.arn},
                logging_config={"log_format": "JSON", "log_group": log_group.name},
                tracing_config={"mode": "PassThrough"},
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
            )
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-{key}",
                region=region,
                function_name=fn.name,
                maximum_retry_attempts=INVOKE_RETRIES,
                maximum_event_age_in_seconds=int(MAX_EVENT_AGE.total_seconds()),
                opts=child,
            )
            self.functions[key], self.roles[key], self.log_groups[key] = fn, role, log_group

        # EventBridge Scheduler: its own role may invoke these two functions and nothing else.
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler",
            description=f"EventBridge Scheduler: invokes the {name} functions",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("scheduler.amazonaws.com", a)),
            tags=args.tags,
            opts=child,
        )
        scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler",
            role=scheduler_role.id,
            policy=pulumi.Output.all(self.dlq.arn, *[f.arn for f in self.functions.values()]).apply(
                lambda a: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            _statement("InvokeBackupFunctions", ["lambda:InvokeFunction"], list(a[1:])),
                            _statement("DeadLetter", ["sqs:SendMessage"], a[0]),
                        ],
                    }
                )
            ),
            opts=child,
        )
        self.scheduler_role = scheduler_role
        for key, (_h, _p, _e, expression) in specs.items():
            self.schedules[key] = aws.scheduler.Schedule(
                f"{name}-{key}",
                region=region,
                name=f"{args.name_prefix}-{key}",
                description=f"{key} of {args.database} ({expression}, UTC; from drplan)",
                schedule_expression=expression,
                schedule_expression_timezone="UTC",
                flexible_time_window={"mode": "OFF"},
                state="ENABLED" if args.enabled else "DISABLED",
                target={
                    "arn": self.functions[key].arn,
                    "role_arn": scheduler_role.arn,
                    "input": json.dumps({}),
                    "retry_policy": {
                        "maximum_retry_attempts": SCHEDULER_RETRIES,
                        "maximum_event_age_in_seconds": int(MAX_EVENT_AGE.total_seconds()),
                    },
                    "dead_letter_config": {"arn": self.dlq.arn},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]),
            )
        self.register_outputs(
            {
                "functions": {k: f.name for k, f in self.functions.items()},
                "dlq": self.dlq.arn,
            }
        )
