"""The plan's periodic tests, data plane: the monthly DR drill's validation of a restore-testing job
and the daily age of the last recorded activation test.

Real PostgreSQL (the session's database stands in for the instance AWS Backup restored), moto for
RDS (the restored instance's endpoint, the recovery point's creation time), Secrets Manager, SSM
and CloudWatch (the published metrics are read back from it), and tests/lambdas/backup_api.py for
AWS Backup's PutRestoreValidationResult, which moto does not implement. The restored instance's
RDS name is mapped to the local server with libpq's PGHOSTADDR, as a resolver would map it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import psycopg
import pytest

from drplan.names import (
    ACTIVATION_TEST_AGE_SECONDS,
    ACTIVATION_TEST_NOT_RECORDED,
    DRILL_DATA_AGE_SECONDS,
    DRILL_RESTORE_SECONDS,
    DRILL_SUCCESS,
    METRIC_NAMESPACE,
    activation_test_parameter,
)
from lambdas import service
from lambdas.core.errors import DataPlaneError, InvalidRequest
from lambdas.core.pg import row_counts

from .backup_api import BackupValidationApi
from .conftest import DATABASE

REGION = "eu-central-1"  # the DR region, where the drill runs
ACCOUNT = "123456789012"
PLAN_ARN = f"arn:aws:backup:{REGION}:{ACCOUNT}:restore-testing-plan:postoucancer_dr_drill-abc123"
JOB = "7A6B5C4D-0000-4000-8000-000000000001"
RESTORED = "awsbackup-restore-test-1a2b3c"
RESTORE_TOOK = timedelta(minutes=23, seconds=5)


@pytest.fixture(scope="module")
def world(pg, moto_server):
    """One moto world for the module (each test its own job, times and names): prod's database,
    its snapshot copied into the DR vault, the restored instance on the session's PostgreSQL, one
    restored instance nothing listens on, the site's secret; AWS Backup's validation API."""
    moto_server.reset()
    api = BackupValidationApi().start()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in moto_server.client_env(REGION).items():
            mp.setenv(k, v)
        mp.setenv("AWS_ENDPOINT_URL_BACKUP", api.endpoint)
        mp.setenv("PGHOSTADDR", "127.0.0.1")  # the restored instance's RDS name -> the local server
        session = boto3.session.Session()
        rds = session.client("rds")
        common = {"Engine": "postgres", "DBInstanceClass": "db.r6g.large", "MasterUsername": "postgres",
                  "MasterUserPassword": "unused-with-trust-auth", "AllocatedStorage": 20}
        rds.create_db_instance(DBInstanceIdentifier="primary-database", **common)
        source = rds.create_db_snapshot(DBSnapshotIdentifier="job-5f1e", DBInstanceIdentifier="primary-database")
        copy = rds.copy_db_snapshot(SourceDBSnapshotIdentifier=source["DBSnapshot"]["DBSnapshotArn"],
                                    TargetDBSnapshotIdentifier="copyjob-9d2c")["DBSnapshot"]
        restored = rds.create_db_instance(DBInstanceIdentifier=RESTORED, Port=pg.port, **common)["DBInstance"]
        closed = rds.create_db_instance(DBInstanceIdentifier=f"{RESTORED}-closed", Port=1, **common)["DBInstance"]
        secret = session.client("secretsmanager").create_secret(
            Name="prod-database-credentials-replica",
            SecretString=json.dumps({"username": "postgres", "password": "unused-with-trust-auth",
                                     "host": "primary-database.eu-west-3.rds.amazonaws.com", "dbname": DATABASE}))
        yield {"api": api, "cloudwatch": session.client("cloudwatch"), "ssm": session.client("ssm"), "copy": copy,
               "restored": restored, "closed": closed, "secret": secret["ARN"], "tests": iter(range(1000))}
    api.stop()


@pytest.fixture
def drill(world):
    """A completed restore-testing job of its own (job id, start time), and the function's settings."""
    n = next(world["tests"])
    job = f"{JOB[:-4]}{n:04d}"
    world["api"].jobs, world["api"].validations = {job}, []
    taken = world["copy"]["OriginalSnapshotCreateTime"]
    # The drill's job started this long after the data was taken; each test an hour apart, so that
    # each reads back its own datapoints.
    started = taken + timedelta(hours=4, minutes=7) + timedelta(hours=3 * n)
    event = {
        "version": "0", "id": "e1", "source": "aws.backup", "detail-type": "Restore Job State Change",
        "account": ACCOUNT, "region": REGION, "time": _iso(started),
        "detail": {
            "restoreJobId": job, "status": "COMPLETED", "resourceType": "RDS", "percentDone": "100.00%",
            "createdResourceArn": world["restored"]["DBInstanceArn"],
            "recoveryPointArn": world["copy"]["DBSnapshotArn"],
            "restoreTestingPlanArn": PLAN_ARN, "backupSizeInBytes": "0",
            "creationDate": _iso(started), "completionDate": _iso(started + RESTORE_TOOK),
        },
    }
    env = {"BACKUP_DATABASE": DATABASE, "DB_SECRET_ARN": world["secret"], "RESTORE_TEST_PLAN_ARN": PLAN_ARN}
    return {**world, "event": event, "env": env, "job": job, "taken": taken, "started": started,
            "completed": started + RESTORE_TOOK}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _published(cloudwatch, at: datetime, database: str = DATABASE) -> dict[str, float]:
    out = {}
    for name in (DRILL_SUCCESS, DRILL_RESTORE_SECONDS, DRILL_DATA_AGE_SECONDS):
        points = cloudwatch.get_metric_statistics(
            Namespace=METRIC_NAMESPACE, MetricName=name, Dimensions=[{"Name": "database", "Value": database}],
            StartTime=at - timedelta(minutes=5), EndTime=at + timedelta(minutes=5), Period=60, Statistics=["Maximum"],
        )["Datapoints"]
        if points:
            (point,) = points
            out[name] = point["Maximum"]
    return out


