"""User uploads: a replicated bucket per site; prod replicates into the DR site's bucket."""

from __future__ import annotations

from components.aws.replicated_bucket import AccessLogBucket
from infra.aws.buckets import site_bucket
from infra.site import Site


def build(site: Site) -> None:
    cfg = site.cfg
    logs = AccessLogBucket(site.name("access-logs"), site.region, cfg.retention_policy)
    site.parts["access_logs"] = logs
    files, key = site_bucket(site, "files", what="user files", peer_outputs=("filesBucketArn", "filesKmsKeyArn"))
    site.parts["kms.files"] = key
    site.parts["files"] = files
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
