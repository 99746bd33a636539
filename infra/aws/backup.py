"""AWS Backup per site: a vault (locked in compliance mode where the tier asks for it);
on the primary, the GFS plan copying every rule into the DR site's vault and the weekly
restore test of the database; on the DR site, a plan for the promoted database (selecting
nothing before activation) and the weekly restore test of the locked copies."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.backup_plan import BackupVault, BackupVaultArgs, GfsBackupPlan, RestoreTest
from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.network import SiteNetwork
from infra.aws.data import DataTier, warn_if_peer_disagrees
from infra.aws.files import Files
from infra.site import Site
from infra.vault.wiring import VaultTargets, vault_targets


@dataclass(frozen=True)
class Backups:
    key: CustomerKey
    vault: BackupVault
    # None on the DR site's first bootstrap pass (nothing to protect there yet).
    plan: GfsBackupPlan | None


def build(site: Site, network: SiteNetwork, data: DataTier, files: Files) -> Backups:
    cfg = site.cfg
    key = CustomerKey(
        site.name("backup-key"),
        CustomerKeyArgs(
            region=site.region,
            description=f"Post Ou Cancer backup vault ({cfg.role.value} site, {site.region})",
        ),
    )
    vault = BackupVault(
        site.name("vault"),
        BackupVaultArgs(
            region=site.region,
            kms_key=key,
            retention=cfg.retention_policy,
            locked=cfg.locked,
            physical_name=f"{site.stack}-vault",
        ),
    )
    if cfg.account_settings:
        _region_settings(site)
    vault_account = vault_targets(site)
    if site.is_dr:
        site.export("drBackupVaultArn", vault.arn)
        site.export("drBackupKmsKeyArn", key.arn)
        site.export("backupVault", {"locked": cfg.locked, "role": "copy target"})
        return Backups(key, vault, _dr_plan(site, vault, key, network, data, vault_account))

    peer = site.peer.require_all("drBackupVaultArn", "drBackupKmsKeyArn")
    warn_if_peer_disagrees(site, "backupVault", "locked", cfg.locked, "vaultLock")
    db = data.database
    key_arns = [key.arn, data.keys.database.arn, files.key.arn]
    if peer is not None:
        key_arns.append(peer["drBackupKmsKeyArn"])
    plan = GfsBackupPlan.for_tier(
        site.name("backup"),
        cfg.tier,
        overrides=cfg.retention.periods(),
        region=site.region,
        vault=vault,
        copy_to_vault_arn=peer["drBackupVaultArn"] if peer is not None else None,
        vault_account_copy_arn=_share_with_vault_account(site, vault_account, [key, data.keys.database]),
        kms_key_arns=key_arns,
        stack=site.stack,
        restore_test=RestoreTest(
            resource_arns=[db.arn],
            subnet_group_name=db.subnet_group.name,
            security_group_ids=[network.database_sg.id],
        ),
        physical_name=f"{site.stack}-backup",
    )
    site.export("backupVaultArn", vault.arn)
    site.export("backupKmsKeyArn", key.arn)
    site.export(
        "backupPlan",
        {
            "id": plan.plan.id,
            "rules": [s.name for s in plan.specs],
            "copiesTo": peer["drBackupVaultArn"] if peer is not None else None,
            "copiesToVaultAccount": vault_account.backup_vault_arn if vault_account is not None else None,
            "locked": cfg.locked,
        },
    )
    return Backups(key, vault, plan)


# A cross-account copy of an encrypted recovery point needs its key shared with the destination
# account (AWS Backup developer guide, "Creating backup copies across AWS accounts"; for RDS the
# snapshot is shared and copied there: Amazon RDS user guide, "Allowing access to an AWS KMS key").
# Granted, not written into the key policies: the database key's policy is the data tier's.
SHARED_KEY_OPERATIONS = (
    "Decrypt",
    "DescribeKey",
    "Encrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "CreateGrant",
)


def _share_with_vault_account(site: Site, vault: VaultTargets | None, keys: list[CustomerKey]):
    """The vault account's vault in this region, once the keys of what is copied are shared with it."""
    if vault is None:
        return None
    grants = [
        aws.kms.Grant(
            site.name(f"{base}-to-vault-account"),
            region=site.region,
            key_id=k.key.key_id,
            grantee_principal=f"arn:aws:iam::{vault.account}:root",
            operations=list(SHARED_KEY_OPERATIONS),
        )
        for base, k in zip(("backup-key", "database-key"), keys, strict=True)
    ]
    # The copy actions wait for the grants (a copy job before them would fail).
    return pulumi.Output.all(vault.backup_vault_arn, *[g.id for g in grants]).apply(lambda a: a[0])


