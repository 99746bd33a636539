"""Monitoring and alerting of a site (plan: "Monitoring and Alerting"): one SNS topic per site
under a customer key, the alarms and EventBridge rules that publish to it, a dashboard.

Every threshold below comes from drplan (or, for the storage quota, the stack config);
`alarm_specs` says where. An alarm is created only for what the site actually runs: a DR
site that is not activated takes no backups (its schedules are off), so "backup overdue"
would page forever there; it watches its replica's lag and the DR-site health instead.

Route 53 publishes health-check metrics in us-east-1 only, and an alarm's actions must be
in its own region: the health alarms of the DR stack (which owns the DNS failover) publish
to a second topic of the same subscribers in us-east-1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pulumi

from components.aws.alerts import AlarmSpec, AlertTopic, AlertTopicArgs, Dashboard, DashboardArgs
from components.aws.audit_trail import CHANGE_METRIC, CHANGE_METRIC_NAMESPACE, AuditTrail
from components.aws.dns_failover import DnsFailover
from drplan.drills import dr_drill_bounds
from drplan.names import ACTIVATION_TEST_AGE_SECONDS, DRILL_DATA_AGE_SECONDS, DRILL_RESTORE_SECONDS, DRILL_SUCCESS
from drplan.names import METRIC_NAMESPACE as NAMESPACE
from drplan.names import METRIC_SERVICE as SERVICE
from drplan.objectives import PLAN_OBJECTIVE, SCENARIO_OBJECTIVES
from drplan.periods import HOUR, MINUTE
from drplan.recovery import ASSUMPTIONS
from drplan.schedules import SCHEDULES
from drplan.thresholds import BACKUP_OVERDUE_AFTER, REPLICATION_TIME_CONTROL
from infra.aws.data import DataTier
from infra.aws.files import Files
from infra.aws.functions import Functions
from infra.config import StackConfig
from infra.site import Site
from infra.vault.wiring import vault_targets

ROUTE53_METRICS_REGION = "us-east-1"
# The period of the function-metric alarms: the overdue alarm counts whole hours.
METRIC_PERIOD = HOUR
# Function, queue and replication alarms look at five-minute windows.
FAST_PERIOD = 5 * MINUTE
FAST_PERIOD_S = int(FAST_PERIOD.total_seconds())
# S3 storage metrics are published once a day.
STORAGE_PERIOD = timedelta(days=1)
# The activation test's age is published once a day (lambdas/core/overdue.py).
DAILY_PERIOD = timedelta(days=1)
GB = 1024**3
# The strictest scenario's RTO: a verified restore slower than this would miss it.
FASTEST_RTO = min(o.rto for o in SCENARIO_OBJECTIVES.values())
OVERDUE_PERIODS = int(BACKUP_OVERDUE_AFTER / METRIC_PERIOD)


def alarm_specs(cfg: StackConfig) -> dict[str, AlarmSpec]:
    """Every kind of alarm of a site, once: metric, statistic and a threshold from drplan (the
    storage quota from config). Keys with `*` are raised once per function, bucket or site."""
    return {
        "backup-failed": AlarmSpec(
            NAMESPACE, "BackupSuccess", "Minimum", "below", 1, METRIC_PERIOD,
            "a backup run reported BackupSuccess 0 (any failure)",
        ),
        "backup-overdue": AlarmSpec(
            NAMESPACE, "BackupSuccess", "Sum", "below", 1, METRIC_PERIOD,
            "no successful backup for drplan.thresholds.BACKUP_OVERDUE_AFTER; missing data breaches",
            evaluation_periods=OVERDUE_PERIODS, datapoints_to_alarm=OVERDUE_PERIODS, missing_data_breaches=True,
        ),
        "restore-test-failed": AlarmSpec(
            NAMESPACE, "VerifySuccess", "Minimum", "below", 1, METRIC_PERIOD,
            "a verify run reported VerifySuccess 0 (any failure)",
        ),
        "restore-too-slow": AlarmSpec(
            NAMESPACE, "RestoreDurationSeconds", "Maximum", "above", FASTEST_RTO.total_seconds(), METRIC_PERIOD,
            "a verified restore took longer than the strictest scenario RTO (drplan.objectives)",
        ),
        "*-errors": AlarmSpec(
            "AWS/Lambda", "Errors", "Sum", "above", 0, FAST_PERIOD, "function Errors above 0"
        ),
        "*-throttles": AlarmSpec(
            "AWS/Lambda", "Throttles", "Sum", "above", 0, FAST_PERIOD, "function Throttles above 0"
        ),
        "dead-letters": AlarmSpec(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "above", 0, FAST_PERIOD,
            "a message in the functions' dead-letter queue",
        ),
        "replica-lag": AlarmSpec(
            "AWS/RDS", "ReplicaLag", "Maximum", "above", ASSUMPTIONS.standby_lag_budget.total_seconds(), MINUTE,
            "RDS ReplicaLag above drplan.recovery.ASSUMPTIONS.standby_lag_budget; missing data breaches",
            evaluation_periods=3, missing_data_breaches=True,
        ),
        "replication-latency-*": AlarmSpec(
            "AWS/S3", "ReplicationLatency", "Maximum", "above", REPLICATION_TIME_CONTROL.total_seconds(), FAST_PERIOD,
            "S3 ReplicationLatency above drplan.thresholds.REPLICATION_TIME_CONTROL",
        ),
        "replication-failed-*": AlarmSpec(
            "AWS/S3", "OperationsFailedReplication", "Sum", "above", 0, FAST_PERIOD,
            "S3 OperationsFailedReplication above 0",
        ),
        "storage-quota": AlarmSpec(
            "AWS/S3", "BucketSizeBytes", "Maximum", "above", cfg.alerts.storage_quota_gb * GB, STORAGE_PERIOD,
            "backup bucket size above config alerts.storageQuotaGb",
        ),
        "audit-control-changed": AlarmSpec(
            CHANGE_METRIC_NAMESPACE, CHANGE_METRIC, "Sum", "above", 0, FAST_PERIOD,
            "the audit trail's metric filter counted a change to a trail, vault lock, vault policy or key",
        ),
        "*-health": AlarmSpec(
            "AWS/Route53", "HealthCheckStatus", "Minimum", "below", 1, MINUTE,
            "Route 53 health check of a site reports unhealthy", missing_data_breaches=True,
        ),
        **drill_alarm_specs(cfg),
    }


def drill_alarm_specs(cfg: StackConfig) -> dict[str, AlarmSpec]:
    """The plan's periodic tests (infra/aws/drills.py raises them on the DR site): the monthly drill's
    verdict, restore time and data age against drplan.drills, the activation test's age against a
    quarter plus the grace period (a daily metric; missing data breaches: a dead clock pages too)."""
    bounds = dr_drill_bounds(cfg.topology, cfg.scenario_objectives)
    return {
        "drill-failed": AlarmSpec(
            NAMESPACE, DRILL_SUCCESS, "Minimum", "below", 1, METRIC_PERIOD,
            "the monthly DR drill's validation reported DrillSuccess 0 (any failed check)",
        ),
        "drill-restore-too-slow": AlarmSpec(
            NAMESPACE, DRILL_RESTORE_SECONDS, "Maximum", "above", bounds.restore_within.total_seconds(), METRIC_PERIOD,
            "the drill's restore took longer than drplan.drills.dr_drill_bounds().restore_within (the RTO less the "
            "other steps of the way back)",
        ),
        "drill-data-too-old": AlarmSpec(
            NAMESPACE, DRILL_DATA_AGE_SECONDS, "Maximum", "above", bounds.data_age_within.total_seconds(),
            METRIC_PERIOD, "the drill restored data older than drplan.drills.dr_drill_bounds().data_age_within (the "
            "RPO of the DR vault's copies)",
        ),
        "*-dead-letters": AlarmSpec(
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "above", 0, FAST_PERIOD,
            "a message in a testing task function's dead-letter queue",
        ),
        "activation-test-overdue": AlarmSpec(
            NAMESPACE, ACTIVATION_TEST_AGE_SECONDS, "Maximum", "above",
            SCHEDULES.activation_test_overdue_after.total_seconds(), DAILY_PERIOD,
            "the last recorded activation test is older than drplan.schedules activation_test_every + "
            "activation_test_grace; missing data breaches",
            missing_data_breaches=True,
        ),
    }


@dataclass(frozen=True)
class Monitoring:
    topic: AlertTopic
    # us-east-1 twin for the Route 53 health alarms (the dr stack, with DNS failover only).
    health: AlertTopic | None
    dashboard: Dashboard
    # What `build(testing=...)` made with the site topic (infra/aws/drills.py: the testing schedule).
    testing: Any = None


def _fn_dims(database: str) -> dict[str, str]:
    # aws-lambda-powertools adds the service dimension to every metric it flushes.
    return {"database": database, "service": SERVICE}


def _alarm_arns(topic: AlertTopic) -> list[pulumi.Output[str]]:
    return [a.arn for a in topic.alarms.values()]


def _aws_backup_rules(topic: AlertTopic) -> None:
    """Both sites: jobs run in the primary, copy jobs land in the DR vault."""
    topic.on_event(
        "backup-job-failed",
        "AWS Backup job failed, expired or aborted",
        {
            "source": ["aws.backup"],
            "detail-type": ["Backup Job State Change"],
            "detail": {"state": ["FAILED", "EXPIRED", "ABORTED"]},
        },
    )
    topic.on_event(
        "copy-job-failed",
        "AWS Backup cross-region copy failed",
        {"source": ["aws.backup"], "detail-type": ["Copy Job State Change"], "detail": {"state": ["FAILED"]}},
    )
    topic.on_event(
        "restore-job-failed",
        "AWS Backup restore (incl. the weekly restore test) failed or its validation failed",
        {
            "source": ["aws.backup"],
            "detail-type": ["Restore Job State Change"],
            "detail": {"$or": [{"status": ["FAILED", "ABORTED"]}, {"validationStatus": ["FAILED", "TIMED_OUT"]}]},
        },
    )


def build(
    site: Site,
    data: DataTier,
    files: Files,
    functions: Functions,
    dns: DnsFailover | None,
    trail: AuditTrail | None = None,
    testing: Callable[[AlertTopic], Any] | None = None,
) -> Monitoring:
    """`testing` raises further alarms on the site topic (the plan's testing schedule) before the
    dashboard and the `alerts` export list every alarm of the site."""
    cfg = site.cfg
    topic = AlertTopic(
        site.name("alerts"),
        AlertTopicArgs(region=site.region, emails=cfg.alerts.emails, webhooks=cfg.alerts.webhooks),
    )
    specs = alarm_specs(cfg)
    db = cfg.database.name
    backups_on = site.is_primary or cfg.activated
    _aws_backup_rules(topic)

    # --- the backup / verify functions ------------------------------------------------
    if backups_on:
        topic.raise_alarm(
            "backup-failed", specs["backup-failed"], _fn_dims(db),
            f"A PostgreSQL backup of {db} failed (see the function's audit log)",
        )
        topic.raise_alarm(
            "backup-overdue", specs["backup-overdue"], _fn_dims(db),
            f"No successful backup of {db} for {BACKUP_OVERDUE_AFTER} (plan: backup not completed in time)",
        )
        topic.raise_alarm(
            "restore-test-failed", specs["restore-test-failed"], _fn_dims(db),
            f"The restore test of {db}'s backup failed (plan: restore test failure)",
        )
        topic.raise_alarm(
            "restore-too-slow", specs["restore-too-slow"], _fn_dims(db),
            f"Restoring {db}'s backup took longer than the strictest RTO ({FASTEST_RTO})",
        )
    if functions.lambdas is not None:
        for key, fn in functions.lambdas.functions.items():
            for metric in ("errors", "throttles"):
                spec = specs[f"*-{metric}"]
                topic.raise_alarm(
                    f"{key}-{metric}", spec, {"FunctionName": fn.name}, f"The {key} function reported {spec.metric}"
                )
        topic.raise_alarm(
            "dead-letters", specs["dead-letters"], {"QueueName": functions.lambdas.dlq.name},
            "A scheduled backup/verify run failed all its retries (dead-letter queue not empty)",
        )

    # --- replication ---------------------------------------------------------------------
    replica = getattr(data.database, "replica", None) if site.is_dr and not cfg.activated else None
    if replica is not None:
        topic.raise_alarm(
            "replica-lag", specs["replica-lag"], {"DBInstanceIdentifier": replica.identifier},
            f"The warm standby lags more than its RPO budget ({ASSUMPTIONS.standby_lag_budget}; "
            f"plan RPO {PLAN_OBJECTIVE.rpo})",
        )
    for label, bucket, peer_key in (("files", files.bucket, "filesBucketName"),
                                    ("backups", functions.bucket, "backupBucketName")):
        if bucket.replication is None or (dest := site.peer.get(peer_key)) is None:
            continue
        dims = {"SourceBucket": bucket.bucket.bucket, "DestinationBucket": dest, "RuleId": "to-dr-region"}
        topic.raise_alarm(
            f"replication-latency-{label}", specs["replication-latency-*"], dims,
            f"S3 replication of the {label} bucket is slower than its Replication Time Control "
            f"({REPLICATION_TIME_CONTROL})",
        )
        topic.raise_alarm(
            f"replication-failed-{label}", specs["replication-failed-*"], dims,
            f"S3 replication of the {label} bucket failed for some objects",
        )

    _vault_account_alarms(site, topic, specs, functions)

    # --- storage -------------------------------------------------------------------------
    topic.raise_alarm(
        "storage-quota", specs["storage-quota"],
        {"BucketName": functions.bucket.bucket.bucket, "StorageType": "StandardStorage"},
        f"The backup bucket holds more than alerts.storageQuotaGb = {cfg.alerts.storage_quota_gb:g} GB",
    )

    # --- the audit trail (dr stack): changes to the controls that keep the record and the backups --
    if trail is not None:
        topic.raise_alarm(
            "audit-control-changed", specs["audit-control-changed"], {},
            "A trail, a backup vault lock or vault policy, or a KMS key was changed or scheduled for deletion "
            f"(any region; who and what: log group {trail.log_group_name})",
        )

    # --- DR-site health (the dr stack owns the DNS failover and its health checks) ----------
    health = None
    if dns is not None:
        health = AlertTopic(
            site.name("alerts-health"),
            AlertTopicArgs(region=ROUTE53_METRICS_REGION, emails=cfg.alerts.emails, webhooks=cfg.alerts.webhooks),
        )
        for which, check in (("primary", dns.primary_check), ("dr", dns.dr_check)):
            if check is not None:
                health.raise_alarm(
                    f"{which}-health", specs["*-health"], {"HealthCheckId": check.id},
                    f"The {which} site's health endpoint fails Route 53's checks",
                )

    tested = testing(topic) if testing is not None else None
    dashboard = _dashboard(site, topic, db, replica, files, functions)
    site.export(
        "alerts",
        {
            "topicArn": topic.arn,
            "subscribers": len(cfg.alerts.emails) + len(cfg.alerts.webhooks),
            "alarms": sorted(topic.alarms) + sorted(health.alarms if health else {}),
            "rules": sorted(topic.rules),
            "thresholds": _thresholds(topic, specs),
        },
    )
    return Monitoring(topic, health, dashboard, tested)


def _vault_account_alarms(site: Site, topic: AlertTopic, specs: dict[str, AlarmSpec], functions: Functions) -> None:
    """Copies into the backup-only account (infra/vault): a failed AWS Backup copy job into one of
    its vaults, and the dumps' replication into its bucket failing or falling behind."""
    vault = vault_targets(site)
    if vault is None:
        return
    # Copy jobs run, and report, in the source account: the event names the destination vault.
    into_vault = f"arn:aws:backup:{site.region}:{vault.account}:backup-vault:"
    topic.on_event(
        "vault-copy-failed",
        "AWS Backup copy into the backup-only account's vault failed",
        {
            "source": ["aws.backup"],
            "detail-type": ["Copy Job State Change"],
            "detail": {
                "state": ["FAILED", "ABORTED"],
                "destinationBackupVaultArn": [{"prefix": into_vault}],
            },
        },
    )
    bucket = functions.bucket
    if "to-vault-account" not in getattr(bucket, "replica_rules", {}):
        return
    dims = {"SourceBucket": bucket.bucket.bucket, "DestinationBucket": vault.bucket_name, "RuleId": "to-vault-account"}
    topic.raise_alarm(
        "replication-latency-vault", specs["replication-latency-*"], dims,
        f"S3 replication of the backup bucket into the backup-only account is slower than its Replication Time "
        f"Control ({REPLICATION_TIME_CONTROL})",
    )
    topic.raise_alarm(
        "replication-failed-vault", specs["replication-failed-*"], dims,
        "S3 replication of the backup bucket into the backup-only account failed for some objects",
    )


# What the `alerts.thresholds` export reports, per alarm raised: (export key, alarm, spec).
_REPORTED = (
    ("backupOverdueHours", "backup-overdue", lambda s: s.evaluation_periods * s.period / HOUR),
    ("restoreDurationSeconds", "restore-too-slow", lambda s: s.threshold),
    ("replicaLagSeconds", "replica-lag", lambda s: s.threshold),
    ("replicationLatencySeconds", "replication-latency-files", lambda s: s.threshold),
    ("replicationLatencySeconds", "replication-latency-backups", lambda s: s.threshold),
    ("storageQuotaBytes", "storage-quota", lambda s: s.threshold),
)


def _thresholds(topic: AlertTopic, specs: dict[str, AlarmSpec]) -> dict[str, float]:
    from fnmatch import fnmatch

    reported = {}
    for export_key, alarm, value in _REPORTED:
        if alarm in topic.alarms:
            spec = next(s for pattern, s in specs.items() if fnmatch(alarm, pattern))
            reported[export_key] = value(spec)
    return reported


def _metric_widget(title: str, region: str, metrics: list[list[Any]], **props: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {"title": title, "region": region, "metrics": metrics, "view": "timeSeries", **props},
    }


def _dashboard(site: Site, topic: AlertTopic, db: str, replica: Any, files: Files, functions: Functions) -> Dashboard:
    """Plan: backup success, size and duration; restore-test results and durations;
    replication lag; storage used."""
    region = site.region
    dims = ["database", db, "service", SERVICE]
    day = 86400
    widgets = [
        _metric_widget(
            "Backup success / restore-test success",
            region,
            [[NAMESPACE, "BackupSuccess", *dims], [NAMESPACE, "VerifySuccess", *dims]],
            stat="Minimum",
            period=day,
        ),
        _metric_widget(
            "Backup size (bytes, stored and raw)",
            region,
            [[NAMESPACE, "BackupBytes", *dims], [NAMESPACE, "BackupRawBytes", *dims]],
            stat="Maximum",
            period=day,
        ),
        _metric_widget(
            "Backup and restore-test durations (s); line: strictest RTO",
            region,
            [
                [NAMESPACE, "BackupDurationSeconds", *dims],
                [NAMESPACE, "VerifyDurationSeconds", *dims],
                [NAMESPACE, "RestoreDurationSeconds", *dims],
            ],
            stat="Maximum",
            period=day,
            annotations={
                "horizontal": [
                    {
                        "label": "strictest scenario RTO",
                        "value": min(o.rto for o in SCENARIO_OBJECTIVES.values()).total_seconds(),
                    }
                ]
            },
        ),
    ]
    if replica is not None:
        widgets.append(
            _metric_widget(
                "Warm-standby replication lag (s); line: RPO budget",
                region,
                [["AWS/RDS", "ReplicaLag", "DBInstanceIdentifier", replica.identifier]],
                stat="Maximum",
                period=60,
                annotations={
                    "horizontal": [
                        {"label": "standby lag budget", "value": ASSUMPTIONS.standby_lag_budget.total_seconds()}
                    ]
                },
            )
        )
    backups = functions.bucket
    if backups.replication is not None:
        widgets.append(
            _metric_widget(
                "S3 replication latency of the backup bucket (s); line: RTC",
                region,
                [["AWS/S3", "ReplicationLatency", "SourceBucket", backups.bucket.bucket]],
                stat="Maximum",
                period=FAST_PERIOD_S,
                annotations={"horizontal": [{"label": "RTC", "value": REPLICATION_TIME_CONTROL.total_seconds()}]},
            )
        )
    storage = [
        ["AWS/S3", "BucketSizeBytes", "BucketName", bucket.bucket.bucket, "StorageType", "StandardStorage"]
        for bucket in (functions.bucket, files.bucket)
    ]
    if storage:
        widgets.append(
            _metric_widget(
                "Storage used (bytes); line: quota",
                region,
                storage,
                stat="Maximum",
                period=day,
                annotations={
                    "horizontal": [{"label": "alerts.storageQuotaGb", "value": site.cfg.alerts.storage_quota_gb * GB}]
                },
            )
        )
    widgets.append(
        {
            "type": "alarm",
            "width": 24,
            "height": 6,
            "properties": {"title": "Alarms of this site", "alarms": _alarm_arns(topic)},
        }
    )
    # Lay the widgets out on the 24-column grid.
    x = y = 0
    for w in widgets:
        if x + w["width"] > 24:
            x, y = 0, y + 6
        w["x"], w["y"] = x, y
        x += w["width"]
    # Dashboard names are global to the account: carry the stack.
    dashboard = Dashboard(f"postoucancer-{site.stack}-backups", DashboardArgs(region=region, widgets=widgets))
    site.export("dashboard", dashboard.dashboard.dashboard_name)
    return dashboard
