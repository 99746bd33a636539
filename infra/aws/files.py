"""User uploads: a replicated bucket per site; prod replicates into the DR site's bucket."""

from __future__ import annotations

from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.replicated_bucket import AccessLogBucket, ReplicaTarget, ReplicatedBucket, ReplicatedBucketArgs
from infra.site import Site


def build(site: Site) -> None:
    cfg = site.cfg
    retention = cfg.retention_policy
    key = CustomerKey(
        site.name("files-key"),
        CustomerKeyArgs(
            region=site.region, description=(f"Post Ou Cancer user files ({cfg.role.value} site, {site.region})")
        ),
    )
    logs = AccessLogBucket(site.name("access-logs"), site.region, retention)
    site.parts["kms.files"] = key
    site.parts["access_logs"] = logs

    target = None
    if site.is_primary:
        peer = site.peer.require_all("filesBucketArn", "filesKmsKeyArn")
        if peer is not None:
            target = ReplicaTarget(
                bucket_arn=peer["filesBucketArn"], kms_key_arn=peer["filesKmsKeyArn"], region=cfg.peer_region
            )
    files = ReplicatedBucket(
        site.name("files"),
        ReplicatedBucketArgs(
            region=site.region, retention=retention, kms_key=key, log_bucket=logs, replicate_to=target
        ),
    )
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
