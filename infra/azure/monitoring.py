"""Monitoring and audit of an Azure site (components/azure/monitoring.py): a Log Analytics
workspace, an action group from `alerts.*`, the plan's alerts, diagnostic settings on every data
resource, and the audit archive.

`build` comes first (the functions' failed-run alerts need the action group), `watch` last,
once every resource it watches exists.

The audit archive is a storage account of the site's region (a regional resource's diagnostic
setting writes only to an account of its own region): version-level immutability as the
account's default policy, `retention.audit_logs` (7 years) with protected append writes (Azure
Monitor writes append blobs into the `insights-*` containers it creates; every new blob
inherits the default), Locked with the backups' two-step (`azure.immutability`: Azure creates
the policy Unlocked, the next `pulumi up` locks it). The subscription's activity log is exported
by one stack only (a subscription diagnostic setting is one per name): dr-azure, which survives
the primary region.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.azure.monitoring import STORAGE_AUDIT_CATEGORIES, AuditArchive, MonitoringArgs, SiteMonitoring
from components.azure.names import storage_account_name
from components.azure.storage_account import Immutability, ProtectedStorageAccount, ProtectedStorageAccountArgs
from infra.azure.backups import BackupStore
from infra.azure.cache import Cache
from infra.azure.data import Database
from infra.azure.files import Files
from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.site import Site

AUDIT_PURPOSE = "audit"


@dataclass(frozen=True)
class Monitoring:
    site: SiteMonitoring
    audit: ProtectedStorageAccount
    exports_activity_log: bool


def _audit_account(site: Site, base: Foundation, keys: Keys) -> ProtectedStorageAccount:
    cfg = site.cfg
    retention = cfg.retention_policy
    return ProtectedStorageAccount(
        site.name("audit"),
        ProtectedStorageAccountArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            account_name=storage_account_name(base.subscription_id, site.stack, "audit"),
            retention=retention,
            key=keys.storage,
            identity=keys.identities["storage"],
            containers=[],  # Azure Monitor creates its insights-* containers; they inherit the default policy
            purpose=AUDIT_PURPOSE,
            change_feed=False,  # not replicated: each region's diagnostics write to their own archive
            immutability=Immutability(
                period=retention.audit_logs, locked=cfg.immutability_locked, allow_protected_append_writes=True
            ),
            network=base.network,
            depends_on=list(keys.storage.grants),
            tags=base.tags,
        ),
        opts=base.opts,
    )


def build(site: Site, base: Foundation, keys: Keys) -> Monitoring:
    cfg = site.cfg
    audit = _audit_account(site, base, keys)
    exports = site.is_dr
    monitoring = SiteMonitoring(
        site.name("monitoring"),
        MonitoringArgs(
            resource_group_name=base.group.name,
            location=site.region,
            storage_quota_gb=cfg.alerts.storage_quota_gb,
            emails=list(cfg.alerts.emails),
            webhooks=list(cfg.alerts.webhooks),
            audit=AuditArchive(audit.id, site.region),
            export_activity_log=exports,
            tags=base.tags,
        ),
        opts=base.opts,
    )
    return Monitoring(monitoring, audit, exports)


def watch(
    site: Site,
    mon: Monitoring,
    keys: Keys,
    db: Database,
    cache: Cache,
    files: Files,
    backups: BackupStore,
    jobs_environment_id: pulumi.Input[str] | None,
) -> None:
    """Diagnostics on every data resource, the metric alerts, and what the stack says of them."""
    m, region = mon.site, site.region
    watched: dict[str, pulumi.Input[str]] = {
        "key-vault": keys.vault.id,
        "backup-vault": db.vault.vault.id,
        "cache": cache.redis.id,
        "files-account": files.account.id,
        "backups-account": backups.storage.storage.id,
    }
    if db.server is not None:
        watched["database"] = db.server.id
    for key, resource_id in watched.items():
        m.diagnostics(key, resource_id, region)
    # Blob audit logs (read, write, delete) of the data accounts, also into the locked archive.
    for key, account in (("files", files.account), ("backups", backups.storage.storage)):
        m.diagnostics(
            f"{key}-blob",
            pulumi.Output.concat(account.id, "/blobServices/default"),
            region,
            metrics=False,
            audit_categories=STORAGE_AUDIT_CATEGORIES,
        )
    if jobs_environment_id is not None:
        # The jobs' console logs (their JSON result lines) feed the backup and restore-test alerts.
        m.diagnostics("jobs", jobs_environment_id, region, metrics=False)
    m.metric_alert("storage-quota", backups.storage.storage.id)
    if site.is_dr and db.server is not None:
        m.metric_alert("replica-lag", db.server.id)
    site.export(
        "monitoring",
        {
            "workspaceId": m.workspace.id,
            "actionGroupId": m.action_group.id,
            "alerts": sorted(m.alerts),
            "diagnostics": sorted([*watched, "files-blob", "backups-blob", *(["jobs"] if jobs_environment_id else [])]),
            "auditAccount": mon.audit.name,
            "activityLogExported": mon.exports_activity_log,
        },
    )
