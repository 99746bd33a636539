"""Monitoring and alerting (issue 7, points 1 and 2): every alarm of the plan exists per site,
publishes to the site's encrypted topic, and its threshold traces to drplan."""

import json
import re

import pytest

from drplan.objectives import SCENARIO_OBJECTIVES
from drplan.recovery import ASSUMPTIONS
from drplan.thresholds import BACKUP_OVERDUE_AFTER, REPLICATION_TIME_CONTROL
from lambdas.core.telemetry import NAMESPACE, SERVICE

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"
TOPIC = "aws:sns/topic:Topic"


def _alarms(run, topic_name):
    topic = next(r for r in run.of_type("postoucancer:aws:AlertTopic") if r.name == topic_name)
    return {r.name.removeprefix(f"{topic_name}-"): r for r in run.children_of(topic) if r.type == ALARM}


def _topic(run, name):
    return next(r for r in run.of_type(TOPIC) if r.name == name)


@pytest.fixture(scope="module")
def activated_dr(pair_prod):
    from infra.mockrun import run_stack

    return run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={"postoucancer-dr:activated": True})


@pytest.mark.parametrize("stack", ["prod", "dr", "staging", "staging_dr"])
def test_every_site_has_an_encrypted_topic_with_the_configured_subscribers(request, stack):
    run = request.getfixturevalue(stack)
    site = "dr" if stack.endswith("dr") else "primary"
    topic = _topic(run, f"{site}-alerts")
    key = next(r for r in run.of_type("aws:kms/key:Key") if r.name == f"{site}-alerts-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"] and key.protect
    statements = json.loads(key.inputs["policy"])["Statement"]
    publishers = next(s for s in statements if s.get("Sid") == "AlertPublishersUseTheKey")
    assert {"cloudwatch.amazonaws.com", "events.amazonaws.com"} <= set(publishers["Principal"]["Service"])
    emails = json.loads(run.config["postoucancer-dr:alerts"])["emails"]
    own = re.compile(rf"^{site}-alerts-(email|webhook)-\d+$")
    subs = [r for r in run.of_type("aws:sns/topicSubscription:TopicSubscription") if own.match(r.name)]
    assert sorted(s.inputs["endpoint"] for s in subs if s.inputs["protocol"] == "email") == sorted(emails)
    assert all(s.inputs["topic"] == topic.outputs["arn"] for s in subs)
    policy = json.loads(run.one("aws:sns/topicPolicy:TopicPolicy", f"{site}-alerts-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["AlarmsOfThisAccount"]["Condition"]["ArnLike"]["aws:SourceArn"].startswith("arn:aws:cloudwatch:")


def test_webhooks_subscribe_over_https(pair_prod):
    from infra.mockrun import run_stack

    run = run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={"postoucancer-dr:alerts": {"emails": [], "webhooks": ["https://hooks.example/alerts"]}},
    )
    subs = [r for r in run.of_type("aws:sns/topicSubscription:TopicSubscription") if "alerts" in r.name]
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in subs] == [("https", "https://hooks.example/alerts")]


@pytest.mark.parametrize("stack", ["prod", "dr", "staging", "staging_dr"])
def test_every_alarm_and_rule_publishes_to_the_site_topic(request, stack):
    run = request.getfixturevalue(stack)
    site = "dr" if stack.endswith("dr") else "primary"
    topic = _topic(run, f"{site}-alerts")
    alarms = _alarms(run, f"{site}-alerts")
    assert alarms
    for a in alarms.values():
        assert a.inputs["alarmActions"] == [topic.outputs["arn"]] and a.inputs["okActions"] == [topic.outputs["arn"]]
        assert a.region == topic.region
    targets = [t for t in run.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.name.startswith(f"{site}-alerts-")]
    rules = [r for r in run.of_type(RULE) if r.name.startswith(f"{site}-alerts-")]
    assert len(targets) == len(rules) >= 3 and all(t.inputs["arn"] == topic.outputs["arn"] for t in targets)


def test_aws_backup_failures_are_rules(prod):
    rules = {r.name: json.loads(r.inputs["eventPattern"]) for r in prod.of_type(RULE)}
    job = rules["primary-alerts-backup-job-failed"]
    assert job["source"] == ["aws.backup"] and job["detail-type"] == ["Backup Job State Change"]
    assert set(job["detail"]["state"]) == {"FAILED", "EXPIRED", "ABORTED"}
    restore = rules["primary-alerts-restore-job-failed"]
    assert restore["detail-type"] == ["Restore Job State Change"]
    assert rules["primary-alerts-copy-job-failed"]["detail-type"] == ["Copy Job State Change"]


