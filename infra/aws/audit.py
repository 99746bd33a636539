"""The audit trail of a site pair (plan: "Audit Requirements"), owned by the dr stack.

One multi-region trail records the whole account; two would only duplicate management
events. It lives with the DR site (trail and locked log bucket in the DR region): what must
keep working when the primary region is gone includes the record of what happened to the
backups. Its data events cover both sites' backup buckets (the primary's once the dr stack
has read the prod stack's outputs: bootstrap dr, prod, dr).

Changes to the audit and immutability controls (trail, vault locks and policies, key
deletion) are counted from the trail's CloudWatch Logs group, which records every region;
infra/aws/monitoring.py raises the `audit-control-changed` alarm on that count.

AWS Backup Audit Manager (both sites, each in its region): a framework of the plan's controls
(components/aws/backup_audit.py); the dr stack's report plans deliver into the trail's bucket.

The functions' own audit records (one per backup / verify operation, lambdas/core/audit.py)
go to their log groups, kept as long as the audit requirement (infra/aws/functions.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.aws.audit_trail import REPORTS_PREFIX, AuditTrail, AuditTrailArgs
from components.aws.backup_audit import BackupAudit, BackupAuditArgs
from components.aws.replicated_bucket import AccessLogBucket
from infra.aws.functions import Functions
from infra.site import Site


@dataclass(frozen=True)
class Audit:
    trail: AuditTrail | None  # dr stack only
    backups: BackupAudit  # Audit Manager framework (and, on the dr stack, its report plans)


def build(site: Site, access_logs: AccessLogBucket, functions: Functions) -> Audit:
    trail = _trail(site, access_logs, functions)
    cfg = site.cfg
    framework = BackupAudit(
        site.name("backup-audit"),
        BackupAuditArgs(
            region=site.region,
            retention=cfg.retention_policy,
            locked=cfg.locked,
            copy_region=cfg.peer_region,
            physical_name=f"postoucancer_{site.stack}_backup",
            report_bucket=trail.bucket.bucket.bucket if trail is not None else None,
            report_prefix=REPORTS_PREFIX.rstrip("/"),
        ),
    )
    site.export(
        "backupAudit",
        {
            "framework": framework.framework.arn,
            "controls": [c.name for c in framework.controls],
            "reports": sorted(framework.report_plans),
        },
    )
    return Audit(trail, framework)


def _trail(site: Site, access_logs: AccessLogBucket, functions: Functions) -> AuditTrail | None:
    """The trail (dr only): both sites' backup buckets' data events, into a locked bucket."""
    cfg = site.cfg
    if site.is_primary:
        site.export("auditTrail", {"owner": cfg.peer_stack, "region": cfg.peer_region})
        return None
    buckets = [functions.bucket.arn]
    peer = site.peer.get("backupBucketArn")
    if peer is not None:
        buckets.append(peer)
    trail = AuditTrail(
        site.name("audit"),
        AuditTrailArgs(
            region=site.region,
            trail_name=f"postoucancer-{site.stack}",
            retention=cfg.retention_policy,
            locked=cfg.locked,
            log_bucket=access_logs,
            data_event_bucket_arns=buckets,
        ),
    )

    site.export(
        "auditTrail",
        {
            "arn": trail.arn,
            "bucket": trail.bucket.bucket.bucket,
            "region": site.region,
            "retention": str(cfg.retention_policy.audit_logs),
            "dataEventBuckets": buckets,
            "logGroup": trail.log_group.name,
        },
    )
    return trail
