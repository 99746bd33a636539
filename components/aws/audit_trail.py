"""The audit trail (plan: "Audit Requirements"): who did what to the backups, kept 7 years.

One multi-region CloudTrail trail with log-file validation (signed digest files: a deleted
or altered log file is detectable), encrypted with its own customer key, delivered to a
bucket under Object Lock (COMPLIANCE where the tier is locked) whose default retention is
the model's audit-log retention and whose lifecycle expires logs once that has passed.

What it records:
  * every management event in every region (read and write): IAM, KMS, S3 bucket settings,
    and every AWS Backup API call, which is how recovery points are deleted, re-tiered,
    restored or their retention changed (DeleteRecoveryPoint, UpdateRecoveryPointLifecycle,
    StartRestoreJob, ... are management events);
  * S3 data events (object reads, writes, deletes, retention and tag changes) on the backup
    buckets given: access to every backup object is logged.

The trail's own bucket is not a data-event target (a trail logging its own deliveries loops).

The trail also delivers to a CloudWatch Logs group (same key, `cloudwatch_retention_days`:
the bucket stays the 7-year record, the log group is for alerting and queries). A metric
filter counts changes to the audit and immutability controls themselves (the trail, vault
locks and vault policies, key deletion), across every region the trail records;
infra/aws/audit.py alarms on that metric through the site's AlertTopic.

The bucket also receives AWS Backup Audit Manager's reports (under REPORTS_PREFIX), kept as
long as the logs: its policy and key let the Backup Audit Manager service-linked role write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.periods import Period
from drplan.retention import Retention

from .iam import service_trust_policy
from .kms import CustomerKey, CustomerKeyArgs, combined, logs_key_statements
from .replicated_bucket import AccessLogBucket, ReplicatedBucket, ReplicatedBucketArgs

LOG_PREFIX = "AWSLogs/"
# AWS Backup Audit Manager delivers its reports under this prefix (ReportPlan s3_key_prefix).
REPORTS_PREFIX = "backup-reports/"
# A year of the trail in CloudWatch Logs for alerting and queries; the bucket keeps 7 years.
CLOUDWATCH_RETENTION_DAYS = 365
# The metric the change filter publishes (one per matching event).
CHANGE_METRIC_NAMESPACE = "PostOuCancer/Audit"
CHANGE_METRIC = "AuditControlChanges"
# The API calls that weaken the record or the immutability of the backups, by service.
WATCHED_CHANGES: dict[str, tuple[str, ...]] = {
    "cloudtrail.amazonaws.com": ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"),
    "backup.amazonaws.com": (
        "PutBackupVaultLockConfiguration",
        "DeleteBackupVaultLockConfiguration",
        "PutBackupVaultAccessPolicy",
        "DeleteBackupVaultAccessPolicy",
        "DeleteBackupVault",
    ),
    "kms.amazonaws.com": ("ScheduleKeyDeletion", "DisableKey"),
}


def change_pattern(changes: dict[str, tuple[str, ...]] = WATCHED_CHANGES) -> str:
    """A CloudWatch Logs filter pattern (JSON events) matching any of `changes`."""
    terms = []
    for source, names in sorted(changes.items()):
        events = " || ".join(f'($.eventName = "{n}")' for n in names)
        terms.append(f'(($.eventSource = "{source}") && ({events}))')
    return "{ " + " || ".join(terms) + " }"


def reports_role_arn(account_id: str) -> str:
    """AWS Backup Audit Manager's service-linked role (created by AWS with the first report plan)."""
    return (
        f"arn:aws:iam::{account_id}:role/aws-service-role/reports.backup.amazonaws.com/AWSServiceRoleForBackupReports"
    )


def _reports_principal(account_id: str) -> dict:
    # By condition rather than as Principal: S3 and KMS refuse a policy naming a role that does
    # not exist yet, and the service-linked role appears only with the first report plan.
    return {"ArnEquals": {"aws:PrincipalArn": reports_role_arn(account_id)}}


def reports_key_statements(account_id: str) -> list[dict]:
    """The key policy AWS Backup documents for a report bucket under a customer key."""
    return [
        {
            "Sid": "BackupAuditManagerWritesReports",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": _reports_principal(account_id),
        }
    ]


def trail_to_logs_trust_policy(trail: str) -> str:
    return service_trust_policy("cloudtrail.amazonaws.com", {"StringEquals": {"aws:SourceArn": trail}})


