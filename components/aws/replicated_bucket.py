"""A versioned, KMS-encrypted, private, access-logged S3 bucket that can replicate to the
DR region: the store for user uploads (avatars, post images, attachments).

The DR stack creates the destination (a ReplicatedBucket without `replicate_to`); the
prod stack creates the source with `replicate_to` pointing at the peer's outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.periods import Period
from drplan.retention import MULTIPART_ABORT, Retention
from drplan.thresholds import REPLICATION_TIME_CONTROL

from .iam import from_account, service_trust_policy
from .kms import CustomerKey


@dataclass
class ReplicaTarget:
    """Where a source bucket replicates to (the DR site's outputs)."""

    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    region: str
    # Another account's bucket (the backup-only account's, infra/vault): the replicas become that
    # account's (owner override), and no delete marker is replicated there.
    account_id: str | None = None
    rule_id: str = "to-dr-region"

    @property
    def cross_account(self) -> bool:
        return self.account_id is not None


@dataclass
class ReplicatedBucketArgs:
    region: str
    retention: Retention
    kms_key: CustomerKey
    log_bucket: AccessLogBucket
    purpose: str = "user-files"
    replicate_to: ReplicaTarget | None = None
    # Further destinations of the same replication configuration (one rule each, after replicate_to's).
    also_replicate_to: list[ReplicaTarget] = field(default_factory=list)
    # The replication role's name (default: generated). A destination in another account names the
    # role in its policies before the role exists, so it must be known in advance.
    replication_role_name: str | None = None
    object_lock: bool = False
    # With object_lock: the bucket's default retention (mode and period). COMPLIANCE: nobody,
    # root included, can delete a locked version early; GOVERNANCE: only with
    # s3:BypassGovernanceRetention. Writers may lock single objects longer (GFS classes).
    lock_mode: str = "COMPLIANCE"
    lock_period: Period | None = None
    # Expire current versions by this object tag, one rule per GFS class of `retention`
    # (tag value = the class, after retention.for_class(c)); None: nothing expires.
    expire_by_tag: str | None = None
    # Extra prefix-scoped expirations: {prefix: period} (e.g. verification records).
    expire_prefixes: dict[str, Period] = field(default_factory=dict)
    # Further bucket-policy statements, given the bucket ARN and the account id (e.g. CloudTrail's delivery).
    extra_policy: Callable[[str, str], list[dict]] | None = None
    tags: dict[str, str] = field(default_factory=dict)


LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")


def lifecycle_rules(args: ReplicatedBucketArgs) -> list[dict]:
    """The bucket's lifecycle: deleted (noncurrent) versions kept `deleted_files`, incomplete
    uploads aborted, and, for backup stores, current versions expired per GFS tag."""
    housekeeping: dict = {
        "id": "deleted-files",
        "status": "Enabled",
        "filter": {},
        "noncurrent_version_expiration": {"noncurrent_days": args.retention.deleted_files.days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": MULTIPART_ABORT.days},
    }
    rules = [housekeeping]
    if args.expire_by_tag is None and not args.expire_prefixes:
        return rules
    # Once its versions are gone, a lone delete marker is clutter: remove it.
    housekeeping["expiration"] = {"expired_object_delete_marker": True}
    if args.expire_by_tag is not None:
        for gfs in args.retention.classes:
            rules.append(
                {
                    "id": f"expire-{gfs.value}",
                    "status": "Enabled",
                    "filter": {"tag": {"key": args.expire_by_tag, "value": gfs.value}},
                    "expiration": {"days": args.retention.for_class(gfs).days},
                }
            )
    for prefix, period in sorted(args.expire_prefixes.items()):
        rules.append(
            {
                "id": f"expire-{prefix.strip('/').replace('/', '-') or 'all'}",
                "status": "Enabled",
                "filter": {"prefix": prefix},
                "expiration": {"days": period.days},
            }
        )
    return rules


def tls_and_kms_only_policy(bucket_arn: str, key_arn: str | None) -> str:
    statements = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if key_arn:
        # Objects put without a header get the bucket's default (this key); anything that
        # asks for another algorithm or another key is refused.
        statements += [
            {
                "Sid": "DenyOtherEncryption",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
            {
                "Sid": "DenyOtherKmsKeys",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}},
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _private(name: str, bucket: aws.s3.Bucket, region: str, parent: pulumi.Resource) -> None:
    opts = pulumi.ResourceOptions(parent=parent)
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        region=region,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        region=region,
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )


class AccessLogBucket(pulumi.ComponentResource):
    """`postoucancer:aws:AccessLogBucket`: where a site's buckets log every access.

    S3 server access logging can only deliver to a bucket encrypted with SSE-S3, so this
    bucket is the one exception to the customer-key rule; it is versioned, private,
    TLS-only, and keeps logs as long as the plan's audit retention.
    """

    bucket: aws.s3.Bucket

    def __init__(self, name: str, region: str, retention: Retention, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            name,
            region=region,
            tags={"purpose": "access-logs"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            region=region,
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            region=region,
            bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        _private(name, self.bucket, region, self)
        account_id = aws.get_caller_identity_output().account_id
        aws.s3.BucketPolicy(
            f"{name}-policy",
            region=region,
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, account_id).apply(lambda a: _log_bucket_policy(a[0], a[1])),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            region=region,
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "audit-retention",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": retention.audit_logs.days},
                    "noncurrent_version_expiration": {"noncurrent_days": retention.deleted_files.days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": MULTIPART_ABORT.days},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self.register_outputs({"bucket": self.bucket.bucket})


def _log_bucket_policy(bucket_arn: str, account_id: str) -> str:
    policy = json.loads(tls_and_kms_only_policy(bucket_arn, None))
    policy["Statement"].append(
        {
            "Sid": "S3ServerAccessLogsFromThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )
    return json.dumps(policy)


class ReplicatedBucket(pulumi.ComponentResource):
    """`postoucancer:aws:ReplicatedBucket`."""

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    replication: aws.s3.BucketReplicationConfig | None = None
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: ReplicatedBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:ReplicatedBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        self.bucket = aws.s3.Bucket(
            name,
            region=region,
            object_lock_enabled=args.object_lock or None,
            tags={"purpose": args.purpose, "backup": "true", **args.tags},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            region=region,
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            region=region,
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key.arn,
                    },
                    # One data key per bucket instead of per object: fewer KMS calls, same key.
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        _private(name, self.bucket, region, self)
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if args.object_lock:
            if args.lock_mode not in LOCK_MODES or args.lock_period is None:
                raise ValueError(f"{name}: object_lock needs lock_mode in {LOCK_MODES} and a lock_period")
            self.object_lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                region=region,
                bucket=self.bucket.id,
                object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": args.lock_mode, "days": args.lock_period.days}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
            )

        def _policy(a: list[str]) -> str:
            doc = json.loads(tls_and_kms_only_policy(a[0], a[1]))
            if args.extra_policy is not None:
                doc["Statement"].extend(args.extra_policy(a[0], a[2]))
            return json.dumps(doc)

        account = aws.get_caller_identity_output().account_id if args.extra_policy is not None else None
        aws.s3.BucketPolicy(
            f"{name}-policy",
            region=region,
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, args.kms_key.arn, account).apply(_policy),
            opts=child,
        )
        aws.s3.BucketLogging(
            f"{name}-logging",
            region=region,
            bucket=self.bucket.id,
            target_bucket=args.log_bucket.bucket.bucket,
            target_prefix=f"{name}/",
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            region=region,
            bucket=self.bucket.id,
            rules=lifecycle_rules(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        targets = [t for t in (args.replicate_to, *args.also_replicate_to) if t is not None]
        self.replica_rules: dict[str, ReplicaTarget] = {t.rule_id: t for t in targets}
        if targets:
            self.replication = self._replicate(name, args, targets)
        # Exported only once versioning exists: the peer's replication needs it on this side.
        self.arn = pulumi.Output.all(self.bucket.arn, self.versioning.id).apply(lambda a: a[0])
        self.register_outputs({"arn": self.arn, "name": self.bucket.bucket})

    def _replicate(
        self, name: str, args: ReplicatedBucketArgs, targets: list[ReplicaTarget]
    ) -> aws.s3.BucketReplicationConfig:
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output().account_id
        role = aws.iam.Role(
            f"{name}-replication",
            name=args.replication_role_name,
            assume_role_policy=account_id.apply(
                lambda a: service_trust_policy("s3.amazonaws.com", from_account(a))
            ),
            opts=child,
        )
        self.replication_role = role
        dests = pulumi.Output.all(*[pulumi.Output.all(t.bucket_arn, t.kms_key_arn) for t in targets])
        policy = aws.iam.RolePolicy(
            f"{name}-replication",
            role=role.id,
            policy=pulumi.Output.all(self.bucket.arn, args.kms_key.arn, dests).apply(
                lambda a: replication_policy(
                    a[0],
                    a[1],
                    args.region,
                    a[2][0][0],
                    a[2][0][1],
                    targets[0].region,
                    args.object_lock,
                    more=[
                        Destination(arn, key, t.region, t.cross_account)
                        for (arn, key), t in zip(a[2][1:], targets[1:], strict=True)
                    ],
                    first_cross_account=targets[0].cross_account,
                )
            ),
            opts=child,
        )
        return aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            region=args.region,
            bucket=self.bucket.id,
            role=role.arn,
            rules=[replication_rule(t, priority) for priority, t in enumerate(targets, start=1)],
            # S3 refuses a replication configuration on a bucket without versioning.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning, policy]),
        )


def replication_rule(target: ReplicaTarget, priority: int) -> dict:
    """One rule of the replication configuration: the whole bucket, SSE-KMS objects re-encrypted
    with the destination's key, under Replication Time Control (and its metrics, which the
    replication alarms watch). Into another account: the replicas' owner becomes that account
    (`account` with the owner override, Amazon S3 user guide "Changing the replica owner"), and
    delete markers stay here (the vault refuses deletes from this account)."""
    minutes = int(REPLICATION_TIME_CONTROL.total_seconds() // 60)
    destination: dict = {
        "bucket": target.bucket_arn,
        "storage_class": "STANDARD",
        "encryption_configuration": {"replica_kms_key_id": target.kms_key_arn},
        "replication_time": {"status": "Enabled", "time": {"minutes": minutes}},
        "metrics": {"status": "Enabled", "event_threshold": {"minutes": minutes}},
    }
    if target.cross_account:
        destination["account"] = target.account_id
        destination["access_control_translation"] = {"owner": "Destination"}
    return {
        "id": target.rule_id,
        "status": "Enabled",
        "priority": priority,
        "filter": {},
        "delete_marker_replication": {"status": "Disabled" if target.cross_account else "Enabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": destination,
    }


@dataclass(frozen=True)
class Destination:
    """A further replication destination, for the role's policy."""

    bucket_arn: str
    kms_key_arn: str
    region: str
    cross_account: bool = False


def _writes(dest: Destination) -> dict:
    writes = ["s3:ReplicateObject", "s3:ReplicateTags"]
    if dest.cross_account:
        # The owner override: the destination account takes ownership of the replicas.
        writes.append("s3:ObjectOwnerOverrideToBucketOwner")
    else:
        writes.insert(1, "s3:ReplicateDelete")
    return {"Effect": "Allow", "Action": writes, "Resource": f"{dest.bucket_arn}/*"}


def _encrypts(dest: Destination) -> dict:
    return {
        "Effect": "Allow",
        "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
        "Resource": dest.kms_key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{dest.region}.amazonaws.com"}},
    }


def replication_policy(
    source_arn: str,
    source_key: str,
    source_region: str,
    dest_arn: str,
    dest_key: str,
    dest_region: str,
    object_lock: bool = False,
    more: list[Destination] | tuple[Destination, ...] = (),
    first_cross_account: bool = False,
) -> str:
    # Replicas of locked objects keep their retention: S3 reads it with the replication role.
    lock_reads = ["s3:GetObjectRetention", "s3:GetObjectLegalHold"] if object_lock else []
    destinations = [Destination(dest_arn, dest_key, dest_region, first_cross_account), *more]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": source_arn,
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                        *lock_reads,
                    ],
                    "Resource": f"{source_arn}/*",
                },
                *[_writes(d) for d in destinations],
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": source_key,
                    "Condition": {"StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"}},
                },
                *[_encrypts(d) for d in destinations],
            ],
        }
    )
