"""S3 bucket rules. In pulumi-aws v7 a bucket's settings live in separate resources
(BucketVersioning, BucketServerSideEncryptionConfiguration, ...), so these are stack
validations that join each bucket to its configuration resources."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, StackValidationPolicy

from drplan.names import Role
from drplan.retention import MULTIPART_ABORT
from drplan.thresholds import REPLICATION_TIME_CONTROL

from ._util import (
    BUCKET,
    BUCKET_POLICY,
    ENCRYPTION,
    LIFECYCLE,
    LOGGING,
    PUBLIC_ACCESS_BLOCK,
    REPLICATION,
    SITE_SCHEMA,
    VERSIONING,
    Stack,
    arn_region,
    as_list,
    each_known,
    get,
    label,
    number,
    policy_statements,
    stack_policy,
    tags,
)

RTC_MINUTES = int(REPLICATION_TIME_CONTROL.total_seconds() // 60)


def _whole_bucket(rule: Any) -> bool:
    """A lifecycle/replication rule that applies to every object (no prefix, tag or size filter)."""
    if get(rule, "prefix"):
        return False
    flt = get(rule, "filter")
    if not flt:
        return True
    return not any(get(flt, k) for k in ("prefix", "tag", "and", "objectSizeGreaterThan", "objectSizeLessThan"))


# --- versioning --------------------------------------------------------------------


@stack_policy
def _versioned(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(VERSIONING)

    def check(b: PolicyResource) -> None:
        statuses = [get(v.props, "versioningConfiguration", "status") for v in by_bucket.get(b.urn, [])]
        if "Enabled" not in statuses:
            report(f"{label(b)} has no BucketVersioning with status Enabled (found: {statuses or 'none'})", b.urn)

    each_known(stack.of_type(BUCKET), check)


s3_bucket_versioned = StackValidationPolicy(
    name="s3-bucket-versioned",
    description=(
        "Every S3 bucket has versioning enabled (an aws.s3.BucketVersioning with status Enabled). "
        "Mandatory: versions are the undo of an overwrite or a deletion (the plan's accidental-deletion "
        "scenario) and S3 replication and Object Lock refuse unversioned buckets."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_versioned,
)


# --- encryption --------------------------------------------------------------------

_KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _customer_key(key_id: Any) -> bool:
    text = str(key_id or "")
    return bool(text) and "alias/aws/" not in text


@stack_policy
def _kms_encrypted(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(ENCRYPTION)
    log_targets = stack.log_target_buckets()

    def check(b: PolicyResource) -> None:
        defaults = [
            get(rule, "applyServerSideEncryptionByDefault") or {}
            for cfg in by_bucket.get(b.urn, [])
            for rule in as_list(get(cfg.props, "rules"))
        ]
        algorithms = [get(d, "sseAlgorithm") for d in defaults]
        if b.urn in log_targets:
            # S3 server access logging delivers only to SSE-S3 buckets: encrypted, not KMS.
            if not algorithms:
                report(f"{label(b)} (access-log target) has no default encryption", b.urn)
            return
        if not any(
            get(d, "sseAlgorithm") in _KMS_ALGORITHMS and _customer_key(get(d, "kmsMasterKeyId")) for d in defaults
        ):
            report(
                f"{label(b)} is not encrypted by default with a customer-managed KMS key "
                f"(found algorithms {algorithms or 'none'})",
                b.urn,
            )

    each_known(stack.of_type(BUCKET), check)


s3_bucket_kms_encrypted = StackValidationPolicy(
    name="s3-bucket-kms-encrypted",
    description=(
        "Every S3 bucket is encrypted by default with SSE-KMS under a customer-managed key (not the "
        "aws/s3 managed key), except buckets that receive S3 server access logs, which S3 allows only "
        "with SSE-S3 and which must then have SSE-S3. Mandatory: the plan requires encryption at rest "
        "for personal data, and a customer key is what the key policy and crypto-shredding control."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_kms_encrypted,
)


# --- public access -----------------------------------------------------------------

_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@stack_policy
def _public_access_blocked(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(PUBLIC_ACCESS_BLOCK)

    def check(b: PolicyResource) -> None:
        blocks = by_bucket.get(b.urn, [])
        if not any(all(get(pab.props, f) is True for f in _BLOCK_FLAGS) for pab in blocks):
            report(f"{label(b)} lacks a BucketPublicAccessBlock with all four flags true", b.urn)

    each_known(stack.of_type(BUCKET), check)


s3_public_access_blocked = StackValidationPolicy(
    name="s3-public-access-blocked",
    description=(
        "Every S3 bucket has a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, "
        "ignorePublicAcls and restrictPublicBuckets all true. Mandatory: the buckets hold user uploads, "
        "database dumps and audit logs; none of them is ever meant to be public."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_public_access_blocked,
)


# --- TLS only ----------------------------------------------------------------------


def _denies_insecure_transport(document: Any, bucket_arn: str | None) -> bool:
    for s in policy_statements(document):
        if s.get("Effect") != "Deny":
            continue
        principal = s.get("Principal")
        if principal != "*" and not (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            continue
        if not any(a in ("s3:*", "*") for a in as_list(s.get("Action"))):
            continue
        cond = (s.get("Condition") or {}).get("Bool") or {}
        if str(cond.get("aws:SecureTransport")).lower() != "false":
            continue
        res = [str(r) for r in as_list(s.get("Resource"))]
        if bucket_arn and not ({bucket_arn, f"{bucket_arn}/*"} <= set(res) or "*" in res):
            continue
        return True
    return False


@stack_policy
def _tls_only(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(BUCKET_POLICY)

    def check(b: PolicyResource) -> None:
        arn = get(b.props, "arn")
        docs = [get(p.props, "policy") for p in by_bucket.get(b.urn, [])]
        if not any(_denies_insecure_transport(d, arn) for d in docs):
            report(
                f"{label(b)} has no bucket policy denying s3:* on the bucket and its objects when "
                "aws:SecureTransport is false",
                b.urn,
            )

    each_known(stack.of_type(BUCKET), check)


s3_tls_only = StackValidationPolicy(
    name="s3-tls-only",
    description=(
        "Every S3 bucket has a BucketPolicy that denies s3:* on the bucket and its objects to any "
        "principal when aws:SecureTransport is false. Mandatory: the plan requires encryption in transit."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_tls_only,
)


# --- access logging ----------------------------------------------------------------


@stack_policy
def _access_logged(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(LOGGING)
    log_targets = stack.log_target_buckets()

    def check(b: PolicyResource) -> None:
        if b.urn in log_targets:
            return  # a log bucket logging into itself (or another) would log its own log deliveries
        loggings = by_bucket.get(b.urn, [])
        if not any(get(lg.props, "targetBucket") for lg in loggings):
            report(f"{label(b)} has no BucketLogging (server access logs) to a log bucket", b.urn)

    each_known(stack.of_type(BUCKET), check)


s3_access_logged = StackValidationPolicy(
    name="s3-access-logged",
    description=(
        "Every S3 bucket that is not itself an access-log target has a BucketLogging delivering server "
        "access logs to a log bucket. Mandatory: the plan's audit requirements ask to log every access "
        "to backups and to keep those logs."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_access_logged,
)


# --- lifecycle: multipart abort ------------------------------------------------------


@stack_policy
def _multipart_abort(stack: Stack, report: ReportViolation) -> None:
    by_bucket = stack.configs_by_bucket(LIFECYCLE)

    def check(b: PolicyResource) -> None:
        ok = False
        for cfg in by_bucket.get(b.urn, []):
            for rule in as_list(get(cfg.props, "rules")):
                days = number(get(rule, "abortIncompleteMultipartUpload", "daysAfterInitiation"))
                if get(rule, "status") == "Enabled" and _whole_bucket(rule) and days is not None:
                    ok = ok or 0 < days <= MULTIPART_ABORT.days
        if not ok:
            report(
                f"{label(b)} has no enabled whole-bucket lifecycle rule aborting incomplete multipart "
                f"uploads within {MULTIPART_ABORT.days} days",
                b.urn,
            )

    each_known(stack.of_type(BUCKET), check)


s3_lifecycle_multipart_abort = StackValidationPolicy(
    name="s3-lifecycle-multipart-abort",
    description=(
        "Every S3 bucket has a BucketLifecycleConfiguration with an enabled whole-bucket rule that aborts "
        "incomplete multipart uploads within the model's MULTIPART_ABORT. Advisory: abandoned parts cost "
        "money and clutter, but never lose or expose data, so they must not block a deployment."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_multipart_abort,
)


# --- cross-region replication -------------------------------------------------------


def is_replication_source(b: PolicyResource, role: Role) -> bool:
    """Buckets holding data to protect carry the tag backup=true (ReplicatedBucket); on the
    primary site they are the sources, on the DR site the destinations."""
    return role is Role.PRIMARY and str(tags(b.props).get("backup", "")).lower() == "true"


def replication_problems(stack: Stack, cfg: PolicyResource, source_region: str | None) -> list[str]:
    """What is wrong with a BucketReplicationConfig (empty: replicates everything to another region
    with RTC and delete markers)."""
    problems: list[str] = []
    rules = [r for r in as_list(get(cfg.props, "rules")) if get(r, "status") == "Enabled"]
    if not rules:
        return ["no enabled replication rule"]
    if not any(_whole_bucket(r) for r in rules):
        problems.append("no enabled rule replicates the whole bucket (filter by prefix/tag only)")
    for r in rules:
        rid = get(r, "id") or "?"
        dest = get(r, "destination") or {}
        # Into another account (the backup-only account, policy/rules/vault.py) no delete marker
        # goes: a deletion in this account must not hide the copies there.
        if get(r, "deleteMarkerReplication", "status") != "Enabled" and not get(dest, "account"):
            problems.append(f"rule {rid}: deleteMarkerReplication is not Enabled")
        rtc = get(dest, "replicationTime") or {}
        minutes = number(get(rtc, "time", "minutes"))
        if get(rtc, "status") != "Enabled" or minutes is None or minutes > RTC_MINUTES:
            problems.append(f"rule {rid}: Replication Time Control is not Enabled at {RTC_MINUTES} minutes")
        if get(dest, "metrics", "status") != "Enabled":
            problems.append(f"rule {rid}: replication metrics are not Enabled (RTC needs them)")
        dest_region = _destination_region(stack, dest)
        if dest_region is None:
            problems.append(f"rule {rid}: the destination's region cannot be told (no replica KMS key ARN)")
        elif source_region is not None and dest_region == source_region:
            problems.append(f"rule {rid}: destination is in the source's own region {source_region}")
    return problems


def _destination_region(stack: Stack, dest: Any) -> str | None:
    bucket_arn = get(dest, "bucket")
    for b in stack.of_type(BUCKET):
        if get(b.props, "arn") == bucket_arn:
            return stack.region(b)
    # A bucket ARN carries no region; the replica key must live in the destination's region
    # (rule replica-key-in-own-region), so its ARN tells where the copies land.
    return arn_region(get(dest, "encryptionConfiguration", "replicaKmsKeyId"))


@stack_policy
def _replicated(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    by_bucket = stack.configs_by_bucket(REPLICATION)

    def check_config(cfg: PolicyResource) -> None:
        b = stack.bucket_of(cfg)
        region = stack.region(b) if b is not None else stack.region(cfg)
        for p in replication_problems(stack, cfg, region):
            report(f"{label(cfg)}: {p}", cfg.urn)

    def check_bucket(b: PolicyResource) -> None:
        if is_replication_source(b, site.role) and not by_bucket.get(b.urn):
            report(
                f"{label(b)} (tag backup=true on the primary site) has no BucketReplicationConfig to "
                "the DR region: deploy the dr stack first, then this one (README, Bootstrap)",
                b.urn,
            )

    each_known(stack.of_type(REPLICATION), check_config)
    each_known(stack.of_type(BUCKET), check_bucket)


s3_replicated_cross_region = StackValidationPolicy(
    name="s3-replicated-cross-region",
    description=(
        "On the primary site every bucket tagged backup=true has a BucketReplicationConfig, and every "
        "replication configuration replicates the whole bucket to a bucket in another region with "
        "delete-marker replication (but into another account: the backup-only account's copies), metrics and "
        "Replication Time Control at the model's "
        "REPLICATION_TIME_CONTROL. Mandatory: without it a region loss loses the files (the plan's "
        "data-centre-loss scenario) and the RPO of files is unbounded."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_replicated,
)


POLICIES = [
    s3_bucket_versioned,
    s3_bucket_kms_encrypted,
    s3_public_access_blocked,
    s3_tls_only,
    s3_access_logged,
    s3_lifecycle_multipart_abort,
    s3_replicated_cross_region,
]
