"""A site's replicated bucket with its own customer key: the primary replicates into the DR
site's twin, read from the peer's outputs (the DR site creates the destination)."""

from __future__ import annotations

from typing import Any

from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.replicated_bucket import AccessLogBucket, ReplicaTarget, ReplicatedBucket, ReplicatedBucketArgs
from infra.site import Site
from infra.vault.names import REPLICATED_BASE, replication_role_name
from infra.vault.wiring import vault_targets


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
    # The backup dumps also replicate into the backup-only account (infra/vault), from the primary:
    # the DR site's copies are replicas (S3 does not replicate replicas on).
    also: list[ReplicaTarget] = []
    role_name = None
    vault = vault_targets(site) if site.is_primary and base == REPLICATED_BASE else None
    if vault is not None:
        also.append(
            ReplicaTarget(
                bucket_arn=vault.bucket_arn,
                kms_key_arn=vault.bucket_key_arn,
                region=vault.region,
                account_id=vault.account,
                rule_id="to-vault-account",
            )
        )
        role_name = replication_role_name(site.stack, base)  # the name the vault's policies admit
    bucket = ReplicatedBucket(
        site.name(base),
        ReplicatedBucketArgs(
            region=site.region,
            retention=cfg.retention_policy,
            kms_key=key,
            log_bucket=access_logs,
            replicate_to=target,
            also_replicate_to=also,
            replication_role_name=role_name,
            **options,
        ),
    )
    return bucket, key
