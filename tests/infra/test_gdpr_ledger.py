"""The GDPR erasure ledger's bucket (docs/gdpr.md; data plane lambdas/core/gdpr.py), under mocks."""

import json

import pytest

from drplan.retention import RETENTION, Tier
from infra.mockrun import run_stack
from lambdas.core.gdpr import DEFAULT_LEDGER_PREFIX

BUCKET = "aws:s3/bucket:Bucket"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SITES = [("prod", "primary", "eu-west-3"), ("dr", "dr", "eu-central-1")]


def _child(run, site, type_, base="gdpr-ledger"):
    parent = run.one("postoucancer:aws:ReplicatedBucket", f"{site}-{base}")
    found = [r for r in run.children_of(parent) if r.type == type_]
    assert len(found) == 1, found
    return found[0]


def _ledger(run, site):
    return run.one(BUCKET, f"{site}-gdpr-ledger")


@pytest.mark.parametrize("stack,site,region", SITES)
def test_ledger_is_a_locked_versioned_kms_encrypted_private_bucket_of_its_region(request, stack, site, region):
    run = request.getfixturevalue(stack)
    bucket = _ledger(run, site)
    assert bucket.region == region and bucket.protect
    assert bucket.inputs["objectLockEnabled"] is True
    lock = _child(run, site, LOCK)
    assert lock.inputs["rule"]["defaultRetention"]["mode"] == "COMPLIANCE"
    versioning = _child(run, site, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    key = run.one("aws:kms/key:Key", f"{site}-gdpr-ledger-key")
    assert key.region == region and key.protect and key.inputs["enableKeyRotation"] is True
    sse = _child(
        run, site, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert sse == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}
    pab = _child(run, site, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    # Exported for the GDPR functions (GDPR_LEDGER_BUCKET / GDPR_LEDGER_KMS_KEY_ID).
    assert run.outputs["gdprLedgerBucketName"] == bucket.outputs["bucket"]
    assert run.outputs["gdprLedgerKmsKeyArn"] == key.outputs["arn"]


@pytest.mark.parametrize("stack,site,region", SITES)
def test_ledger_is_not_the_backup_bucket_nor_under_its_key(request, stack, site, region):
    run = request.getfixturevalue(stack)
    assert run.outputs["gdprLedgerBucketName"] != run.outputs["backupBucketName"]
    assert run.outputs["gdprLedgerKmsKeyArn"] != run.outputs["backupBucketKmsKeyArn"]
    assert _ledger(run, site).urn != run.one(BUCKET, f"{site}-pg-backups").urn


@pytest.mark.parametrize("stack,site,tier", [("prod", "primary", Tier.PROD), ("staging", "primary", Tier.STAGING)])
def test_lock_period_covers_the_longest_backup_retention(request, stack, site, tier):
    run = request.getfixturevalue(stack)
    retention = RETENTION[tier]
    longest = max(retention.for_class(c).days for c in retention.classes)
    assert longest > retention.shortest.days  # the default must not be the backup bucket's
    assert _child(run, site, LOCK).inputs["rule"]["defaultRetention"]["days"] >= longest


@pytest.mark.parametrize("stack,site,tier", [("prod", "primary", Tier.PROD), ("staging", "primary", Tier.STAGING)])
def test_no_entry_expires_before_every_backup_that_could_resurrect_its_user(request, stack, site, tier):
    run = request.getfixturevalue(stack)
    retention = RETENTION[tier]
    longest = max(retention.for_class(c).days for c in retention.classes)
    rules = [r for r in _child(run, site, LIFECYCLE).inputs["rules"] if r["status"] == "Enabled"]
    expiring = [r for r in rules if "days" in r.get("expiration", {})]
    assert expiring, "entries expire eventually (they hold user ids)"
    for rule in expiring:
        # Only the ledger prefix, and only after a backup's bytes are gone (generation + noncurrent tail).
        assert rule["filter"] == {"prefix": DEFAULT_LEDGER_PREFIX + "/"}
        assert rule["expiration"]["days"] >= longest + retention.deleted_files.days
    # Current entries never become noncurrent early: nobody may delete them (bucket policy).
    policy = json.loads(_child(run, site, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    deny = next(s for s in policy["Statement"] if s.get("Sid") == "DenyDeletingErasureEntries")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deny["Action"])
    assert deny["Resource"] == f"{_ledger(run, site).outputs['arn']}/{DEFAULT_LEDGER_PREFIX}/*"


def test_staging_uses_the_staging_tier_and_no_compliance_lock(staging, staging_dr):
    lock = _child(staging, "primary", LOCK).inputs["rule"]["defaultRetention"]
    assert lock["mode"] == "GOVERNANCE"
    assert lock["days"] == RETENTION[Tier.STAGING].longest.days < RETENTION[Tier.PROD].longest.days
    assert _child(staging_dr, "dr", LOCK).inputs["rule"]["defaultRetention"]["mode"] == "GOVERNANCE"


def test_prod_replicates_the_ledger_into_the_dr_ledger_with_the_dr_key(prod, dr):
    rule = _child(prod, "primary", REPLICATION).inputs["rules"][0]
    dest = rule["destination"]
    dr_key = dr.one("aws:kms/key:Key", "dr-gdpr-ledger-key")
    assert dr_key.region == "eu-central-1"
    assert dest["bucket"] == _ledger(dr, "dr").outputs["arn"] == dr.outputs["gdprLedgerBucketArn"]
    assert dest["encryptionConfiguration"]["replicaKmsKeyId"] == dr_key.outputs["arn"]
    assert dest["bucket"] != dr.outputs["backupBucketArn"]
    # Locked entries replicate with their retention: the role may read it.
    role_policy = json.loads(
        prod.one("aws:iam/rolePolicy:RolePolicy", "primary-gdpr-ledger-replication").inputs["policy"]
    )
    reads = {a for s in role_policy["Statement"] for a in s["Action"] if isinstance(s["Action"], list)}
    assert "s3:GetObjectRetention" in reads
    assert not [r for r in dr.of_type(REPLICATION) if "gdpr-ledger" in r.name], "dr is only the destination"


def test_first_prod_deployment_without_dr_outputs_is_a_valid_partial_topology():
    run = run_stack("prod")
    assert _ledger(run, "primary") is not None
    assert not [r for r in run.of_type(REPLICATION) if "gdpr-ledger" in r.name]
    assert "gdprLedgerBucketName" in run.outputs
