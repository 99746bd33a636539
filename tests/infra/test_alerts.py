"""Monitoring and alerting (issue 7, points 1 and 2): every alarm of the plan exists per site,
publishes to the site's encrypted topic, and its threshold traces to drplan."""

import json
import re

import pytest

from drplan.names import METRIC_NAMESPACE as NAMESPACE
from drplan.names import METRIC_SERVICE as SERVICE
from drplan.objectives import SCENARIO_OBJECTIVES
from drplan.recovery import ASSUMPTIONS
from drplan.thresholds import BACKUP_OVERDUE_AFTER, REPLICATION_TIME_CONTROL

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


def _spec_for(alarm_key, specs):
    from fnmatch import fnmatch

    matches = [spec for pattern, spec in specs.items() if fnmatch(alarm_key, pattern)]
    assert len(matches) == 1, (alarm_key, matches)
    return matches[0]


@pytest.mark.parametrize("stack", ["prod", "dr", "staging", "staging_dr", "activated_dr"])
def test_every_alarm_is_raised_from_its_spec(request, stack):
    """Wiring, not a restatement: each recorded alarm is its spec of `alarm_specs`, one table."""
    from infra.aws.monitoring import alarm_specs
    from infra.runbooks import stack_config

    run = request.getfixturevalue(stack)
    site = "dr" if "dr" in stack else "primary"
    specs = alarm_specs(stack_config(run.stack))
    for topic in (f"{site}-alerts", f"{site}-alerts-health"):
        if not any(r.name == topic for r in run.of_type("postoucancer:aws:AlertTopic")):
            continue
        for key, alarm in _alarms(run, topic).items():
            spec, i = _spec_for(key, specs), alarm.inputs
            assert (i["namespace"], i["metricName"], i["statistic"]) == (spec.namespace, spec.metric, spec.statistic)
            assert (i["comparisonOperator"], i["threshold"]) == (spec.comparison_operator, spec.threshold), key
            assert i["period"] == spec.period.total_seconds() and i["evaluationPeriods"] == spec.evaluation_periods
            assert i["treatMissingData"] == ("breaching" if spec.missing_data_breaches else "notBreaching")
            # CloudWatch: an alarm looks back at most 7 days.
            assert i["period"] * i["evaluationPeriods"] <= 7 * 86400, key


def test_thresholds_derive_from_the_plan_and_the_config():
    from infra.aws.monitoring import alarm_specs
    from infra.runbooks import stack_config

    cfg = stack_config("prod")
    specs = alarm_specs(cfg)
    overdue = specs["backup-overdue"]
    # Not a single success within the overdue window; missing data (no run at all) counts.
    assert overdue.period * overdue.evaluation_periods == BACKUP_OVERDUE_AFTER
    assert overdue.datapoints_to_alarm == overdue.evaluation_periods and overdue.missing_data_breaches
    assert specs["restore-too-slow"].threshold == min(o.rto for o in SCENARIO_OBJECTIVES.values()).total_seconds()
    assert specs["replica-lag"].threshold == ASSUMPTIONS.standby_lag_budget.total_seconds()
    assert specs["replication-latency-*"].threshold == REPLICATION_TIME_CONTROL.total_seconds()
    bigger = cfg.model_copy(update={"alerts": cfg.alerts.model_copy(update={"storage_quota_gb": 5000})})
    assert alarm_specs(bigger)["storage-quota"].threshold == 5000 * 1024**3
    assert specs["storage-quota"].threshold == cfg.alerts.storage_quota_gb * 1024**3


@pytest.mark.parametrize("stack", ["prod", "dr", "activated_dr"])
def test_alarms_watch_this_sites_own_resources(request, stack):
    run = request.getfixturevalue(stack)
    site = "dr" if "dr" in stack else "primary"
    alarms = _alarms(run, f"{site}-alerts")
    for fn in ("backup", "verify"):
        name = run.one("aws:lambda/function:Function", f"{site}-pg-{fn}").inputs["name"]
        for metric in ("errors", "throttles"):
            assert alarms[f"{fn}-{metric}"].inputs["dimensions"] == {"FunctionName": name}
    queue = run.one("aws:sqs/queue:Queue", f"{site}-pg-dlq")
    assert alarms["dead-letters"].inputs["dimensions"] == {"QueueName": queue.outputs["name"]}
    bucket = run.one("aws:s3/bucket:Bucket", f"{site}-pg-backups")
    assert alarms["storage-quota"].inputs["dimensions"] == {
        "BucketName": bucket.outputs["bucket"], "StorageType": "StandardStorage"}
    for key in ("backup-failed", "backup-overdue", "restore-test-failed", "restore-too-slow"):
        if key in alarms:
            assert alarms[key].inputs["dimensions"] == {"database": "postoucancer", "service": SERVICE}
            assert alarms[key].inputs["namespace"] == NAMESPACE


def test_the_standby_watches_its_replica_and_is_not_paged_for_backups_it_does_not_take(dr):
    alarms = _alarms(dr, "dr-alerts")
    replica = dr.one("aws:rds/instance:Instance", "dr-database")
    assert alarms["replica-lag"].inputs["dimensions"] == {"DBInstanceIdentifier": replica.outputs["identifier"]}
    assert "backup-overdue" not in alarms and "backup-failed" not in alarms


def test_s3_replication_alarms_name_the_dr_destination(prod, dr):
    alarms = _alarms(prod, "primary-alerts")
    for label, dest in (("files", "dr-files"), ("backups", "dr-pg-backups")):
        dest_bucket = dr.one("aws:s3/bucket:Bucket", dest)
        for kind in ("latency", "failed"):
            dims = alarms[f"replication-{kind}-{label}"].inputs["dimensions"]
            assert dims["DestinationBucket"] == dest_bucket.outputs["bucket"]


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
    # A site copying into the backup-only account also hears of its failed copies there.
    assert rules == RULES | ({"vault-copy-failed"} if "postoucancer-dr:vaultStack" in run.config else set())
    # Every alarm is raised from one spec of the table (which also says where its threshold comes from).
    from infra.aws.monitoring import alarm_specs
    from infra.runbooks import stack_config

    specs = alarm_specs(stack_config(run.stack))
    assert all(_spec_for(a, specs).source for a in alarms)
