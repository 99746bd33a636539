"""AWS Backup per site: a vault (locked in compliance mode where the tier asks for it);
on the primary, the GFS plan copying every rule into the DR site's vault and the weekly
restore test of the database; on the DR site, a plan for the promoted database (selecting
nothing before activation) and the weekly restore test of the locked copies."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

from components.aws.backup_plan import BackupVault, BackupVaultArgs, GfsBackupPlan, RestoreTest
from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.network import SiteNetwork
from infra.aws.data import DataTier, warn_if_peer_disagrees
from infra.aws.files import Files
from infra.site import Site


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
    if site.is_dr:
        site.export("drBackupVaultArn", vault.arn)
        site.export("drBackupKmsKeyArn", key.arn)
        site.export("backupVault", {"locked": cfg.locked, "role": "copy target"})
        return Backups(key, vault, _dr_plan(site, vault, key, network, data))

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
            "locked": cfg.locked,
        },
    )
    return Backups(key, vault, plan)


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
    site: Site, vault: BackupVault, key: CustomerKey, network: SiteNetwork, data: DataTier
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
        kms_key_arns=[key.arn, data.keys.database.arn, peer["backupKmsKeyArn"]],
        only_resources=[account.apply(lambda a: f"arn:aws:rds:{site.region}:{a}:db:*")],
        stack=site.stack,
        restore_test=RestoreTest(
            resource_arns=["*"],
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
            "locked": site.cfg.locked,
            "selects": "the promoted database (after activation)",
        },
    )
    return plan
