"""The audit trail (issue 7, point 3): a multi-region trail with log-file validation, data events
on both sites' backup buckets, delivered to a locked bucket kept as long as the model's audit
retention, encrypted with its own customer key."""

import json

import pytest

from components.aws.audit_trail import LOG_PREFIX, REPORTS_PREFIX
from drplan.retention import RETENTION, Tier

TRAIL = "aws:cloudtrail/trail:Trail"
BUCKET = "aws:s3/bucket:Bucket"


def _named(run, type_, name):
    found = [r for r in run.of_type(type_) if r.name == name]
    assert len(found) == 1, (type_, name, [r.name for r in run.of_type(type_)])
    return found[0]


def _audit_child(run, type_):
    parent = _named(run, "postoucancer:aws:ReplicatedBucket", "dr-audit-logs")
    found = [r for r in run.children_of(parent) if r.type == type_]
    assert len(found) == 1
    return found[0]


def test_one_trail_per_site_pair_owned_by_the_dr_stack(prod, dr, staging, staging_dr):
    assert not prod.of_type(TRAIL) and not staging.of_type(TRAIL)
    assert len(dr.of_type(TRAIL)) == 1 and len(staging_dr.of_type(TRAIL)) == 1
    assert prod.outputs["auditTrail"]["owner"].endswith("/dr")
    assert dr.of_type(TRAIL)[0].inputs["name"] != staging_dr.of_type(TRAIL)[0].inputs["name"]


def test_trail_is_multi_region_validated_and_encrypted(dr):
    trail = dr.one(TRAIL).inputs
    assert trail["isMultiRegionTrail"] is True
    assert trail["includeGlobalServiceEvents"] is True
    assert trail["enableLogFileValidation"] is True
    assert trail["enableLogging"] is True
    key = _named(dr, "aws:kms/key:Key", "dr-audit-key")
    assert trail["kmsKeyId"] == key.outputs["arn"] and key.protect and key.region == "eu-central-1"
    assert trail["s3BucketName"] == _named(dr, BUCKET, "dr-audit-logs").outputs["bucket"]
    # The key lets CloudTrail encrypt for this trail only.
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    encrypt = statements["CloudTrailEncryptsThisTrail"]
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Condition"]["StringEquals"]["aws:SourceArn"].endswith(f":trail/{trail['name']}")


def test_data_events_cover_both_sites_backup_buckets(dr, prod):
    selectors = dr.one(TRAIL).inputs["advancedEventSelectors"]
    management = [s for s in selectors if {"field": "eventCategory", "equals": ["Management"]} in s["fieldSelectors"]]
    assert len(management) == 1 and len(management[0]["fieldSelectors"]) == 1, "all management events, read and write"
    data = next(s for s in selectors if {"field": "eventCategory", "equals": ["Data"]} in s["fieldSelectors"])
    fields = {f["field"]: f for f in data["fieldSelectors"]}
    assert fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    expected = {
        _named(dr, BUCKET, "dr-pg-backups").outputs["arn"] + "/",
        _named(prod, BUCKET, "primary-pg-backups").outputs["arn"] + "/",
    }
    assert set(fields["resources.ARN"]["startsWiths"]) == expected
    audit_bucket = _named(dr, BUCKET, "dr-audit-logs").outputs["arn"]
    assert not any(a.startswith(audit_bucket) for a in fields["resources.ARN"]["startsWiths"]), "no logging loop"


def test_first_dr_pass_covers_its_own_bucket_only():
    from infra.mockrun import run_stack

    lonely = run_stack("dr", peer_outputs=None)
    data = [
        s
        for s in lonely.one(TRAIL).inputs["advancedEventSelectors"]
        if {"field": "eventCategory", "equals": ["Data"]} in s["fieldSelectors"]
    ]
    arns = next(f for f in data[0]["fieldSelectors"] if f["field"] == "resources.ARN")["startsWiths"]
    assert arns == [_named(lonely, BUCKET, "dr-pg-backups").outputs["arn"] + "/"]


@pytest.mark.parametrize(
    "stack,mode,tier", [("dr", "COMPLIANCE", Tier.PROD), ("staging_dr", "GOVERNANCE", Tier.STAGING)]
)
def test_log_bucket_is_locked_and_kept_for_the_audit_retention(request, stack, mode, tier):
    run = request.getfixturevalue(stack)
    audit = RETENTION[tier].audit_logs
    bucket = _named(run, BUCKET, "dr-audit-logs")
    assert bucket.protect and bucket.inputs["objectLockEnabled"] is True
    lock = _audit_child(run, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": mode, "days": audit.days}
    rules = _audit_child(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    expiring = [r for r in rules if "days" in r.get("expiration", {})]
    # The trail's logs and AWS Backup Audit Manager's reports, both kept the audit retention.
    assert [(r["filter"], r["expiration"]["days"]) for r in expiring] == [
        ({"prefix": LOG_PREFIX}, audit.days),
        ({"prefix": REPORTS_PREFIX}, audit.days),
    ]
    sse = _audit_child(
        run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse["kmsMasterKeyId"] == _named(run, "aws:kms/key:Key", "dr-audit-key").outputs["arn"]
    logging = _audit_child(run, "aws:s3/bucketLogging:BucketLogging")
    assert logging.inputs["targetBucket"] == _named(run, BUCKET, "dr-access-logs").outputs["bucket"]


def test_log_bucket_admits_only_this_trail(dr):
    policy = json.loads(_audit_child(dr, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    trail_name = dr.one(TRAIL).inputs["name"]
    write = by_sid["CloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"} and write["Action"] == "s3:PutObject"
    assert write["Condition"]["StringEquals"]["aws:SourceArn"].endswith(f":trail/{trail_name}")
    assert write["Resource"].endswith(f"/{LOG_PREFIX}123456789012/*")
    assert by_sid["DenyInsecureTransport"]["Effect"] == "Deny"
    # Nobody is allowed to delete: the only Allow statements are deliveries (CloudTrail, Backup reports).
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert {a for s in allows for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
        "s3:GetBucketAcl",
        "s3:PutObject",
    }
