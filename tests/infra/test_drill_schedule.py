"""The plan's testing schedule as code (issue 15, part 2), under the mock runtime: one model of the
periods, the monthly DR drill (restore testing + validation), the quarterly activation test and
the yearly review as tracked tasks, and their alarms. The data plane: tests/lambdas/test_restore_test.py."""

from __future__ import annotations

import io
import json
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from components.aws import cron
from components.aws.restore_testing import RESTORED_INSTANCE_PREFIX, completed_jobs_pattern
from components.aws.tracked_tasks import COMMANDS_KEY, DESCRIPTION_MAX, OPS_ITEM_TARGET, ops_item
from drplan.drills import dr_drill_bounds
from drplan.names import (
    ACTIVATION_TEST_AGE_SECONDS,
    ACTIVATION_TEST_NOT_RECORDED,
    DRILL_DATA_AGE_SECONDS,
    DRILL_RESTORE_SECONDS,
    DRILL_SUCCESS,
    METRIC_NAMESPACE,
    activation_test_parameter,
)
from drplan.objectives import SCENARIO_OBJECTIVES, Scenario
from drplan.periods import months, weeks, years
from drplan.recovery import ASSUMPTIONS, DR_VAULT_COPY, Topology, recovery_sources
from drplan.retention import Tier
from drplan.schedules import SCHEDULES, calendar_period
from drplan.thresholds import RESTORE_VALIDATION_WINDOW
from infra import activate, runbooks

ROOT = Path(__file__).resolve().parents[2]
PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FUNCTION = "aws:lambda/function:Function"
DAY_S = 86400


# --- one model of the periods ---------------------------------------------------------------


def test_each_testing_period_is_a_calendar_period_and_renders_once():
    s = SCHEDULES
    assert [calendar_period(p) for p in (s.restore_test_every, s.dr_drill_every, s.activation_test_every,
                                         s.plan_review_every)] == [weeks(1), months(1), months(3), years(1)]
    assert cron.testing(s.restore_test_every, s) == cron.restore_test(s)
    day, at = s.testing_day_of_month, s.testing_at
    assert cron.testing(s.dr_drill_every, s) == f"cron({at.minute} {at.hour} {day} * ? *)"
    assert cron.testing(s.activation_test_every, s) == f"cron({at.minute} {at.hour} {day} 1/3 ? *)"
    assert cron.testing(s.plan_review_every, s) == f"cron({at.minute} {at.hour} {day} 1 ? *)"
    with pytest.raises(ValueError, match="no whole number"):
        calendar_period(timedelta(days=45))
    with pytest.raises(ValueError, match="no cron rendering"):
        cron.testing(months(5).delta, s)


# How a testing period would be spelled if a realisation wrote it itself: drplan.schedules holds them.
# (Retention bounds that happen to have the same length, e.g. a provider's `days(7)` minimum, are
# other numbers: they are not spelled as these calendar periods.)
def _spellings() -> re.Pattern:
    s = SCHEDULES
    testing = (s.restore_test_every, s.dr_drill_every, s.activation_test_every, s.plan_review_every)
    calendar = {f"{p.unit.name.lower()}({p.count})" for p in map(calendar_period, testing)}
    literal = {f"timedelta(days={t.days})" for t in testing} | {"timedelta(weeks=1)", "WEEK"}
    return re.compile("|".join(rf"(?<![\w.]){re.escape(x)}(?!\w)" for x in sorted(calendar | literal)))


def test_no_realisation_spells_a_testing_period():
    spelled = _spellings()
    assert spelled.search("every = months(3)") and spelled.search("timedelta(days=366)")
    assert not spelled.search("MIN_VAULT_RETENTION = days(7)")
    stray = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for package in ("infra", "components", "lambdas", "policy", "drill")
             for path in (ROOT / package).rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if spelled.search(line.split("#", 1)[0])]
    assert stray == [], "testing periods belong to drplan.schedules"


# --- the monthly DR drill ------------------------------------------------------------------------


