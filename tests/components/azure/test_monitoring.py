"""Monitoring and audit of an Azure site (components/azure/monitoring.py) under mocks.

Sources: infra/aws/monitoring.py `alarm_specs` (the same alerts, thresholds from drplan);
Azure Monitor - scheduled query rules (log alerts look back at most two days), metric alert
window sizes, "Diagnostic settings" (a regional resource's logs go only to a storage account
in its region; activity log categories), "Supported metrics" for PostgreSQL flexible server
(`physical_replication_delay_in_seconds`) and storage accounts (`UsedCapacity`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from components.azure.monitoring import (
    ACTIVITY_LOG_CATEGORIES,
    STORAGE_AUDIT_CATEGORIES,
    AuditArchive,
    LogAlertSpec,
    MetricAlertSpec,
    MonitoringArgs,
    SiteMonitoring,
    alert_specs,
    check_spec,
    iso,
)
from drplan.recovery import ASSUMPTIONS
from drplan.thresholds import BACKUP_OVERDUE_AFTER

from .harness import arm_id, run, untranslated_keys

RULE = "azure-native:monitor:ScheduledQueryRule"
METRIC = "azure-native:monitor:MetricAlert"
DIAG = "azure-native:monitor:DiagnosticSetting"
AUDIT = AuditArchive(arm_id("Microsoft.Storage/storageAccounts", "staudit"), "germanywestcentral")
REPLICA = arm_id("Microsoft.DBforPostgreSQL/flexibleServers", "dr-pg")
BACKUPS = arm_id("Microsoft.Storage/storageAccounts", "stbackups")


def mon_args(**over) -> MonitoringArgs:
    base = dict(resource_group_name="rg-dr", location="germanywestcentral", storage_quota_gb=500,
                emails=["oncall@example.org"], audit=AUDIT, export_activity_log=True)
    return MonitoringArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    def program():
        m = SiteMonitoring("dr-mon", mon_args())
        m.metric_alert("replica-lag", REPLICA)
        m.metric_alert("storage-quota", BACKUPS)
        m.diagnostics("database", REPLICA, "germanywestcentral")
        m.diagnostics("backups-blob", f"{BACKUPS}/blobServices/default", "germanywestcentral", metrics=False,
                      audit_categories=STORAGE_AUDIT_CATEGORIES)

    return run(program)


def test_the_plans_alerts_exist_with_drplan_thresholds(stack):
    """Backup failed, backup late (drplan.thresholds.BACKUP_OVERDUE_AFTER), restore test failed,
    replication lag (ASSUMPTIONS.standby_lag_budget), storage quota (config): as on AWS."""
    rules = {r.name: r.inputs for r in stack.of_type(RULE)}
    assert set(rules) == {"dr-mon-backup-failed", "dr-mon-backup-overdue", "dr-mon-restore-test-failed"}
    overdue = rules["dr-mon-backup-overdue"]
    assert overdue["windowSize"] == iso(BACKUP_OVERDUE_AFTER) == "PT26H"
    assert overdue["criteria"]["allOf"][0]["operator"] == "LessThan"
    assert "ContainerName == 'backup'" in overdue["criteria"]["allOf"][0]["query"]
    assert '"status": "failed"' in rules["dr-mon-restore-test-failed"]["criteria"]["allOf"][0]["query"]
    action_group = stack.one("azure-native:monitor:ActionGroup", "dr-mon-alerts")
    assert all(r["actions"]["actionGroups"] == [action_group.id] for r in rules.values())
    lag = stack.one(METRIC, "dr-mon-replica-lag").inputs
    crit = lag["criteria"]["allOf"][0]
    assert crit["metricName"] == "physical_replication_delay_in_seconds"
    assert crit["threshold"] == ASSUMPTIONS.standby_lag_budget.total_seconds() and lag["scopes"] == [REPLICA]
    quota = stack.one(METRIC, "dr-mon-storage-quota").inputs["criteria"]["allOf"][0]
    assert quota["metricName"] == "UsedCapacity" and quota["threshold"] == 500 * 1024**3


def test_alert_windows_within_what_azure_monitor_accepts():
    specs = alert_specs(100)
    for key, spec in specs.items():
        check_spec(key, spec)
    assert {k for k, s in specs.items() if isinstance(s, MetricAlertSpec)} == {"replica-lag", "storage-quota"}
    with pytest.raises(ValueError, match="looks back at most P2D, not P3D"):
        check_spec("x", replace(specs["backup-overdue"], window=timedelta(days=3)))
    with pytest.raises(ValueError, match="metric alert window is one of"):
        check_spec("x", replace(specs["replica-lag"], window="PT2H"))
    assert isinstance(specs["backup-failed"], LogAlertSpec)


def test_diagnostics_and_audit_exports(stack):
    """Every log category and metric to the workspace; blob audit logs also to the locked audit
    account of the same region; the subscription's activity log, all categories, to both."""
    workspace = stack.one("azure-native:operationalinsights:Workspace", "dr-mon-logs")
    assert workspace.inputs["features"]["disableLocalAuth"] is True and workspace.protect
    db = stack.one(DIAG, "dr-mon-database-diagnostics").inputs
    assert db["logs"] == [{"categoryGroup": "allLogs", "enabled": True}] and db["workspaceId"] == workspace.id
    blob = stack.one(DIAG, "dr-mon-backups-blob-diagnostics").inputs
    assert {log["category"] for log in blob["logs"]} == set(STORAGE_AUDIT_CATEGORIES)
    assert blob["storageAccountId"] == AUDIT.storage_account_id
    activity = stack.one("azure-native:monitor:SubscriptionDiagnosticSetting", "dr-mon-activity-log").inputs
    assert {log["category"] for log in activity["logs"]} == set(ACTIVITY_LOG_CATEGORIES)
    assert activity["storageAccountId"] == AUDIT.storage_account_id and activity["workspaceId"] == workspace.id


def test_audit_logs_only_to_an_archive_of_the_resources_region():
    def program():
        SiteMonitoring("m", mon_args()).diagnostics("fr-blob", "id", "francecentral",
                                                     audit_categories=STORAGE_AUDIT_CATEGORIES)

    with pytest.raises(ValueError, match="only to a storage account in the resource's region"):
        run(program)
    with pytest.raises(ValueError, match="activity log export needs the audit archive"):
        run(lambda: SiteMonitoring("m", mon_args(audit=None)))


def test_the_harness_catches_inputs_the_sdk_did_not_translate():
    """A plain dict where the SDK expects a union type's Args class reaches the engine in
    snake_case (found here: MetricAlert.criteria); every program of these tests is checked."""
    assert untranslated_keys({"criteria": {"all_of": [{"metric_name": "x"}]}, "tags": {"my_tag": "v"}}) == [
        "criteria.all_of", "criteria.all_of[0].metric_name"]
