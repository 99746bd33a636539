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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.periods import Period
from drplan.retention import Retention

from .kms import CustomerKey, CustomerKeyArgs
from .replicated_bucket import AccessLogBucket, ReplicatedBucket, ReplicatedBucketArgs

LOG_PREFIX = "AWSLogs/"


@dataclass
class AuditTrailArgs:
    region: str  # the trail's home region (and its bucket's)
    trail_name: str  # unique per account: the key and bucket policies name the trail's ARN
    retention: Retention  # audit_logs: how long logs are locked and kept
    locked: bool  # COMPLIANCE lock (prod) or GOVERNANCE (staging)
    log_bucket: AccessLogBucket
    data_event_bucket_arns: list[pulumi.Input[str]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def trail_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudtrail:{region}:{account_id}:trail/{name}"


def key_statements(region: str, name: str):
    """CloudTrail's documented key-policy statements, scoped to this trail."""

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

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:AuditTrail", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept: Period = args.retention.audit_logs
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=args.region,
                description=f"Post Ou Cancer audit trail {args.trail_name}",
                extra_statements=key_statements(args.region, args.trail_name),
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
                expire_prefixes={LOG_PREFIX: kept},
                extra_policy=bucket_statements(args.region, args.trail_name),
                # Audit logs are evidence, not a backup of platform data: not replicated.
                tags={**args.tags, "backup": "false"},
            ),
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
            advanced_event_selectors=pulumi.Output.all(*args.data_event_bucket_arns).apply(
                lambda arns: event_selectors([a for a in arns if a])
            ),
            tags=args.tags,
            # The bucket policy must admit CloudTrail before it validates the bucket.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket]),
        )
        self.arn = self.trail.arn
        self.register_outputs({"arn": self.trail.arn, "bucket": self.bucket.bucket.bucket})
