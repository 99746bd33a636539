"""User uploads: a replicated bucket per site; prod replicates into the DR site's bucket."""

from __future__ import annotations

from dataclasses import dataclass

from components.aws.kms import CustomerKey
from components.aws.replicated_bucket import AccessLogBucket, ReplicatedBucket
from infra.aws.buckets import site_bucket
from infra.site import Site


@dataclass(frozen=True)
class Files:
    bucket: ReplicatedBucket
    key: CustomerKey
    # The site's S3 server-access-log target (every site bucket logs into it).
    access_logs: AccessLogBucket


def build(site: Site) -> Files:
    cfg = site.cfg
    logs = AccessLogBucket(site.name("access-logs"), site.region, cfg.retention_policy)
    files, key = site_bucket(
        site, "files", logs, what="user files", peer_outputs=("filesBucketArn", "filesKmsKeyArn")
    )
    site.export("filesBucketArn", files.arn)
    site.export("filesBucketName", files.bucket.bucket)
    site.export("filesKmsKeyArn", key.arn)
    site.export("accessLogBucketName", logs.bucket.bucket)
    site.export(
        "filesReplication",
        {"enabled": files.replication is not None, "to": cfg.peer_region}
        if site.is_primary
        else {"enabled": False, "role": "destination"},
    )
    return Files(files, key, logs)