def test_the_monthly_drill_restores_the_latest_locked_copy_in_the_dr_region(dr, prod):
    plan = dr.one(PLAN, "dr-drill")
    assert plan.region == "eu-central-1"
    assert plan.inputs["scheduleExpression"] == cron.testing(SCHEDULES.dr_drill_every, SCHEDULES)
    assert plan.inputs["scheduleExpressionTimezone"] == "Etc/UTC" and plan.inputs["startWindowHours"] == 1
    rps = plan.inputs["recoveryPointSelection"]
    # The DR vault is the compliance-locked copy target; only its latest point of the drill's period.
    assert rps == {"algorithm": "LATEST_WITHIN_WINDOW", "includeVaults": [dr.outputs["drBackupVaultArn"]],
                   "recoveryPointTypes": ["SNAPSHOT"], "selectionWindowDays": SCHEDULES.dr_drill_every.days}
    assert dr.one("aws:backup/vaultLockConfiguration:VaultLockConfiguration").inputs["changeableForDays"]
    sel = dr.one(SELECTION, "dr-drill")
    assert sel.inputs["restoreTestingPlanName"] == plan.outputs["name"]
    assert sel.inputs["protectedResourceType"] == "RDS"
    assert sel.inputs["protectedResourceArns"] == [prod.outputs["databaseInstanceArn"]]
    assert sel.inputs["iamRoleArn"] == dr.one("aws:iam/role:Role", "dr-backup-role").outputs["arn"]
    # The temporary instance: private, in the DR site's database network, deleted by AWS Backup
    # when the validation window closes.
    overrides = sel.inputs["restoreMetadataOverrides"]
    assert overrides["publiclyaccessible"] == "false"
    assert overrides["dbsubnetgroupname"] == dr.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    db_sg = dr.one("aws:ec2/securityGroup:SecurityGroup", "database").id
    assert json.loads(overrides["vpcsecuritygroupids"]) == [db_sg]
    assert sel.inputs["validationWindowHours"] * 3600 == RESTORE_VALIDATION_WINDOW.total_seconds()


