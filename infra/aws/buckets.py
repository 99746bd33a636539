"""A site's replicated bucket with its own customer key: the primary replicates into the DR
site's twin, read from the peer's outputs (the DR site creates the destination)."""

from __future__ import annotations

from typing import Any

from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.replicated_bucket import AccessLogBucket, ReplicaTarget, ReplicatedBucket, ReplicatedBucketArgs
from infra.site import Site


def site_bucket(
    site: Site,
    base: str,
    access_logs: AccessLogBucket,
    *,
    what: str,
    peer_outputs: tuple[str, str],
    **options: Any,
) -> tuple[ReplicatedBucket, CustomerKey]:
    """`<role>-<base>` and its key `<role>-<base>-key`. peer_outputs: the DR site's exports of
    the destination bucket ARN and key ARN; until they exist the primary's bucket does not
    replicate yet (a valid partial topology)."""
    cfg = site.cfg
    key = CustomerKey(
        site.name(f"{base}-key"),
        CustomerKeyArgs(
            region=site.region, description=f"Post Ou Cancer {what} ({cfg.role.value} site, {site.region})"
        ),
    )
    target = None
    if site.is_primary:
        peer = site.peer.require_all(*peer_outputs)
        if peer is not None:
            bucket_arn, key_arn = (peer[k] for k in peer_outputs)
            target = ReplicaTarget(bucket_arn=bucket_arn, kms_key_arn=key_arn, region=cfg.peer_region)
    bucket = ReplicatedBucket(
        site.name(base),
        ReplicatedBucketArgs(
            region=site.region,
            retention=cfg.retention_policy,
            kms_key=key,
            log_bucket=access_logs,
            replicate_to=target,
            **options,
        ),
    )
    return bucket, key
