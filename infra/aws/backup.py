"""AWS Backup per site: a vault (locked in compliance mode where the tier asks for it);
on the primary, the GFS plan copying every rule into the DR site's vault and the weekly
restore test of the database."""

from __future__ import annotations

from components.aws.backup_plan import BackupVault, BackupVaultArgs, GfsBackupPlan, GfsBackupPlanArgs, RestoreTest
from components.aws.kms import CustomerKey, CustomerKeyArgs
from infra.aws.data import warn_if_peer_disagrees
from infra.site import Site


def build(site: Site) -> None:
    cfg = site.cfg
    key = CustomerKey(
        site.name("backup-key"),
        CustomerKeyArgs(
            region=site.region,
            description=f"Post Ou Cancer backup vault ({cfg.role.value} site, {site.region})",
        ),
    )
    site.parts["kms.backup"] = key
    vault = BackupVault(
        site.name("vault"),
        BackupVaultArgs(
            region=site.region,
            kms_key=key,
            retention=cfg.retention_policy,
            locked=cfg.locked,
            tags={"postoucancer:stack": site.stack},
        ),
    )
    site.parts["backup_vault"] = vault
    if site.is_dr:
        site.export("drBackupVaultArn", vault.arn)
        site.export("drBackupKmsKeyArn", key.arn)
        site.export("backupVault", {"locked": cfg.locked, "role": "copy target"})
        return

    peer = site.peer.require_all("drBackupVaultArn", "drBackupKmsKeyArn")
    warn_if_peer_disagrees(site, "backupVault", "locked", cfg.locked, "vaultLock")
    db = site.parts["database"]
    network = site.parts["network"]
    key_arns = [key.arn, site.parts["kms.database"].arn, site.parts["kms.files"].arn]
    if peer is not None:
        key_arns.append(peer["drBackupKmsKeyArn"])
    plan = GfsBackupPlan(
        site.name("backup"),
        GfsBackupPlanArgs(
            region=site.region,
            vault=vault,
            retention=cfg.retention_policy,
            copy_to_vault_arn=peer["drBackupVaultArn"] if peer is not None else None,
            kms_key_arns=key_arns,
            restore_test=RestoreTest(
                resource_arns=[db.arn],
                subnet_group_name=db.subnet_group.name,
                security_group_ids=[network.database_sg.id],
            ),
            tags={"postoucancer:stack": site.stack},
        ),
    )
    site.parts["backup_plan"] = plan
    site.export("backupVaultArn", vault.arn)
    site.export(
        "backupPlan",
        {
            "id": plan.plan.id,
            "rules": [s.name for s in plan.specs],
            "copiesTo": peer["drBackupVaultArn"] if peer is not None else None,
            "locked": cfg.locked,
        },
    )