def test_the_drill_is_validated_by_a_function_on_its_completed_jobs(dr):
    plan = dr.one(PLAN, "dr-drill")
    rule = dr.one("aws:cloudwatch/eventRule:EventRule", "dr-drill-completed")
    assert json.loads(rule.inputs["eventPattern"]) == json.loads(completed_jobs_pattern(plan.outputs["arn"]))
    fn = dr.one(FUNCTION, "dr-drill-check")
    target = dr.one("aws:cloudwatch/eventTarget:EventTarget", "dr-drill-completed")
    assert target.inputs["arn"] == fn.outputs["arn"] and target.inputs["rule"] == rule.outputs["name"]
    permission = dr.one("aws:lambda/permission:Permission", "dr-drill-completed")
    assert (permission.inputs["principal"], permission.inputs["sourceArn"]) == ("events.amazonaws.com",
                                                                               rule.outputs["arn"])
    assert fn.inputs["imageConfig"]["commands"] == ["awslambdaric", "lambdas.aws_lambda.restore_test_handler"]
    assert fn.inputs["imageUri"] == dr.one(FUNCTION, "dr-pg-verify").inputs["imageUri"]
    env = fn.inputs["environment"]["variables"]
    assert env["RESTORE_TEST_PLAN_ARN"] == plan.outputs["arn"] and env["BACKUP_DATABASE"] == "postoucancer"
    assert env["DB_SECRET_ARN"] == dr.outputs["databaseSecretArn"]  # the DR replica of prod's secret
    # In the DR site's private network, with the functions' group (admitted to the database on 5432).
    functions_sg = dr.one("aws:ec2/securityGroup:SecurityGroup", "functions").id
    assert fn.inputs["vpcConfig"]["securityGroupIds"] == [functions_sg]
    # It must finish, retries included, well within the validation window.
    assert fn.inputs["timeout"] * 3 + 180 < RESTORE_VALIDATION_WINDOW.total_seconds()
    policy = json.loads(dr.one("aws:iam/rolePolicy:RolePolicy", "dr-drill-check").inputs["policy"])
    grants = {s["Sid"]: s for s in policy["Statement"]}
    assert grants["DescribeRestoredInstances"]["Resource"].endswith(f":db:{RESTORED_INSTANCE_PREFIX}*")
    assert grants["ReportValidation"]["Action"] == ["backup:PutRestoreValidationResult"]
    assert grants["PublishDrillMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}
    assert not any(a.startswith(("rds:Delete", "rds:Modify", "backup:Delete")) for s in policy["Statement"]
                   for a in s["Action"])
    # The validator reaches the RDS and AWS Backup APIs from the VPC.
    services = {e.inputs["serviceName"].rsplit(".", 1)[-1] for e in dr.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert {"rds", "backup", "secretsmanager", "monitoring"} <= services


def test_the_drill_bounds_are_the_objectives_less_the_other_steps():
    topology = Topology(tier=Tier.PROD, database_size_gb=20)
    bounds = dr_drill_bounds(topology)
    a = ASSUMPTIONS
    rto = min(SCENARIO_OBJECTIVES[s].rto for s in (Scenario.DATACENTRE_LOSS, Scenario.RANSOMWARE))
    assert bounds.restore_within == rto - a.detection - a.verify_and_cutover - a.scale_application - a.dns_switch
    source = next(s for s in recovery_sources(topology) if s.name == DR_VAULT_COPY)
    assert bounds.data_age_within == source.rpo == SCHEDULES.incremental_every
    tight = {s: o.__class__(rto=timedelta(minutes=30), rpo=o.rpo) for s, o in SCENARIO_OBJECTIVES.items()}
    with pytest.raises(ValueError, match="no time to restore"):
        dr_drill_bounds(topology, tight)


def test_the_drill_alarms_on_what_the_validator_publishes(dr):
    alarms = {r.name.removeprefix("dr-alerts-"): r.inputs for r in dr.of_type(ALARM)}
    bounds = dr_drill_bounds(Topology(tier=Tier.PROD, database_size_gb=20))
    slow, old = bounds.restore_within.total_seconds(), bounds.data_age_within.total_seconds()
    expected = {
        "drill-failed": (DRILL_SUCCESS, "LessThanThreshold", 1),
        "drill-restore-too-slow": (DRILL_RESTORE_SECONDS, "GreaterThanThreshold", slow),
        "drill-data-too-old": (DRILL_DATA_AGE_SECONDS, "GreaterThanThreshold", old),
    }
    for key, (metric, op, threshold) in expected.items():
        a = alarms[key]
        assert (a["namespace"], a["metricName"], a["comparisonOperator"], a["threshold"]) == (
            METRIC_NAMESPACE, metric, op, threshold)
        assert a["dimensions"] == {"database": "postoucancer"}  # what lambdas/core/restore_test.py publishes
    for key in ("drill-check-errors", "drill-check-dead-letters", "activation-age-errors"):
        assert alarms[key]["alarmActions"], key
    board = json.loads(dr.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (widget,) = [w for w in board["widgets"] if w["type"] == "alarm"]
    assert {r.outputs["arn"] for r in dr.of_type(ALARM) if r.name.startswith("dr-alerts-drill")} <= set(
        widget["properties"]["alarms"])


def test_the_primary_has_no_drill_and_the_dr_waits_for_its_database(prod):
    assert not [r for r in prod.of_type(PLAN) if "drill" in r.name]
    assert "testingSchedule" not in prod.outputs
    from infra.mockrun import run_stack

    lonely = run_stack("dr", peer_outputs=None)
    assert not [r for r in lonely.of_type(PLAN) if "drill" in r.name]
    assert "databaseInstanceArn" in lonely.outputs["nextStep"]
    assert lonely.outputs["testingSchedule"]["drDrill"]["plan"] is None


# --- the quarterly activation test and the yearly review -----------------------------------------


def _ops_item(run, name):
    sched = run.one(SCHEDULE, f"{name}-opens")
    assert sched.inputs["target"]["arn"] == OPS_ITEM_TARGET
    return sched, json.loads(sched.inputs["target"]["input"])


def test_the_quarterly_task_carries_the_dry_run_and_the_failover_runbook(dr):
    sched, item = _ops_item(dr, "dr-activation-test")
    assert sched.inputs["scheduleExpression"] == cron.testing(SCHEDULES.activation_test_every, SCHEDULES)
    assert sched.inputs["state"] == "ENABLED" and sched.region == "eu-central-1"
    commands = item["OperationalData"][COMMANDS_KEY]["Value"].splitlines()
    runbook = [c.text for c in runbooks.commands(runbooks.runbook_path(Scenario.DATACENTRE_LOSS))]
    assert commands == [activate.command("--stack", "dr", "--dry-run"), *runbook,
                        activate.command("--stack", "dr", "--record-test")]
    assert "python -m infra.activate --stack dr --dry-run" in item["Description"]
    assert len(item["Description"]) <= DESCRIPTION_MAX
    # The same text reaches the on-call topic.
    notify = dr.one(SCHEDULE, "dr-activation-test-notifies")
    (topic,) = [t.outputs["arn"] for t in dr.of_type("aws:sns/topic:Topic") if t.name == "dr-alerts"]
    assert notify.inputs["target"]["arn"] == topic and all(c in notify.inputs["target"]["input"] for c in commands)
    policy = json.loads(dr.one("aws:iam/rolePolicy:RolePolicy", "dr-activation-test").inputs["policy"])
    assert {s["Sid"]: s["Resource"] for s in policy["Statement"]}["NotifyOnCall"] == topic


def test_the_yearly_review_is_a_tracked_task_too(dr):
    sched, item = _ops_item(dr, "dr-plan-review")
    assert sched.inputs["scheduleExpression"] == cron.testing(SCHEDULES.plan_review_every, SCHEDULES)
    assert "python -m infra.plan" in item["OperationalData"][COMMANDS_KEY]["Value"]


def test_an_ops_item_beyond_the_api_bounds_is_refused():
    """SSM API CreateOpsItem: Description 1..2048 characters, Title 1..1024."""
    with pytest.raises(ValueError, match=r"description is 1\.\.2048"):
        ops_item("t", "x" * (DESCRIPTION_MAX + 1), "c", "Recovery", "2")
    with pytest.raises(ValueError, match="title"):
        ops_item("", "d", "c", "Recovery", "2")


def test_the_activation_test_age_is_published_daily_and_alarmed_past_a_quarter_and_grace(dr):
    record = dr.one("aws:ssm/parameter:Parameter", "activation-watch-record")
    assert record.inputs["name"] == activation_test_parameter("dr") and record.ignore_changes == ["value"]
    assert record.inputs["value"] == ACTIVATION_TEST_NOT_RECORDED  # the clock runs from its creation
    daily = dr.one(SCHEDULE, "dr-activation-watch-daily")
    fn = dr.one(FUNCTION, "dr-activation-watch-age")
    assert daily.inputs["target"]["arn"] == fn.outputs["arn"]
    assert daily.inputs["scheduleExpression"] == cron.daily_at(SCHEDULES.testing_at)
    assert fn.inputs["environment"]["variables"] == {"ACTIVATION_TEST_PARAMETER": record.outputs["name"],
                                                     "ACTIVATION_TEST_STACK": "dr"}
    alarm = dr.one(ALARM, "activation-test-overdue").inputs
    assert (alarm["metricName"], alarm["dimensions"]) == (ACTIVATION_TEST_AGE_SECONDS, {"stack": "dr"})
    assert alarm["threshold"] == (SCHEDULES.activation_test_every + SCHEDULES.activation_test_grace).total_seconds()
    assert alarm["treatMissingData"] == "breaching"  # a dead clock pages too
    # PutMetricAlarm: Period x EvaluationPeriods at most 7 days (1 day below an hour's period): a
    # quarter cannot be watched by an alarm on the test itself, hence the daily age.
    assert alarm["period"] == DAY_S and alarm["period"] * alarm["evaluationPeriods"] <= 7 * DAY_S


# --- recording an activation test ----------------------------------------------------------------


@pytest.fixture
def fake_aws(tmp_path):
    log = tmp_path / "calls.log"
    script = tmp_path / "aws"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nif [ -n "$FAIL" ]; then exit 5; fi\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def test_record_test_writes_the_record_the_watch_reads(fake_aws, monkeypatch):
    script, log = fake_aws
    out = io.StringIO()
    assert activate.main(["--record-test", "--at", "2026-11-27T21:00:00Z", "--aws", str(script)], out=out) == 0
    assert log.read_text().split() == ["ssm", "put-parameter", "--name", activation_test_parameter("dr"), "--type",
                                       "String", "--value", "2026-11-27T21:00:00Z", "--overwrite", "--region",
                                       "eu-central-1"]
    monkeypatch.setenv("FAIL", "1")
    assert activate.main(["--record-test", "--aws", str(script)], out=io.StringIO()) == 1
    assert activate.main(["--record-test", "--at", "2999-01-01T00:00:00Z", "--aws", str(script)],
                         out=io.StringIO()) == 2
    assert activate.main(["--record-test", "--stack", "staging-dr", "--dry-run", "--aws", str(script)],
                         out=out) == 0
    assert len(log.read_text().splitlines()) == 2, "a dry run records nothing"