# What the plans back up: RDS (the database) and S3 (the file buckets). AWS Backup only backs up
# resource types opted in for the region, an account-level setting ("Opt-in services").
OPTED_IN = {"RDS": True, "S3": True}


def _region_settings(site: Site) -> aws.backup.RegionSettings:
    """The region's opt-in, managed explicitly by the one stack that owns it (ownsAccountSettings)."""
    return aws.backup.RegionSettings(
        site.name("backup-region-settings"),
        region=site.region,
        resource_type_opt_in_preference=OPTED_IN,
    )


def _dr_plan(
    site: Site,
    vault: BackupVault,
    key: CustomerKey,
    network: SiteNetwork,
    data: DataTier,
    vault_account: VaultTargets | None = None,
) -> GfsBackupPlan | None:
    """The DR site's own plan, declared before it is needed so that activation creates nothing.

    It selects RDS instances of this region tagged for backup: none while the replica stands
    by; the promoted replica (activation adds the tag) from then on, into the locked DR vault
    with the same GFS rules, copied back to the primary region's vault. The
    weekly restore test restores the latest RDS recovery point of the DR vault — the locked
    copies of prod's backups — into this site's network: the ransomware and region-loss
    sources are tested, not only the primary's own.
    """
    # Copies go back to the primary region's (equally locked) vault: while that region is
    # gone the copy jobs fail and alarm, the backups themselves land in this vault.
    peer = site.peer.require_all("backupVaultArn", "backupKmsKeyArn")
    if peer is None:
        return None  # first bootstrap pass: nothing to protect here yet either
    standby = data.database
    account = aws.get_caller_identity_output().account_id
    plan = GfsBackupPlan.for_tier(
        site.name("backup"),
        site.cfg.tier,
        overrides=site.cfg.retention.periods(),
        region=site.region,
        vault=vault,
        copy_to_vault_arn=peer["backupVaultArn"],
        vault_account_copy_arn=_share_with_vault_account(site, vault_account, [key, data.keys.database]),
        kms_key_arns=[key.arn, data.keys.database.arn, peer["backupKmsKeyArn"]],
        only_resources=[account.apply(lambda a: f"arn:aws:rds:{site.region}:{a}:db:*")],
        stack=site.stack,
        restore_test=RestoreTest(
            # The copies in this vault are of prod's database (tagged with prod's stack, so a
            # condition on this stack's tag would select none of them); after activation, the
            # promoted instance's own recovery points as well.
            resource_arns=[a for a in (site.peer.get("databaseInstanceArn"),
                                       data.instance.arn if data.instance is not None else None) if a is not None]
            or ["*"],
            subnet_group_name=standby.subnet_group.name,
            security_group_ids=[network.database_sg.id],
        ),
        physical_name=f"{site.stack}-backup",
    )
    site.export(
        "backupPlan",
        {
            "id": plan.plan.id,
            "rules": [s.name for s in plan.specs],
            "copiesTo": peer["backupVaultArn"],
            "copiesToVaultAccount": vault_account.backup_vault_arn if vault_account is not None else None,
            "locked": site.cfg.locked,
            "selects": "the promoted database (after activation)",
        },
    )
    return plan
