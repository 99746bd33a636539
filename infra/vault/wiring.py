"""What a site reads of the vault stack, checked: the account and region of each store and
the ARNs its replication and copy actions name (StackReference outputs of the vault stack).

The vault stack deploys first; until it has outputs a site builds without the vault copies and
exports `nextStep` (infra/program.py), like a site whose peer has none yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from drplan.names import PROJECT
from infra.config import ConfigError
from infra.site import Site

# The vault stack's exports a site needs (infra/vault/program.py writes them).
OUTPUTS = (
    "vaultAccountId",
    "sitesAccountId",
    "vaultRegion",
    "vaultBucketArn",
    "vaultBucketName",
    "vaultBucketKmsKeyArn",
    "vaultBackupVaultArns",
)


@dataclass(frozen=True)
class VaultTargets:
    account: str  # the backup-only account
    region: str  # where the dump bucket lives
    bucket_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    bucket_key_arn: pulumi.Output[str]
    # The locked vault in this site's region: AWS Backup copies RDS snapshots either across
    # accounts or across regions, not both at once (AWS Backup developer guide, "Copy a backup").
    backup_vault_arn: pulumi.Output[str]


def vault_targets(site: Site, caller_account: str | None = None) -> VaultTargets | None:
    """The vault stack's stores for this site, or None while the vault stack has no outputs
    (or the site has no vaultStack). Raises ConfigError when the accounts are wrong."""
    vault = site.vault
    if vault is None:
        return None
    values = {k: vault.value(k) for k in OUTPUTS}
    if any(v is None for v in values.values()):
        return None
    if caller_account is None:
        import pulumi_aws as aws

        caller_account = aws.get_caller_identity().account_id
    vault_stack = vault.name.rsplit("/", 1)[-1]
    if caller_account == values["vaultAccountId"]:
        raise ConfigError(
            f"config key '{PROJECT}:vaultStack' = \"{vault.name}\" is a stack in this site's own account "
            f"{caller_account}: the copies would stay inside its blast radius; fix: deploy the vault stack in the "
            f"backup-only account (pulumi config set --path accounts.vault <its id> -s {vault_stack}; pulumi up -s "
            f"{vault_stack})"
        )
    if caller_account != values["sitesAccountId"]:
        raise ConfigError(
            f"config key '{PROJECT}:accounts.sites' of stack {vault_stack} = \"{values['sitesAccountId']}\" is not "
            f"this site's account {caller_account}: the vault admits copies from that account only; fix: pulumi "
            f"config set --path accounts.sites {caller_account} -s {vault_stack}; pulumi up -s {vault_stack}"
        )
    if site.region not in values["vaultBackupVaultArns"]:
        raise ConfigError(
            f"config key '{PROJECT}:regions' of stack {vault_stack} has no vault in this site's region "
            f"{site.region} (found: {', '.join(sorted(values['vaultBackupVaultArns']))}); fix: pulumi config set "
            f"--path regions.{site.cfg.role.value} {site.region} -s {vault_stack}; pulumi up -s {vault_stack}"
        )
    lock = vault.value("vaultLock") or {}
    longest = site.cfg.retention_policy.longest.days
    if isinstance(lock.get("maxRetentionDays"), int | float) and lock["maxRetentionDays"] < longest:
        raise ConfigError(
            f"config key '{PROJECT}:retention' keeps recovery points {longest} d, longer than the vault stack "
            f"{vault_stack}'s lock admits ({lock['maxRetentionDays']:g} d): its copies would be refused; fix: set the "
            f"same retention overrides on stack {vault_stack} (pulumi config set --path retention.<generation> "
            f"<period> -s {vault_stack}; pulumi up -s {vault_stack})"
        )
    region = site.region
    return VaultTargets(
        account=values["vaultAccountId"],
        region=values["vaultRegion"],
        bucket_arn=vault.get("vaultBucketArn"),
        bucket_name=vault.get("vaultBucketName"),
        bucket_key_arn=vault.get("vaultBucketKmsKeyArn"),
        backup_vault_arn=vault.get("vaultBackupVaultArns").apply(lambda arns: arns[region]),
    )
