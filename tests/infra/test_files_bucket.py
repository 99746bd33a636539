"""The replicated user-files bucket (issue 2, point 4), on the real stacks under mocks."""

import json

from drplan.retention import MULTIPART_ABORT, RETENTION, Tier
from drplan.thresholds import REPLICATION_TIME_CONTROL

BUCKET = "aws:s3/bucket:Bucket"


def _child(run, parent_name, type_):
    parent = run.one("postoucancer:aws:ReplicatedBucket", parent_name)
    found = [r for r in run.children_of(parent) if r.type == type_]
    assert len(found) == 1, found
    return found[0]


def test_source_bucket_is_versioned_encrypted_private_and_protected(prod):
    bucket = prod.one(BUCKET, "primary-files")
    assert bucket.protect and bucket.region == "eu-west-3"
    versioning = _child(prod, "primary-files", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    sse = _child(
        prod, "primary-files", "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    rule = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    key = prod.one("aws:kms/key:Key", "primary-files-key")
    assert rule["sseAlgorithm"] == "aws:kms" and rule["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.protect and key.inputs["enableKeyRotation"] is True
    assert json.loads(key.inputs["policy"])["Statement"], "explicit key policy"
    pab = _child(prod, "primary-files", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        pab.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    own = _child(prod, "primary-files", "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert own.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_policy_denies_plain_http_and_foreign_encryption(prod):
    policy = json.loads(_child(prod, "primary-files", "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert by_sid["DenyInsecureTransport"]["Effect"] == "Deny"
    assert by_sid["DenyOtherEncryption"]["Action"] == "s3:PutObject"


def test_lifecycle_numbers_come_from_the_model(prod):
    lc = _child(prod, "primary-files", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rule = lc.inputs["rules"][0]
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == RETENTION[Tier.PROD].deleted_files.days == 90
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == MULTIPART_ABORT.days == 7


def test_access_logging_goes_to_the_site_log_bucket(prod):
    logging = _child(prod, "primary-files", "aws:s3/bucketLogging:BucketLogging")
    log_bucket = prod.one(BUCKET, "primary-access-logs")
    assert logging.inputs["targetBucket"] == log_bucket.outputs["bucket"]


def test_prod_replicates_into_the_dr_bucket_with_rtc(prod, dr):
    repl = _child(prod, "primary-files", "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    rule = repl.inputs["rules"][0]
    dest = rule["destination"]
    dr_bucket = dr.one(BUCKET, "dr-files")
    dr_key = dr.one("aws:kms/key:Key", "dr-files-key")
    assert dr_bucket.region == "eu-central-1" and dr_key.region == "eu-central-1"
    assert dest["bucket"] == dr_bucket.outputs["arn"]
    assert dest["encryptionConfiguration"]["replicaKmsKeyId"] == dr_key.outputs["arn"]
    assert dest["replicationTime"] == {"status": "Enabled", "time": {"minutes": REPLICATION_TIME_CONTROL.seconds // 60}}
    assert dest["metrics"]["status"] == "Enabled"
    assert rule["deleteMarkerReplication"]["status"] == "Enabled"
    versioning = _child(prod, "primary-files", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in repl.dependencies, "replication must wait for versioning"


def test_replication_role_is_least_privilege(prod, dr):
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "primary-files-replication").inputs["policy"])
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.endswith("*") and a != "kms:ReEncrypt*" for a in actions)
    assert all(s["Resource"] != "*" for s in policy["Statement"])
    writes = [s for s in policy["Statement"] if "s3:ReplicateObject" in s["Action"]]
    assert writes[0]["Resource"] == dr.one(BUCKET, "dr-files").outputs["arn"] + "/*"


def test_dr_bucket_is_a_destination_only(dr):
    assert not dr.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert dr.one(BUCKET, "dr-files").protect


def test_first_bootstrap_of_prod_is_partial_and_says_what_next(run_stack=None):
    from infra.mockrun import run_stack

    lonely = run_stack("prod", peer_outputs=None)
    # Nothing replicates to the DR region yet; only the dumps into the vault account (deployed first).
    configs = lonely.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert [[r["id"] for r in c.inputs["rules"]] for c in configs] == [["to-vault-account"]]
    assert lonely.one(BUCKET, "primary-files")
    assert "pulumi up -s dr" in lonely.outputs["nextStep"]
    assert any("pulumi up -s dr" in msg for level, msg in lonely.logs if level == "warning")