@pytest.mark.parametrize("stack", ["prod", "staging", "activated_dr"])
def test_backup_alarms_trace_to_the_model(request, stack):
    run = request.getfixturevalue(stack)
    site = "dr" if "dr" in stack else "primary"
    alarms = _alarms(run, f"{site}-alerts")
    dims = {"database": "postoucancer", "service": SERVICE}
    overdue = alarms["backup-overdue"].inputs
    assert overdue["namespace"] == NAMESPACE and overdue["metricName"] == "BackupSuccess"
    assert overdue["dimensions"] == dims
    # Not a single success within the overdue window (missing data counts as breaching).
    assert overdue["period"] * overdue["evaluationPeriods"] == BACKUP_OVERDUE_AFTER.total_seconds()
    assert overdue["datapointsToAlarm"] == overdue["evaluationPeriods"]
    assert overdue["treatMissingData"] == "breaching"
    assert overdue["comparisonOperator"] == "LessThanThreshold" and overdue["threshold"] == 1
    # CloudWatch: period x evaluation periods at most 7 days, and only with periods of >= 1 h beyond 1 day.
    assert overdue["period"] >= 3600 and overdue["period"] * overdue["evaluationPeriods"] <= 7 * 86400
    failed = alarms["backup-failed"].inputs
    assert (failed["metricName"], failed["statistic"], failed["threshold"]) == ("BackupSuccess", "Minimum", 1)
    verify = alarms["restore-test-failed"].inputs
    assert (verify["metricName"], verify["comparisonOperator"], verify["threshold"]) == (
        "VerifySuccess",
        "LessThanThreshold",
        1,
    )
    slow = alarms["restore-too-slow"].inputs
    assert slow["threshold"] == min(o.rto for o in SCENARIO_OBJECTIVES.values()).total_seconds()


@pytest.mark.parametrize("stack", ["prod", "dr", "activated_dr"])
def test_function_errors_throttles_and_dead_letters_are_alarmed(request, stack):
    run = request.getfixturevalue(stack)
    site = "dr" if "dr" in stack else "primary"
    alarms = _alarms(run, f"{site}-alerts")
    for fn in ("backup", "verify"):
        name = next(
            f.inputs["name"] for f in run.of_type("aws:lambda/function:Function") if f.name == f"{site}-pg-{fn}"
        )
        for metric in ("Errors", "Throttles"):
            a = alarms[f"{fn}-{metric.lower()}"].inputs
            assert (a["namespace"], a["metricName"], a["dimensions"]) == ("AWS/Lambda", metric, {"FunctionName": name})
            assert a["comparisonOperator"] == "GreaterThanThreshold" and a["threshold"] == 0
    dlq = alarms["dead-letters"].inputs
    queue = run.one("aws:sqs/queue:Queue", f"{site}-pg-dlq")
    assert dlq["dimensions"] == {"QueueName": queue.outputs["name"]} and dlq["threshold"] == 0


def test_replica_lag_alarm_uses_the_models_budget(dr):
    alarms = _alarms(dr, "dr-alerts")
    lag = alarms["replica-lag"].inputs
    replica = next(r for r in dr.of_type("aws:rds/instance:Instance") if r.name == "dr-database")
    assert lag["namespace"] == "AWS/RDS" and lag["metricName"] == "ReplicaLag"
    assert lag["dimensions"] == {"DBInstanceIdentifier": replica.outputs["identifier"]}
    assert lag["threshold"] == ASSUMPTIONS.standby_lag_budget.total_seconds()
    assert lag["treatMissingData"] == "breaching"
    # A standby that takes no backups is not paged for missing ones.
    assert "backup-overdue" not in alarms and "backup-failed" not in alarms


def test_s3_replication_alarms_use_rtc_from_the_model(prod, dr):
    alarms = _alarms(prod, "primary-alerts")
    for label, dest in (("files", "dr-files"), ("backups", "dr-pg-backups")):
        latency = alarms[f"replication-latency-{label}"].inputs
        assert latency["metricName"] == "ReplicationLatency"
        assert latency["threshold"] == REPLICATION_TIME_CONTROL.total_seconds()
        dest_bucket = next(b for b in dr.of_type("aws:s3/bucket:Bucket") if b.name == dest)
        assert latency["dimensions"]["DestinationBucket"] == dest_bucket.outputs["bucket"]
        failed = alarms[f"replication-failed-{label}"].inputs
        assert failed["metricName"] == "OperationsFailedReplication" and failed["threshold"] == 0