def test_a_sound_restore_is_measured_published_and_reported_successful(drill, pg):
    env = {**drill["env"], "VERIFY_PROBES": json.dumps([{"name": "users", "sql": "SELECT count(*) FROM users",
                                                          "min": 1}])}
    result = service.validate_restore(drill["event"], env)

    with psycopg.connect(pg.dsn(DATABASE)) as conn:
        expected_counts = row_counts(conn)
    assert result["status"] == "SUCCESSFUL" and result["cause"] is None
    assert result["row_counts"] == expected_counts and result["probes"] == {"users": expected_counts["public.users"]}
    # Measured from the real values: AWS Backup's job times and the copy's original creation time.
    assert result["restore_seconds"] == RESTORE_TOOK.total_seconds()
    age = (drill["started"] - drill["taken"]).total_seconds()
    assert result["data_age_seconds"] == pytest.approx(age, abs=0.01)
    assert _published(drill["cloudwatch"], drill["completed"]) == {
        DRILL_SUCCESS: 1.0, DRILL_RESTORE_SECONDS: RESTORE_TOOK.total_seconds(),
        DRILL_DATA_AGE_SECONDS: pytest.approx(age, abs=0.01)}
    (reported,) = drill["api"].validations
    assert reported["RestoreJobId"] == drill["job"] and reported["ValidationStatus"] == "SUCCESSFUL"
    assert f"{len(expected_counts)} tables" in reported["ValidationStatusMessage"]


@pytest.mark.parametrize("fault,cause", [
    ("probe", "probe_failed"),
    ("empty", "restore_empty"),
    ("refused", "database_unreachable"),
    ("no_instance", "restored_instance_missing"),
])
def test_a_failed_check_is_reported_failed_never_successful(drill, pg, fault, cause):
    env = dict(drill["env"])
    event = json.loads(json.dumps(drill["event"]))
    if fault == "probe":
        env["VERIFY_PROBES"] = json.dumps([{"name": "users", "sql": "SELECT count(*) FROM users", "equals": -1}])
    elif fault == "empty":
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS drill_empty")
            conn.execute("CREATE DATABASE drill_empty")
        env["BACKUP_DATABASE"] = "drill_empty"
    elif fault == "refused":
        event["detail"]["createdResourceArn"] = drill["closed"]["DBInstanceArn"]
    else:
        event["detail"]["createdResourceArn"] = drill["restored"]["DBInstanceArn"].replace(RESTORED, "gone-away")

    result = service.validate_restore(event, env)

    assert result["status"] == "FAILED" and result["cause"] == cause
    (reported,) = drill["api"].validations
    assert reported["ValidationStatus"] == "FAILED" and reported["ValidationStatusMessage"].startswith(cause)
    published = _published(drill["cloudwatch"], drill["completed"], env["BACKUP_DATABASE"])
    assert published[DRILL_SUCCESS] == 0.0 and published[DRILL_RESTORE_SECONDS] == RESTORE_TOOK.total_seconds()
    # The data's age is measured whatever the restored instance does.
    assert published[DRILL_DATA_AGE_SECONDS] == pytest.approx((drill["started"] - drill["taken"]).total_seconds(),
                                                              abs=0.01)


