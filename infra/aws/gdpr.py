"""The GDPR erasure ledger's store (docs/gdpr.md): a bucket per site, outside the backups.

The data plane (lambdas/core/gdpr.py) writes one object per erased user under
`gdpr/erasures/<database>/<user_id>.json` with a conditional put, SSE-KMS, and a COMPLIANCE
lock until the longest backup retention (+1 day) when the bucket has Object Lock. This module
gives it that bucket:

- its own bucket and customer key per site, never the backup bucket (the backup bucket's
  lifecycle expires objects by generation; the request models refuse ledger = backup bucket);
- Object Lock: COMPLIANCE where the tier is locked, GOVERNANCE otherwise, default retention the
  tier's longest generation (an entry put without its own retention is still kept that long);
- no expiry of an entry before every backup that could resurrect its user is gone: the
  longest generation, plus the backup bucket's noncurrent-version window (`deleted_files`);
- the bucket policy refuses deleting entries (a delete marker would hide an entry from
  `reapply` even while its version is locked); S3 Lifecycle expiry is not a request under the
  bucket policy, so entries still expire when their time comes;
- the prod site replicates it into the DR site's ledger (a restore there needs the ledger too):
  the dr stack creates the destination, the prod stack the replication (bootstrap dr, prod, dr).

The GDPR functions themselves (roles, Lambda handlers, export bucket) are not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.aws.kms import CustomerKey
from components.aws.replicated_bucket import AccessLogBucket, ReplicatedBucket
from drplan.periods import Period, days
from drplan.retention import Retention
from infra.aws.buckets import site_bucket
from infra.site import Site

# lambdas.core.gdpr.DEFAULT_LEDGER_PREFIX (not imported: that module pulls in psycopg).
LEDGER_PREFIX = "gdpr/erasures/"


def entry_expiry(retention: Retention) -> Period:
    """When a ledger entry may expire: a backup taken just before the erasure is kept `longest`,
    and its bytes survive as a noncurrent version `deleted_files` more."""
    return days(retention.longest.days + retention.deleted_files.days)


def _deny_deleting_entries(bucket_arn: str, _account: str) -> list[dict]:
    return [
        {
            "Sid": "DenyDeletingErasureEntries",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": f"{bucket_arn}/{LEDGER_PREFIX}*",
        }
    ]


@dataclass(frozen=True)
class Ledger:
    bucket: ReplicatedBucket
    key: CustomerKey


def build(site: Site, access_logs: AccessLogBucket) -> Ledger:
    cfg = site.cfg
    retention = cfg.retention_policy
    ledger, key = site_bucket(
        site,
        "gdpr-ledger",
        access_logs,
        what="GDPR erasure ledger",
        peer_outputs=("gdprLedgerBucketArn", "gdprLedgerKmsKeyArn"),
        purpose="gdpr-erasure-ledger",
        object_lock=True,
        lock_mode="COMPLIANCE" if cfg.locked else "GOVERNANCE",
        lock_period=retention.longest,
        expire_prefixes={LEDGER_PREFIX: entry_expiry(retention)},
        extra_policy=_deny_deleting_entries,
    )
    site.export("gdprLedgerBucketArn", ledger.arn)
    site.export("gdprLedgerBucketName", ledger.bucket.bucket)
    site.export("gdprLedgerKmsKeyArn", key.arn)
    return Ledger(ledger, key)