def trail_to_logs_policy(log_group_arn: str, account_id: str) -> str:
    """CloudTrail's documented delivery permissions, on this log group's streams only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeliverTrailEvents",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:log-stream:{account_id}_CloudTrail_*",
                }
            ],
        }
    )


@dataclass
class AuditTrailArgs:
    region: str  # the trail's home region (and its bucket's)
    trail_name: str  # unique per account: the key and bucket policies name the trail's ARN
    retention: Retention  # audit_logs: how long logs are locked and kept
    locked: bool  # COMPLIANCE lock (prod) or GOVERNANCE (staging)
    log_bucket: AccessLogBucket
    data_event_bucket_arns: list[pulumi.Input[str]] = field(default_factory=list)
    cloudwatch_retention_days: int = CLOUDWATCH_RETENTION_DAYS
    tags: dict[str, str] = field(default_factory=dict)


def trail_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudtrail:{region}:{account_id}:trail/{name}"


def key_statements(region: str, name: str):
    """CloudTrail's documented key-policy statements, scoped to this trail (in a key policy,
    "Resource": "*" is the key itself)."""

    def statements(account_id: str) -> list[dict]:
        arn = trail_arn(region, account_id, name)
        return [
            {
                "Sid": "CloudTrailEncryptsThisTrail",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceArn": arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{account_id}:trail/*"
                    },
                },
            },
            {
                "Sid": "CloudTrailDescribesKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceArn": arn}},
            },
        ]

    return statements


def bucket_statements(region: str, name: str):
    """CloudTrail's delivery into the bucket, for this trail only."""

    def statements(bucket_arn: str, account_id: str) -> list[dict]:
        arn = trail_arn(region, account_id, name)
        return [
            {
                "Sid": "BackupAuditManagerReports",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{REPORTS_PREFIX}*",
                "Condition": _reports_principal(account_id),
            },
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceArn": arn}},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{LOG_PREFIX}{account_id}/*",
                "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": arn}},
            },
        ]

    return statements


def event_selectors(bucket_arns: list[str]) -> list[dict]:
    selectors: list[dict] = [
        {
            "name": "All management events (incl. every AWS Backup recovery-point API call)",
            "field_selectors": [{"field": "eventCategory", "equals": ["Management"]}],
        }
    ]
    if bucket_arns:
        selectors.append(
            {
                "name": "Every object-level access to the backup buckets",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    {"field": "resources.ARN", "starts_withs": sorted(f"{a}/" for a in bucket_arns)},
                ],
            }
        )
    return selectors


class AuditTrail(pulumi.ComponentResource):
    """`postoucancer:aws:AuditTrail`."""

    trail: aws.cloudtrail.Trail
    bucket: ReplicatedBucket
    key: CustomerKey
    log_group: aws.cloudwatch.LogGroup
    change_filter: aws.cloudwatch.LogMetricFilter

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:AuditTrail", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept: Period = args.retention.audit_logs
        group_name = self.log_group_name = f"/postoucancer/cloudtrail/{args.trail_name}"
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=args.region,
                description=f"Post Ou Cancer audit trail {args.trail_name}",
                extra_statements=combined(
                    key_statements(args.region, args.trail_name),
                    logs_key_statements(args.region, [group_name]),
                    reports_key_statements,
                ),
                tags=args.tags,
            ),
            opts=child,
        )
        self.bucket = ReplicatedBucket(
            f"{name}-logs",
            ReplicatedBucketArgs(
                region=args.region,
                retention=args.retention,
                kms_key=self.key,
                log_bucket=args.log_bucket,
                purpose="audit-logs",
                object_lock=True,
                lock_mode="COMPLIANCE" if args.locked else "GOVERNANCE",
                lock_period=kept,
                expire_prefixes={LOG_PREFIX: kept, REPORTS_PREFIX: kept},
                extra_policy=bucket_statements(args.region, args.trail_name),
                # Audit logs are evidence, not a backup of platform data: not replicated.
                tags={**args.tags, "backup": "false"},
            ),
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-events",
            region=args.region,
            name=group_name,
            retention_in_days=args.cloudwatch_retention_days,
            kms_key_id=self.key.arn,
            tags=args.tags,
            opts=child,
        )
        account_id = aws.get_caller_identity_output().account_id
        to_logs = aws.iam.Role(
            f"{name}-to-logs",
            description=f"CloudTrail: delivers trail {args.trail_name} to its CloudWatch Logs group",
            assume_role_policy=account_id.apply(
                lambda a: trail_to_logs_trust_policy(trail_arn(args.region, a, args.trail_name))
            ),
            tags=args.tags,
            opts=child,
        )
        to_logs_policy = aws.iam.RolePolicy(
            f"{name}-to-logs",
            role=to_logs.id,
            policy=pulumi.Output.all(self.log_group.arn, account_id).apply(lambda a: trail_to_logs_policy(a[0], a[1])),
            opts=child,
        )
        self.change_filter = aws.cloudwatch.LogMetricFilter(
            f"{name}-control-changes",
            region=args.region,
            name="audit-control-changes",
            log_group_name=self.log_group.name,
            pattern=change_pattern(),
            metric_transformation={"namespace": CHANGE_METRIC_NAMESPACE, "name": CHANGE_METRIC, "value": "1"},
            opts=child,
        )
        self.trail = aws.cloudtrail.Trail(
            name,
            region=args.region,
            name=args.trail_name,
            s3_bucket_name=self.bucket.bucket.bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=self.key.arn,
            # CloudTrail wants the group's ARN with the log-stream wildcard.
            cloud_watch_logs_group_arn=self.log_group.arn.apply(lambda a: f"{a}:*"),
            cloud_watch_logs_role_arn=to_logs.arn,
            advanced_event_selectors=pulumi.Output.all(*args.data_event_bucket_arns).apply(
                lambda arns: event_selectors([a for a in arns if a])
            ),
            tags=args.tags,
            # The bucket policy must admit CloudTrail before it validates the bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket, to_logs_policy]),
        )
        self.arn = self.trail.arn
        self.register_outputs({"arn": self.trail.arn, "bucket": self.bucket.bucket.bucket})