def test_storage_quota_comes_from_config(prod):
    quota_gb = 2000  # infra.config.Alerts default (the stack file sets none)
    alarm = _alarms(prod, "primary-alerts")["storage-quota"].inputs
    bucket = next(b for b in prod.of_type("aws:s3/bucket:Bucket") if b.name == "primary-pg-backups")
    assert alarm["dimensions"] == {"BucketName": bucket.outputs["bucket"], "StorageType": "StandardStorage"}
    assert alarm["threshold"] == quota_gb * 1024**3
    from infra.config import Alerts

    assert Alerts().storage_quota_gb == quota_gb


def test_dr_site_health_alarms_live_next_to_route53_metrics(dr, prod):
    alarms = _alarms(dr, "dr-alerts-health")
    checks = {c.name: c for c in dr.of_type("aws:route53/healthCheck:HealthCheck")}
    assert set(alarms) == {"dr-health", "primary-health"}
    for a in alarms.values():
        assert a.region == "us-east-1" and a.inputs["metricName"] == "HealthCheckStatus"
        assert a.inputs["treatMissingData"] == "breaching"
    topic = _topic(dr, "dr-alerts-health")
    assert topic.region == "us-east-1" and alarms["dr-health"].inputs["alarmActions"] == [topic.outputs["arn"]]
    assert checks and not prod.of_type("aws:route53/healthCheck:HealthCheck")


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_dashboard_shows_what_the_plan_monitors(request, stack):
    run = request.getfixturevalue(stack)
    board = run.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(board.inputs["dashboardBody"])
    metrics = {m[1] for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]}
    assert {
        "BackupSuccess",
        "VerifySuccess",
        "BackupBytes",
        "BackupDurationSeconds",
        "RestoreDurationSeconds",
    } <= metrics
    assert "BucketSizeBytes" in metrics
    assert ("ReplicaLag" in metrics) == (stack == "dr")
    alarm_widget = next(w for w in body["widgets"] if w["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(
        _alarms(run, f"{'dr' if stack == 'dr' else 'primary'}-alerts")
    )
    assert all(w["x"] + w["width"] <= 24 for w in body["widgets"])


PRIMARY_ALARMS = {
    "backup-failed",
    "backup-overdue",
    "restore-test-failed",
    "restore-too-slow",
    "replication-latency-files",
    "replication-failed-files",
    "replication-latency-backups",
    "replication-failed-backups",
    "storage-quota",
    "backup-errors",
    "backup-throttles",
    "verify-errors",
    "verify-throttles",
    "dead-letters",
}
STANDBY_ALARMS = {
    "replica-lag",
    "storage-quota",
    "backup-errors",
    "backup-throttles",
    "verify-errors",
    "verify-throttles",
    "dead-letters",
}
RULES = {"backup-job-failed", "copy-job-failed", "restore-job-failed"}


@pytest.mark.parametrize(
    "stack,site,expected",
    [
        ("prod", "primary", PRIMARY_ALARMS),
        ("staging", "primary", PRIMARY_ALARMS),
        ("dr", "dr", STANDBY_ALARMS),
        ("staging_dr", "dr", STANDBY_ALARMS),
        # Activated, the DR site takes the backups: their alarms follow; the replica is promoted.
        ("activated_dr", "dr", (STANDBY_ALARMS - {"replica-lag"}) | {"backup-failed", "backup-overdue"}),
    ],
)
def test_every_alarm_of_the_plan_exists_per_site(request, stack, site, expected):
    run = request.getfixturevalue(stack)
    alarms = set(_alarms(run, f"{site}-alerts"))
    assert expected <= alarms, expected - alarms
    rules = {r.name.removeprefix(f"{site}-alerts-") for r in run.of_type(RULE) if r.name.startswith(f"{site}-alerts-")}
    assert rules == RULES
    # Every alarm is one of those documented in infra.aws.monitoring.ALARMS (with its source).
    from fnmatch import fnmatch

    from infra.aws.monitoring import ALARMS

    assert all(any(fnmatch(a, pattern) for pattern in ALARMS) for a in alarms)
