"""The vault stack's program: the backup-only account's stores, built from its config alone.

    a locked vault per site region    every GFS recovery point of prod and dr is copied into
                                      the one in its own region (AWS Backup copy actions)
    a locked bucket in the DR region  prod's backup bucket replicates its dumps into it

It needs nothing of the sites but their account id and stack names, so it is deployed first
(bootstrap: vault, dr, prod, dr); the sites read its outputs through a StackReference.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.replicated_bucket import AccessLogBucket, ReplicatedBucket, ReplicatedBucketArgs
from components.aws.vault_account import (
    AccountVault,
    AccountVaultArgs,
    bucket_key_statements,
    bucket_statements,
)
from drplan import layout
from infra.vault import config as vault_config
from infra.vault.config import VaultConfig
from infra.vault.names import replication_role_arn


@dataclass(frozen=True)
class VaultAccount:
    vaults: dict[str, AccountVault]  # site region -> its vault
    bucket: ReplicatedBucket
    bucket_key: CustomerKey
    access_logs: AccessLogBucket


def build(cfg: VaultConfig, stack: str) -> VaultAccount:
    retention = cfg.retention_policy
    a = cfg.accounts
    vaults = {
        region: AccountVault(
            f"vault-{region}",
            AccountVaultArgs(
                region=region,
                retention=retention,
                vault_account=a.vault,
                site_account=a.sites,
                recovery_accounts=list(a.recovery),
                physical_name=f"{stack}-{region}",
            ),
        )
        for region in cfg.vault_regions
    }
    roles = [replication_role_arn(a.sites, s) for s in cfg.site_stacks]
    logs = AccessLogBucket("vault-access-logs", cfg.region, retention)
    key = CustomerKey(
        "vault-pg-backups-key",
        CustomerKeyArgs(
            region=cfg.region,
            description=f"Post Ou Cancer vault-account copies of the PostgreSQL dumps ({cfg.region})",
            extra_statements=bucket_key_statements(cfg.region, a.sites, roles),
        ),
    )
    bucket = ReplicatedBucket(
        "vault-pg-backups",
        ReplicatedBucketArgs(
            region=cfg.region,
            retention=retention,
            kms_key=key,
            log_bucket=logs,
            purpose="database-backups",
            # The replicas keep the retention the function gave each object (its generation); this
            # default covers anything written without one, as in the sites' buckets.
            object_lock=True,
            lock_mode="COMPLIANCE",
            lock_period=retention.shortest,
            expire_by_tag=layout.GFS_TAG_KEY,  # replication copies the tags: the same GFS expiry
            extra_policy=bucket_statements(a.vault, a.sites, roles),
        ),
    )
    return VaultAccount(vaults, bucket, key, logs)


def main() -> None:
    import pulumi_aws as aws

    cfg = vault_config.load()  # raises ConfigError before anything is registered
    vault_config.check_account(cfg, aws.get_caller_identity().account_id)
    stack = pulumi.get_stack()
    built = build(cfg, stack)
    retention = cfg.retention_policy
    pulumi.export(
        "site",
        {
            "role": cfg.role.value,
            "tier": cfg.tier.value,
            "cloud": cfg.cloud.value,
            "region": cfg.region,
            "account": cfg.accounts.vault,
            "retention": {c.value: str(retention.for_class(c)) for c in retention.classes},
        },
    )
    pulumi.export("vaultAccountId", cfg.accounts.vault)
    pulumi.export("sitesAccountId", cfg.accounts.sites)
    pulumi.export("vaultRegion", cfg.region)
    pulumi.export("vaultBackupVaultArns", {r: v.arn for r, v in built.vaults.items()})
    pulumi.export("vaultBackupKmsKeyArns", {r: v.key.arn for r, v in built.vaults.items()})
    pulumi.export("vaultBucketArn", built.bucket.arn)
    pulumi.export("vaultBucketName", built.bucket.bucket.bucket)
    pulumi.export("vaultBucketKmsKeyArn", built.bucket_key.arn)
    pulumi.export("accessLogBucketName", built.access_logs.bucket.bucket)
    pulumi.export(
        "vaultLock",
        {
            "mode": "compliance",
            "minRetentionDays": retention.shortest.days,
            "maxRetentionDays": retention.longest.days,
            "copiesFrom": cfg.accounts.sites,
            "recoveryAccounts": list(cfg.accounts.recovery),
        },
    )
