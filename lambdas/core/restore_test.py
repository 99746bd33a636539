"""The monthly DR drill's check: AWS Backup restore testing has restored the latest locked copy
of the database into a temporary instance; prove that the copy serves, measure, report.

The function runs on EventBridge's "Restore Job State Change" event of a COMPLETED job of the
drill's restore testing plan, and in this order:

1. the event: a completed restore-testing job of an RDS recovery point, of the drill's own plan;
   anything else is refused (InvalidRequest naming the field) and nothing is reported;
2. restore time = the job's completionDate - creationDate (AWS Backup's clock); data age = the
   job's creationDate - the recovery point's OriginalSnapshotCreateTime (RDS keeps it through
   copies: the age of the data, not of the copy);
3. the checks on the restored instance (its endpoint from RDS, the site's database credentials):
   connect, the database has tables and rows (exact row counts per table), the SQL probes
   (VERIFY_PROBES, read-only, as the weekly verify runs them on a restored dump);
4. DrillSuccess, DrillRestoreSeconds, DrillDataAgeSeconds to CloudWatch (PutMetricData);
5. PutRestoreValidationResult: SUCCESSFUL only when every check passed, FAILED with the first
   cause otherwise. A failed check is a result, not an error: the function returns normally (a
   retry would only report twice). Failing to report is an error (the invocation fails).

AWS Backup deletes the temporary instance when the validation window closes (restore testing,
`ValidationWindowHours`): nothing here deletes anything.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drplan.names import DRILL_DATA_AGE_SECONDS, DRILL_RESTORE_SECONDS, DRILL_SUCCESS, METRIC_NAMESPACE

from .config import _DB_NAME, _SM_ARN, Probe
from .errors import InvalidRequest, VerifyFailed
from .failure import as_failure, reraise
from .pg import DbConn, row_counts
from .verify import _run_probes as run_probes

_RDS_DB_ARN = r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:[A-Za-z][A-Za-z0-9-]{0,62}$"
_RDS_SNAPSHOT_ARN = r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:snapshot:[A-Za-z][A-Za-z0-9:-]{0,254}$"
_PLAN_ARN = r"^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:restore-testing-plan:.+$"
# AWS Backup shows the validation message in its console; keep it to a readable paragraph.
MESSAGE_LIMIT = 1000


class RestoreTestRequest(BaseModel):
    """The deployment's settings (the function's environment, set by the stack)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ENV: ClassVar[dict[str, str]] = {
        "database": "BACKUP_DATABASE",
        "db_secret_arn": "DB_SECRET_ARN",
        "plan_arn": "RESTORE_TEST_PLAN_ARN",
        "probes": "VERIFY_PROBES",
    }
    FIX: ClassVar[dict[str, str]] = {
        "database": "set env BACKUP_DATABASE to the restored database's name, e.g. postoucancer",
        "db_secret_arn": "set env DB_SECRET_ARN to the site's database secret (the restored copy keeps its"
        " master credentials)",
        "plan_arn": "set env RESTORE_TEST_PLAN_ARN to the ARN of the drill's restore testing plan",
        "probes": 'give a JSON list like [{"name": "posts", "sql": "SELECT count(*) FROM posts", "min": 1}]',
    }

    database: str = Field(pattern=_DB_NAME)
    db_secret_arn: str = Field(pattern=_SM_ARN)
    plan_arn: str = Field(pattern=_PLAN_ARN)
    probes: list[Probe] = Field(default_factory=list, max_length=50)

    @field_validator("probes", mode="before")
    @classmethod
    def _probes_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v) if v.strip() else []
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
        return v


class RestoreJobDetail(BaseModel):
    # AWS adds fields to its events over time: unknown ones are ignored, the needed ones checked.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    restore_job_id: str = Field(alias="restoreJobId", min_length=1, max_length=1024)
    status: str
    resource_type: str = Field(alias="resourceType")
    created_resource_arn: str = Field(alias="createdResourceArn", pattern=_RDS_DB_ARN)
    recovery_point_arn: str = Field(alias="recoveryPointArn", pattern=_RDS_SNAPSHOT_ARN)
    restore_testing_plan_arn: str = Field(alias="restoreTestingPlanArn", pattern=_PLAN_ARN)
    creation_date: AwareDatetime = Field(alias="creationDate")
    completion_date: AwareDatetime = Field(alias="completionDate")

    @field_validator("status")
    @classmethod
    def _completed(cls, v: str) -> str:
        if v != "COMPLETED":
            raise ValueError(f"is {v!r}: only a COMPLETED restore job has an instance to validate")
        return v

    @field_validator("resource_type")
    @classmethod
    def _rds(cls, v: str) -> str:
        if v != "RDS":
            raise ValueError(f"is {v!r}: the drill validates RDS restores only")
        return v

    @model_validator(mode="after")
    def _ordered(self):
        if self.completion_date < self.creation_date:
            raise ValueError("completionDate is before creationDate")
        return self


class RestoreJobEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    source: Literal["aws.backup"]
    detail_type: Literal["Restore Job State Change"] = Field(alias="detail-type")
    detail: RestoreJobDetail


_EVENT_FIX = {
    "source": "send the EventBridge event of AWS Backup (source aws.backup)",
    "detail-type": 'send a "Restore Job State Change" event',
    "detail": "send the event EventBridge delivers for a restore job of the drill's restore testing plan",
}


