"""Monitoring and alerting of a site (plan: "Monitoring and Alerting"): one SNS topic per site
under a customer key, the alarms and EventBridge rules that publish to it, a dashboard.

Every threshold below comes from drplan (or, for the storage quota, the stack config);
`ALARMS` documents where. An alarm is created only for what the site actually runs: a DR
site that is not activated takes no backups (its schedules are off), so "backup overdue"
would page forever there; it watches its replica's lag and the DR-site health instead.

Route 53 publishes health-check metrics in us-east-1 only, and an alarm's actions must be
in its own region: the health alarms of the DR stack (which owns the DNS failover) publish
to a second topic of the same subscribers in us-east-1.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.aws.alerts import AlertTopic, AlertTopicArgs, Dashboard, DashboardArgs
from drplan.names import METRIC_NAMESPACE as NAMESPACE
from drplan.names import METRIC_SERVICE as SERVICE
from drplan.objectives import PLAN_OBJECTIVE, SCENARIO_OBJECTIVES
from drplan.periods import HOUR
from drplan.recovery import ASSUMPTIONS
from drplan.thresholds import BACKUP_OVERDUE_AFTER, REPLICATION_TIME_CONTROL
from infra.site import Site

ROUTE53_METRICS_REGION = "us-east-1"
# The period of the function-metric alarms: the overdue alarm counts whole hours.
METRIC_PERIOD = HOUR
# Function, queue and replication alarms look at five-minute windows.
FAST_PERIOD_S = 300
GB = 1024**3

# What each alarm watches and where its threshold comes from (tests check the values).
ALARMS: dict[str, str] = {
    "backup-failed": "a backup run reported BackupSuccess 0 (any failure)",
    "backup-overdue": "no successful backup for model.BACKUP_OVERDUE_AFTER; missing data breaches",
    "restore-test-failed": "a verify run reported VerifySuccess 0 (any failure)",
    "restore-too-slow": "a verified restore took longer than the strictest scenario RTO of the model",
    "replica-lag": "RDS ReplicaLag above model.ASSUMPTIONS.standby_lag_budget; missing data breaches",
    "replication-latency-*": "S3 ReplicationLatency above model.REPLICATION_TIME_CONTROL",
    "replication-failed-*": "S3 OperationsFailedReplication above 0",
    "storage-quota": "backup bucket size above config alerts.storageQuotaGb",
    "*-errors": "function Errors above 0",
    "*-throttles": "function Throttles above 0",
    "dead-letters": "a message in the functions' dead-letter queue",
    "*-health": "Route 53 health check of a site reports unhealthy",
}


def _fn_dims(database: str) -> dict[str, str]:
    # aws-lambda-powertools adds the service dimension to every metric it flushes.
    return {"database": database, "service": SERVICE}


def _alarm_arns(topic: AlertTopic) -> list[pulumi.Output[str]]:
    return [a.arn for a in topic.alarms.values()]


def build(site: Site) -> None:
    cfg = site.cfg
    tags = {"postoucancer:stack": site.stack}
    topic = AlertTopic(
        site.name("alerts"),
        AlertTopicArgs(region=site.region, emails=cfg.alerts.emails, webhooks=cfg.alerts.webhooks, tags=tags),
    )
    site.parts["alerts"] = topic
    thresholds: dict[str, Any] = {}
    db = cfg.database.name
    functions = site.parts.get("backup_functions")
    backups_on = site.is_primary or cfg.activated

    # --- AWS Backup (both sites: jobs run in the primary, copy jobs land in the DR vault) --
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

    # --- the backup / verify functions ------------------------------------------------
    period = int(METRIC_PERIOD.total_seconds())
    if backups_on:
        topic.alarm(
            "backup-failed",
            f"A PostgreSQL backup of {db} failed (see the function's audit log)",
            namespace=NAMESPACE,
            metric_name="BackupSuccess",
            dimensions=_fn_dims(db),
            statistic="Minimum",
            period=period,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=1,
        )
        overdue_periods = int(BACKUP_OVERDUE_AFTER / METRIC_PERIOD)
        topic.alarm(
            "backup-overdue",
            f"No successful backup of {db} for {BACKUP_OVERDUE_AFTER} (plan: backup not completed in time)",
            namespace=NAMESPACE,
            metric_name="BackupSuccess",
            dimensions=_fn_dims(db),
            statistic="Sum",
            period=period,
            evaluation_periods=overdue_periods,
            datapoints_to_alarm=overdue_periods,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
        )
        thresholds["backupOverdueHours"] = overdue_periods * period / 3600
        topic.alarm(
            "restore-test-failed",
            f"The restore test of {db}'s backup failed (plan: restore test failure)",
            namespace=NAMESPACE,
            metric_name="VerifySuccess",
            dimensions=_fn_dims(db),
            statistic="Minimum",
            period=period,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=1,
        )
        fastest_rto = min(o.rto for o in SCENARIO_OBJECTIVES.values())
        topic.alarm(
            "restore-too-slow",
            f"Restoring {db}'s backup took longer than the strictest RTO ({fastest_rto})",
            namespace=NAMESPACE,
            metric_name="RestoreDurationSeconds",
            dimensions=_fn_dims(db),
            statistic="Maximum",
            period=period,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=fastest_rto.total_seconds(),
        )
        thresholds["restoreDurationSeconds"] = fastest_rto.total_seconds()
    if functions is not None:
        for key, fn in functions.functions.items():
            for metric in ("Errors", "Throttles"):
                topic.alarm(
                    f"{key}-{metric.lower()}",
                    f"The {key} function reported {metric}",
                    namespace="AWS/Lambda",
                    metric_name=metric,
                    dimensions={"FunctionName": fn.name},
                    statistic="Sum",
                    period=FAST_PERIOD_S,
                    evaluation_periods=1,
                    comparison_operator="GreaterThanThreshold",
                    threshold=0,
                )
        topic.alarm(
            "dead-letters",
            "A scheduled backup/verify run failed all its retries (dead-letter queue not empty)",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": functions.dlq.name},
            statistic="Maximum",
            period=FAST_PERIOD_S,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
        )

    # --- replication ---------------------------------------------------------------------
    database = site.parts.get("database")
    replica = getattr(database, "replica", None) if site.is_dr and not cfg.activated else None
    if replica is not None:
        budget = ASSUMPTIONS.standby_lag_budget
        topic.alarm(
            "replica-lag",
            f"The warm standby lags more than its RPO budget ({budget}; plan RPO {PLAN_OBJECTIVE.rpo})",
            namespace="AWS/RDS",
            metric_name="ReplicaLag",
            dimensions={"DBInstanceIdentifier": replica.identifier},
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            comparison_operator="GreaterThanThreshold",
            threshold=budget.total_seconds(),
            treat_missing_data="breaching",
        )
        thresholds["replicaLagSeconds"] = budget.total_seconds()
    rtc = REPLICATION_TIME_CONTROL.total_seconds()
    replicated = (("files", "files", "filesBucketName"), ("backups", "backups.bucket", "backupBucketName"))
    for label, part, peer_key in replicated:
        bucket = site.parts.get(part)
        if bucket is None or getattr(bucket, "replication", None) is None:
            continue
        dest = site.peer.get(peer_key)
        if dest is None:
            continue
        dims = {"SourceBucket": bucket.bucket.bucket, "DestinationBucket": dest, "RuleId": "to-dr-region"}
        topic.alarm(
            f"replication-latency-{label}",
            f"S3 replication of the {label} bucket is slower than its Replication Time Control "
            f"({REPLICATION_TIME_CONTROL})",
            namespace="AWS/S3",
            metric_name="ReplicationLatency",
            dimensions=dims,
            statistic="Maximum",
            period=FAST_PERIOD_S,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=rtc,
        )
        topic.alarm(
            f"replication-failed-{label}",
            f"S3 replication of the {label} bucket failed for some objects",
            namespace="AWS/S3",
            metric_name="OperationsFailedReplication",
            dimensions=dims,
            statistic="Sum",
            period=FAST_PERIOD_S,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
        )
        thresholds["replicationLatencySeconds"] = rtc

    # --- storage -------------------------------------------------------------------------
    backups = site.parts.get("backups.bucket")
    if backups is not None:
        quota = cfg.alerts.storage_quota_gb * GB
        topic.alarm(
            "storage-quota",
            f"The backup bucket holds more than alerts.storageQuotaGb = {cfg.alerts.storage_quota_gb:g} GB",
            namespace="AWS/S3",
            metric_name="BucketSizeBytes",
            dimensions={"BucketName": backups.bucket.bucket, "StorageType": "StandardStorage"},
            statistic="Maximum",
            period=86400,  # S3 storage metrics are daily
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=quota,
        )
        thresholds["storageQuotaBytes"] = quota

    # --- DR-site health (the dr stack owns the DNS failover and its health checks) ----------
    dns = site.parts.get("dns")
    if dns is not None:
        health = AlertTopic(
            site.name("alerts-health"),
            AlertTopicArgs(
                region=ROUTE53_METRICS_REGION, emails=cfg.alerts.emails, webhooks=cfg.alerts.webhooks, tags=tags
            ),
        )
        site.parts["alerts.health"] = health
        for which, check in (("primary", dns.primary_check), ("dr", dns.dr_check)):
            if check is None:
                continue
            health.alarm(
                f"{which}-health",
                f"The {which} site's health endpoint fails Route 53's checks",
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": check.id},
                statistic="Minimum",
                period=60,
                evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=1,
                treat_missing_data="breaching",
            )

    _dashboard(site, topic, db, replica)
    site.export(
        "alerts",
        {
            "topicArn": topic.arn,
            "subscribers": len(cfg.alerts.emails) + len(cfg.alerts.webhooks),
            "alarms": sorted(topic.alarms) + sorted(getattr(site.parts.get("alerts.health"), "alarms", {})),
            "rules": sorted(topic.rules),
            "thresholds": thresholds,
        },
    )


def _metric_widget(title: str, region: str, metrics: list[list[Any]], **props: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {"title": title, "region": region, "metrics": metrics, "view": "timeSeries", **props},
    }


def _dashboard(site: Site, topic: AlertTopic, db: str, replica: Any) -> None:
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
    backups = site.parts.get("backups.bucket")
    if backups is not None and backups.replication is not None:
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
    storage = []
    for part in ("backups.bucket", "files"):
        bucket = site.parts.get(part)
        if bucket is not None:
            name = bucket.bucket.bucket
            storage.append(["AWS/S3", "BucketSizeBytes", "BucketName", name, "StorageType", "StandardStorage"])
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
    site.parts["dashboard"] = dashboard
    site.export("dashboard", dashboard.dashboard.dashboard_name)
