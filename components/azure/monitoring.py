"""Monitoring and audit of an Azure site (plan: "Monitoring and Alerting", "Audit
Requirements"): a Log Analytics workspace (`operationalinsights`, API 2023-09-01), an action
group, the plan's alerts (`monitor`: scheduled query rules on the functions' result lines,
metric alerts on the replica's lag and the backup storage's size), diagnostic settings for every
data resource, and the exports the audit needs.

`alert_specs` is the Azure twin of infra/aws/monitoring.py `alarm_specs`: each kind of alert
once, its threshold from drplan (the storage quota from the stack config) and where it comes from.
The functions print one JSON result line per run (lambdas/cli.py: `"status": "created" |
"skipped"` done, `"failed"`, `"invalid"`) to the job's console log, which the jobs' managed
environment sends to the workspace (`ContainerAppConsoleLogs`, column `ContainerName` = the job).

Audit (7 years, plan): the subscription's activity log and the storage accounts' blob audit logs
(StorageRead/Write/Delete) go to the workspace *and* to an audit storage account whose
`insights-*` containers carry a locked time-based retention of `retention.audit_logs` with
protected append writes (Azure Monitor writes append blobs; a container policy without
`allowProtectedAppendWrites` rejects them). The account and its containers are an input (the
foundation's); policy/rules/azure_data.py checks the containers' policy. A diagnostic setting
of a regional resource can only write to a storage account in the resource's own region
(Azure Monitor, "Diagnostic settings": destination limitations); the activity log is global.
The subscription diagnostic setting is one per subscription and name: only one stack of a pair
exports it (the dr-azure stack, which survives the primary region).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_azure_native as azure_native

from drplan.periods import HOUR, MINUTE
from drplan.recovery import ASSUMPTIONS
from drplan.thresholds import BACKUP_OVERDUE_AFTER

from .postgres import REPLICA_LAG_METRIC

WORKSPACE_RETENTION_DAYS = 90  # interactive queries; the 7-year audit copy is the locked storage
LOG_TABLE = "ContainerAppConsoleLogs"
GB = 1024**3
ACTIVITY_LOG_CATEGORIES = (
    "Administrative", "Security", "ServiceHealth", "Alert", "Recommendation", "Policy", "Autoscale", "ResourceHealth",
)
STORAGE_AUDIT_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")
# Metric alert windows Azure Monitor accepts.
METRIC_WINDOWS = ("PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D")
# Log alerts look back at most two days.
MAX_LOG_WINDOW = timedelta(days=2)


def iso(d: timedelta) -> str:
    minutes = int(d / MINUTE)
    if minutes % 60:
        return f"PT{minutes}M"
    hours = minutes // 60
    return f"P{hours // 24}D" if hours % 24 == 0 else f"PT{hours}H"


def _status_is(job: str, *statuses: str) -> str:
    # json.dumps' default separators: `"status": "failed"`.
    cond = " or ".join(f"Log has '\"status\": \"{s}\"'" for s in statuses)
    return f"{LOG_TABLE} | where ContainerName == '{job}' | where {cond}"


@dataclass(frozen=True)
class LogAlertSpec:
    query: str
    operator: str  # GreaterThan / LessThan, applied to the number of rows
    threshold: float
    window: timedelta
    frequency: timedelta
    source: str


@dataclass(frozen=True)
class MetricAlertSpec:
    namespace: str
    metric: str
    aggregation: str
    operator: str
    threshold: float
    window: str
    frequency: str
    source: str


def alert_specs(storage_quota_gb: float) -> dict[str, LogAlertSpec | MetricAlertSpec]:
    return {
        "backup-failed": LogAlertSpec(
            _status_is("backup", "failed", "invalid"), "GreaterThan", 0, HOUR, 15 * MINUTE,
            "a backup run printed status failed or invalid (any failure)",
        ),
        "backup-overdue": LogAlertSpec(
            _status_is("backup", "created", "skipped"), "LessThan", 1, BACKUP_OVERDUE_AFTER, HOUR,
            "no successful backup for drplan.thresholds.BACKUP_OVERDUE_AFTER (a run that never started counts)",
        ),
        "restore-test-failed": LogAlertSpec(
            _status_is("verify", "failed", "invalid"), "GreaterThan", 0, HOUR, 15 * MINUTE,
            "a verify run (weekly restore test) printed status failed or invalid",
        ),
        "replica-lag": MetricAlertSpec(
            "Microsoft.DBforPostgreSQL/flexibleServers", REPLICA_LAG_METRIC, "Maximum", "GreaterThan",
            ASSUMPTIONS.standby_lag_budget.total_seconds(), "PT5M", "PT1M",
            "Read Replica Lag above drplan.recovery.ASSUMPTIONS.standby_lag_budget",
        ),
        "storage-quota": MetricAlertSpec(
            "Microsoft.Storage/storageAccounts", "UsedCapacity", "Average", "GreaterThan", storage_quota_gb * GB,
            "PT6H", "PT1H", "backup storage account size above config alerts.storageQuotaGb (hourly metric)",
        ),
    }


def check_spec(key: str, spec: LogAlertSpec | MetricAlertSpec) -> None:
    if isinstance(spec, LogAlertSpec):
        if spec.window > MAX_LOG_WINDOW:
            raise ValueError(f"{key}: a log alert looks back at most {iso(MAX_LOG_WINDOW)}, not {iso(spec.window)}")
    elif spec.window not in METRIC_WINDOWS:
        raise ValueError(f"{key}: a metric alert window is one of {METRIC_WINDOWS}, not {spec.window}")


@dataclass
class AuditArchive:
    """The audit storage account (locked `insights-*` containers, 7 years) of one region."""

    storage_account_id: pulumi.Input[str]
    location: str


@dataclass
class MonitoringArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    storage_quota_gb: float
    emails: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    audit: AuditArchive | None = None
    export_activity_log: bool = False  # one stack per subscription (the dr-azure stack)
    tags: dict[str, str] = field(default_factory=dict)


class SiteMonitoring(pulumi.ComponentResource):
    """`postoucancer:azure:SiteMonitoring`."""

    workspace: azure_native.operationalinsights.Workspace
    action_group: azure_native.monitor.ActionGroup

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:SiteMonitoring", name, None, opts)
        self._name, self._args = name, args
        self.specs = alert_specs(args.storage_quota_gb)
        for key, spec in self.specs.items():
            check_spec(key, spec)
        child = pulumi.ResourceOptions(parent=self)
        self.workspace = azure_native.operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": "PerGB2018"},
            retention_in_days=WORKSPACE_RETENTION_DAYS,
            # Entra ID only: no workspace shared keys to leak.
            features={"disable_local_auth": True, "enable_log_access_using_only_resource_permissions": True},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.action_group = azure_native.monitor.ActionGroup(
            f"{name}-alerts",
            resource_group_name=args.resource_group_name,
            location="global",
            group_short_name=name[:12],
            enabled=True,
            email_receivers=[{"name": f"email-{i}", "email_address": e, "use_common_alert_schema": True}
                             for i, e in enumerate(args.emails)],
            webhook_receivers=[{"name": f"webhook-{i}", "service_uri": u, "use_common_alert_schema": True}
                               for i, u in enumerate(args.webhooks)],
            tags=args.tags,
            opts=child,
        )
        self.alerts: dict[str, pulumi.CustomResource] = {}
        for key, spec in self.specs.items():
            if isinstance(spec, LogAlertSpec):
                self.alerts[key] = self._log_alert(key, spec)
        self.activity_log = None
        if args.export_activity_log:
            if args.audit is None:
                raise ValueError("audit: the activity log export needs the audit archive (storage account)")
            self.activity_log = azure_native.monitor.SubscriptionDiagnosticSetting(
                f"{name}-activity-log",
                name=f"{name}-activity-log",
                logs=[{"category": c, "enabled": True} for c in ACTIVITY_LOG_CATEGORIES],
                workspace_id=self.workspace.id,
                storage_account_id=args.audit.storage_account_id,
                opts=child,
            )
        self.register_outputs({"workspaceId": self.workspace.id, "actionGroupId": self.action_group.id})

    def _log_alert(self, key: str, spec: LogAlertSpec) -> azure_native.monitor.ScheduledQueryRule:
        args = self._args
        return azure_native.monitor.ScheduledQueryRule(
            f"{self._name}-{key}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            description=spec.source,
            severity=1,
            enabled=True,
            scopes=[self.workspace.id],
            evaluation_frequency=iso(spec.frequency),
            window_size=iso(spec.window),
            criteria={"all_of": [{
                "query": spec.query,
                "time_aggregation": "Count",
                "operator": spec.operator,
                "threshold": spec.threshold,
                "failing_periods": {"number_of_evaluation_periods": 1, "min_failing_periods_to_alert": 1},
            }]},
            auto_mitigate=True,
            actions={"action_groups": [self.action_group.id]},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def metric_alert(self, key: str, resource_id: pulumi.Input[str]) -> azure_native.monitor.MetricAlert:
        """The spec `key` (replica-lag, storage-quota) on one resource, to the action group."""
        spec = self.specs[key]
        if not isinstance(spec, MetricAlertSpec):
            metric_keys = ", ".join(k for k, s in self.specs.items() if isinstance(s, MetricAlertSpec))
            raise ValueError(f"{key}: not a metric alert (one of {metric_keys})")
        args = self._args
        alert = azure_native.monitor.MetricAlert(
            f"{self._name}-{key}",
            resource_group_name=args.resource_group_name,
            location="global",
            description=spec.source,
            severity=2,
            enabled=True,
            scopes=[resource_id],
            evaluation_frequency=spec.frequency,
            window_size=spec.window,
            auto_mitigate=True,
            # A union-typed input: the typed Args class, or the SDK sends the dict's keys untranslated.
            criteria=azure_native.monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    azure_native.monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name=key,
                        metric_namespace=spec.namespace,
                        metric_name=spec.metric,
                        operator=spec.operator,
                        threshold=spec.threshold,
                        time_aggregation=spec.aggregation,
                    )
                ],
            ),
            actions=[{"action_group_id": self.action_group.id}],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alerts[key] = alert
        return alert

    def diagnostics(self, key: str, resource_id: pulumi.Input[str], location: str, *, metrics: bool = True,
                    audit_categories: tuple[str, ...] = ()) -> azure_native.monitor.DiagnosticSetting:
        """Every log category (`allLogs`) and metric of a resource to the workspace; with
        `audit_categories` (a storage account's blob service: StorageRead/Write/Delete) also to
        the audit archive, which must be in the resource's region."""
        args = self._args
        storage = None
        if audit_categories:
            if args.audit is None:
                raise ValueError(f"{key}: audit logs need the audit archive (MonitoringArgs.audit)")
            if args.audit.location != location:
                raise ValueError(
                    f"{key}: a diagnostic setting writes only to a storage account in the resource's region "
                    f"({location}); the audit archive is in {args.audit.location}"
                )
            storage = args.audit.storage_account_id
        logs = ([{"category": c, "enabled": True} for c in audit_categories] if audit_categories
                else [{"category_group": "allLogs", "enabled": True}])
        return azure_native.monitor.DiagnosticSetting(
            f"{self._name}-{key}-diagnostics",
            name=f"{self._name}-diagnostics",
            resource_uri=resource_id,
            workspace_id=self.workspace.id,
            log_analytics_destination_type="Dedicated",
            storage_account_id=storage,
            logs=logs,
            metrics=[{"category": "AllMetrics", "enabled": True}] if metrics else [],
            opts=pulumi.ResourceOptions(parent=self),
        )