@pytest.mark.parametrize("change,field", [
    ({"status": "FAILED"}, "event.detail.status"),
    ({"resourceType": "EBS"}, "event.detail.resourceType"),
    ({"restoreTestingPlanArn": None}, "event.detail.restoreTestingPlanArn"),
    ({"restoreTestingPlanArn": PLAN_ARN.replace("drill", "other")}, "event.detail.restoreTestingPlanArn"),
    ({"createdResourceArn": "arn:aws:ec2:eu-central-1:123456789012:volume/vol-1"}, "event.detail.createdResourceArn"),
    ({"completionDate": "2020-01-01T00:00:00Z"}, "event.detail"),
])
def test_a_bad_event_is_refused_naming_the_field_and_nothing_is_reported(drill, change, field):
    event = json.loads(json.dumps(drill["event"]))
    for k, v in change.items():
        if v is None:
            del event["detail"][k]
        else:
            event["detail"][k] = v
    with pytest.raises(InvalidRequest) as err:
        service.validate_restore(event, drill["env"])
    assert any(p["field"] == field and p["fix"] for p in err.value.problems), err.value.problems
    assert drill["api"].validations == []
    assert _published(drill["cloudwatch"], drill["completed"]) == {}


def test_bad_settings_are_refused_before_anything_runs(drill):
    unset = {k: v for k, v in drill["env"].items() if k != "RESTORE_TEST_PLAN_ARN"}
    with pytest.raises(InvalidRequest, match="RESTORE_TEST_PLAN_ARN"):
        service.validate_restore(drill["event"], unset)
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        service.validate_restore(["not", "an", "event"], drill["env"])
    assert drill["api"].validations == []


def test_a_refused_report_fails_the_invocation(drill):
    drill["api"].jobs = set()  # AWS Backup does not know the job: ResourceNotFoundException
    with pytest.raises(DataPlaneError) as err:
        service.validate_restore(drill["event"], drill["env"])
    assert err.value.cause == "report_failed" and "ResourceNotFoundException" in str(err.value)


# --- the activation test's age -------------------------------------------------------------------


@pytest.fixture
def record(world):
    """Its own DR stack name (the metric's dimension) and SSM parameter, in the module's moto world."""
    stack = f"dr-{next(world['tests'])}"
    return world["ssm"], world["cloudwatch"], stack, activation_test_parameter(stack)


def test_the_activation_test_age_is_published_from_the_record(record):
    client, cloudwatch, stack, parameter = record
    recorded = datetime.now(UTC).replace(microsecond=0) - timedelta(days=100, hours=3)
    client.put_parameter(Name=parameter, Value=recorded.isoformat().replace("+00:00", "Z"), Type="String")
    env = {"ACTIVATION_TEST_PARAMETER": parameter, "ACTIVATION_TEST_STACK": stack}

    result = service.activation_test_age({}, env)

    assert result["age_seconds"] == pytest.approx(timedelta(days=100, hours=3).total_seconds(), abs=60)
    now = datetime.now(UTC)
    (point,) = cloudwatch.get_metric_statistics(
        Namespace=METRIC_NAMESPACE, MetricName=ACTIVATION_TEST_AGE_SECONDS,
        Dimensions=[{"Name": "stack", "Value": stack}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=60, Statistics=["Maximum"],
    )["Datapoints"]
    assert point["Maximum"] == pytest.approx(result["age_seconds"], abs=1)


def test_before_the_first_record_the_age_counts_from_the_deployment(record):
    client, _, stack, parameter = record
    client.put_parameter(Name=parameter, Value=ACTIVATION_TEST_NOT_RECORDED, Type="String")
    created = client.get_parameter(Name=parameter)["Parameter"]["LastModifiedDate"]
    result = service.activation_test_age({}, {"ACTIVATION_TEST_PARAMETER": parameter, "ACTIVATION_TEST_STACK": stack})
    assert result["last_recorded"] == created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert 0 <= result["age_seconds"] < 60


@pytest.mark.parametrize("value,cause", [
    ("last quarter", "record_malformed"),
    ("2026-01-01T00:00:00", "record_malformed"),  # no zone
    ("2999-01-01T00:00:00Z", "record_future_dated"),
    (None, "record_unreadable"),  # never recorded, parameter deleted
])
def test_an_unreadable_record_fails_and_publishes_nothing(record, value, cause):
    client, cloudwatch, stack, parameter = record
    if value is not None:
        client.put_parameter(Name=parameter, Value=value, Type="String")
    with pytest.raises(DataPlaneError) as err:
        service.activation_test_age({}, {"ACTIVATION_TEST_PARAMETER": parameter, "ACTIVATION_TEST_STACK": stack})
    assert err.value.cause == cause and parameter in str(err.value)
    assert cloudwatch.list_metrics(Namespace=METRIC_NAMESPACE, MetricName=ACTIVATION_TEST_AGE_SECONDS,
                                   Dimensions=[{"Name": "stack", "Value": stack}])["Metrics"] == []
