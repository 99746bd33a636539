"""Each S3 rule catches a deliberately bad bucket and passes a good one."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from drplan.retention import MULTIPART_ABORT, RETENTION, Tier
from drplan.thresholds import REPLICATION_TIME_CONTROL
from policy.rules import s3
from tests.policy.harness import DR_REGION, PRIMARY_REGION, doc, names, statement, violations

RTC_MINUTES = int(REPLICATION_TIME_CONTROL.total_seconds() // 60)
PROD = RETENTION[Tier.PROD]


def tls_policy(arn: str) -> str:
    return doc(
        statement(
            "Deny", "s3:*", [arn, f"{arn}/*"], Principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}}
        )
    )


def bucket(
    name: str,
    *,
    region: str = PRIMARY_REGION,
    key: aws.kms.Key | None = None,
    log_to: aws.s3.Bucket | None = None,
    versioning: str | None = "Enabled",
    sse: str | None = "aws:kms",
    kms_key_id: str | None = None,
    public_block: bool | None = True,
    tls: bool = True,
    abort_days: int | None = MULTIPART_ABORT.days,
    tags: dict | None = None,
) -> aws.s3.Bucket:
    """A bucket and its configuration resources as pulumi-aws v7 declares them; each keyword
    turns one part off or bad."""
    b = aws.s3.Bucket(name, region=region, tags=tags or {}, opts=pulumi.ResourceOptions(protect=True))
    if versioning:
        aws.s3.BucketVersioning(
            f"{name}-versioning", region=region, bucket=b.id, versioning_configuration={"status": versioning}
        )
    if sse:
        default: dict = {"sse_algorithm": sse}
        if sse.startswith("aws:kms"):
            default["kms_master_key_id"] = kms_key_id or (key.arn if key is not None else None)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            region=region,
            bucket=b.id,
            rules=[{"apply_server_side_encryption_by_default": default}],
        )
    if public_block is not None:
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            region=region,
            bucket=b.id,
            block_public_acls=True,
            block_public_policy=public_block,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
    aws.s3.BucketPolicy(
        f"{name}-policy",
        region=region,
        bucket=b.id,
        policy=b.arn.apply(lambda arn: tls_policy(arn) if tls else doc(statement("Allow", "s3:GetObject", arn + "/*"))),
    )
    if log_to is not None:
        aws.s3.BucketLogging(
            f"{name}-logging", region=region, bucket=b.id, target_bucket=log_to.bucket, target_prefix=f"{name}/"
        )
    if abort_days is not None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            region=region,
            bucket=b.id,
            rules=[
                {
                    "id": "housekeeping",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": PROD.deleted_files.days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": abort_days},
                }
            ],
        )
    return b


def site_buckets(**bad) -> None:
    """A log bucket (SSE-S3, as S3 access logging requires) and a data bucket logging into it;
    `bad` is applied to the data bucket only."""
    key = aws.kms.Key("data-key", region=PRIMARY_REGION, enable_key_rotation=True, policy=doc())
    logs = bucket("logs", sse="AES256")
    aws.s3.BucketLifecycleConfiguration(
        "logs-retention",
        region=PRIMARY_REGION,
        bucket=logs.id,
        rules=[{"id": "audit", "status": "Enabled", "filter": {}, "expiration": {"days": PROD.audit_logs.days}}],
    )
    bucket("data", key=key, log_to=logs, **bad)


@pytest.mark.parametrize(
    ("policy", "bad"),
    [
        (s3.s3_bucket_versioned, {"versioning": None}),
        (s3.s3_bucket_versioned, {"versioning": "Suspended"}),
        (s3.s3_bucket_kms_encrypted, {"sse": "AES256"}),
        (s3.s3_bucket_kms_encrypted, {"sse": None}),
        (s3.s3_bucket_kms_encrypted, {"kms_key_id": "alias/aws/s3"}),
        (s3.s3_public_access_blocked, {"public_block": None}),
        (s3.s3_public_access_blocked, {"public_block": False}),
        (s3.s3_tls_only, {"tls": False}),
        (s3.s3_access_logged, {"log_to": None}),
        (s3.s3_lifecycle_multipart_abort, {"abort_days": None}),
        (s3.s3_lifecycle_multipart_abort, {"abort_days": MULTIPART_ABORT.days + 1}),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else str(v),
)
def test_bucket_rule_catches_bad_bucket_and_passes_good_ones(policy, bad):
    if "log_to" in bad:

        def program():
            key = aws.kms.Key("data-key", region=PRIMARY_REGION, enable_key_rotation=True, policy=doc())
            bucket("data", key=key)

        found = violations(policy, program)
    else:
        found = violations(policy, lambda: site_buckets(**bad))
    assert names(found) == {"data"}, found
    assert all(v.level == policy.enforcement_level.value for v in found)
    assert violations(policy, site_buckets) == []


def test_access_log_target_is_exempt_from_kms_but_must_be_encrypted():
    """The log bucket (SSE-S3) passes; the same bucket without any encryption does not."""
    assert violations(s3.s3_bucket_kms_encrypted, site_buckets) == []

    def unencrypted_logs():
        logs = bucket("logs", sse=None)
        key = aws.kms.Key("data-key", region=PRIMARY_REGION, enable_key_rotation=True, policy=doc())
        bucket("data", key=key, log_to=logs)

    assert names(violations(s3.s3_bucket_kms_encrypted, unencrypted_logs)) == {"logs"}


def test_multipart_abort_is_advisory_and_the_rest_mandatory():
    assert s3.s3_lifecycle_multipart_abort.enforcement_level.value == "advisory"
    assert {p.enforcement_level.value for p in s3.POLICIES if p is not s3.s3_lifecycle_multipart_abort} == {
        "mandatory"
    }


# --- replication ----------------------------------------------------------------------


def replicated(**rule_overrides) -> None:
    """A source bucket (tag backup=true) replicating to a destination in the DR region."""
    key = aws.kms.Key("src-key", region=PRIMARY_REGION, enable_key_rotation=True, policy=doc())
    dest_key = aws.kms.Key("dest-key", region=DR_REGION, enable_key_rotation=True, policy=doc())
    src = bucket("src", key=key, tags={"backup": "true"})
    dest_region = rule_overrides.pop("dest_region", DR_REGION)
    dest = bucket("dest", region=dest_region, key=dest_key)
    if rule_overrides.pop("no_replication", False):
        return
    rule = {
        "id": "to-dr",
        "status": "Enabled",
        "priority": 1,
        "filter": {},
        "delete_marker_replication": {"status": "Enabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": {
            "bucket": dest.arn,
            "encryption_configuration": {"replica_kms_key_id": dest_key.arn},
            "replication_time": {"status": "Enabled", "time": {"minutes": RTC_MINUTES}},
            "metrics": {"status": "Enabled", "event_threshold": {"minutes": RTC_MINUTES}},
        },
    }
    for path, value in rule_overrides.items():
        target = rule
        *parents, leaf = path.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    role = aws.iam.Role("replication", assume_role_policy=doc())
    aws.s3.BucketReplicationConfig("src-replication", region=PRIMARY_REGION, bucket=src.id, role=role.arn, rules=[rule])


@pytest.mark.parametrize(
    "bad",
    [
        {"delete_marker_replication": {"status": "Disabled"}},
        {"destination.replication_time": {"status": "Disabled", "time": {"minutes": RTC_MINUTES}}},
        {"destination.replication_time": {"status": "Enabled", "time": {"minutes": RTC_MINUTES * 2}}},
        {"destination.metrics": {"status": "Disabled"}},
        {"filter": {"prefix": "images/"}},
        {"dest_region": PRIMARY_REGION, "destination.encryption_configuration": {"replica_kms_key_id": None}},
        {"no_replication": True},
    ],
    ids=["no-delete-markers", "no-rtc", "slow-rtc", "no-metrics", "prefix-only", "same-region", "missing"],
)
def test_replication_rule_catches_bad_replication(bad):
    found = violations(s3.s3_replicated_cross_region, lambda: replicated(**bad))
    assert names(found) & {"src", "src-replication"}, found
    assert violations(s3.s3_replicated_cross_region, replicated) == []


def test_replication_to_a_bucket_of_the_same_region_is_caught():
    def same_region():
        key = aws.kms.Key("src-key", region=PRIMARY_REGION, enable_key_rotation=True, policy=doc())
        src = bucket("src", key=key, tags={"backup": "true"})
        dest = bucket("dest", key=key)
        aws.s3.BucketReplicationConfig(
            "src-replication",
            region=PRIMARY_REGION,
            bucket=src.id,
            role="arn:aws:iam::123456789012:role/r",
            rules=[
                {
                    "id": "to-dr",
                    "status": "Enabled",
                    "filter": {},
                    "delete_marker_replication": {"status": "Enabled"},
                    "destination": {
                        "bucket": dest.arn,
                        "encryption_configuration": {"replica_kms_key_id": key.arn},
                        "replication_time": {"status": "Enabled", "time": {"minutes": RTC_MINUTES}},
                        "metrics": {"status": "Enabled", "event_threshold": {"minutes": RTC_MINUTES}},
                    },
                }
            ],
        )

    found = violations(s3.s3_replicated_cross_region, same_region)
    assert any("own region" in v.message for v in found), found


def test_dr_site_buckets_are_destinations_not_sources():
    def dr_bucket():
        key = aws.kms.Key("dest-key", region=DR_REGION, enable_key_rotation=True, policy=doc())
        bucket("dest", region=DR_REGION, key=key, tags={"backup": "true"})

    assert violations(s3.s3_replicated_cross_region, dr_bucket, site={"role": "dr", "tier": "prod"}) == []
    assert names(violations(s3.s3_replicated_cross_region, dr_bucket)) == {"dest"}