def parse_event(event: Any) -> RestoreJobEvent:
    """The EventBridge event, validated; InvalidRequest names each bad field (event.detail.<field>)."""
    if not isinstance(event, dict):
        raise InvalidRequest([{"field": "event", "problem": f"must be a JSON object, got {type(event).__name__}",
                               "fix": _EVENT_FIX["detail"]}], "restore test event")
    try:
        return RestoreJobEvent.model_validate(event)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = [str(p) for p in err["loc"]]
            problem = "is required" if err["type"] == "missing" else re.sub(r"^Value error, ", "", err["msg"])
            problems.append({"field": ".".join(["event", *loc]), "problem": problem,
                             "fix": _EVENT_FIX.get(loc[0] if loc else "detail", _EVENT_FIX["detail"])})
        raise InvalidRequest(problems, "restore test event") from None


class RestoreTestAws(Protocol):
    """What the check needs from AWS (lambdas/adapters/aws_restore.py)."""

    def instance_endpoint(self, db_arn: str) -> tuple[str, int]: ...
    def snapshot_created(self, snapshot_arn: str) -> datetime: ...
    def credentials(self, secret_arn: str) -> dict[str, Any]: ...
    def put_metrics(self, namespace: str, dimensions: dict[str, str], values: dict[str, tuple[float, str]],
                    at: datetime) -> None: ...
    def report(self, restore_job_id: str, status: str, message: str) -> None: ...


@dataclass
class RestoreTestResult:
    status: str  # SUCCESSFUL or FAILED (as reported to AWS Backup)
    restore_job_id: str
    restored_instance: str
    restore_seconds: float
    data_age_seconds: float | None
    message: str
    cause: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    check_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _restored_db(aws: RestoreTestAws, cfg: RestoreTestRequest, db_arn: str) -> DbConn:
    host, port = aws.instance_endpoint(db_arn)
    secret = aws.credentials(cfg.db_secret_arn)
    # The copy keeps the master user and password it was backed up with; the server to reach is
    # the restored instance, whatever host the secret names (the primary's).
    params = {"user": secret.get("username") or secret.get("user"), "password": secret.get("password"),
              "host": host, "port": str(port), "dbname": cfg.database}
    if secret.get("sslmode"):
        params["sslmode"] = secret["sslmode"]
    return DbConn(params)


def _check(db: DbConn, probes: list[Probe]) -> tuple[dict[str, int], dict[str, Any]]:
    with db.connect(autocommit=True, application_name="postoucancer-dr-drill") as conn:
        counts = row_counts(conn)
        if not counts:
            raise VerifyFailed("the restored database has no tables", cause="restore_empty")
        if sum(counts.values()) == 0:
            raise VerifyFailed(f"the restored database's {len(counts)} tables hold no rows", cause="restore_empty",
                               tables=len(counts))
        return counts, run_probes(conn, probes)


def validate_restore(event: Any, cfg: RestoreTestRequest, aws: RestoreTestAws, *, log: Any = None) -> RestoreTestResult:
    job = parse_event(event).detail  # refused before anything is touched or reported
    if job.restore_testing_plan_arn != cfg.plan_arn:
        raise InvalidRequest([{"field": "event.detail.restoreTestingPlanArn",
                               "problem": f"is {job.restore_testing_plan_arn}, not the drill's plan {cfg.plan_arn}",
                               "fix": "route only the drill plan's restore jobs to this function (EventBridge rule)"}],
                             "restore test event")
    restore_seconds = (job.completion_date - job.creation_date).total_seconds()
    age: float | None = None
    counts: dict[str, int] = {}
    probes: dict[str, Any] = {}
    cause: str | None = None
    t0 = time.monotonic()
    try:
        age = (job.creation_date - aws.snapshot_created(job.recovery_point_arn)).total_seconds()
        if age < 0:
            raise VerifyFailed(f"the recovery point was created {-age:.0f} s after the restore job started",
                               cause="impossible_times")
        counts, probes = _check(_restored_db(aws, cfg, job.created_resource_arn), cfg.probes)
        message = (f"restored in {restore_seconds:.0f} s, data {age / 3600:.1f} h old: {len(counts)} tables, "
                   f"{sum(counts.values())} rows, {len(probes)} probes passed")
    except Exception as exc:  # every failure, classified, is a FAILED validation: never a success
        failure = as_failure(exc)
        cause, message = failure.cause, f"{failure.cause}: {failure}"
    status = "FAILED" if cause else "SUCCESSFUL"
    values = {DRILL_SUCCESS: (0.0 if cause else 1.0, "Count"), DRILL_RESTORE_SECONDS: (restore_seconds, "Seconds")}
    if age is not None and age >= 0:
        values[DRILL_DATA_AGE_SECONDS] = (age, "Seconds")
    metrics_error = None
    try:
        aws.put_metrics(METRIC_NAMESPACE, {"database": cfg.database}, values, job.completion_date)
    except Exception as exc:  # the verdict still reaches AWS Backup before the invocation fails
        metrics_error = exc
    aws.report(job.restore_job_id, status, message[:MESSAGE_LIMIT])
    if metrics_error is not None:
        reraise(as_failure(metrics_error), metrics_error)
    result = RestoreTestResult(status, job.restore_job_id, job.created_resource_arn, restore_seconds, age,
                               message[:MESSAGE_LIMIT], cause, counts, probes, time.monotonic() - t0)
    if log is not None:
        (log.error if cause else log.info)("dr drill validated", extra={"restore_test": result.as_dict()})
    return result
