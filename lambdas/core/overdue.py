"""How long ago the last DR activation test was recorded, as a daily metric.

The quarterly activation test cannot run unattended: the on-call runs it and records it
(`python -m infra.activate --record-test`, which writes the time into an SSM parameter). A
CloudWatch alarm cannot look back a quarter (PutMetricAlarm: Period x EvaluationPeriods is at most
7 days), so this function runs daily, reads the recorded time and publishes its age
(ActivationTestAgeSeconds, dimension `stack`); the alarm fires when the age passes a quarter plus
the grace period, and also when the metric stops coming (missing data breaches).

Until the first test is recorded the parameter says so (drplan.names.ACTIVATION_TEST_NOT_RECORDED)
and the age counts from the parameter's creation, the DR stack's deployment. A value that is not
a time, or a time in the future, is an error (the invocation fails and its
Errors alarm fires): a record that cannot be read is not a test that was done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from drplan.names import ACTIVATION_TEST_AGE_SECONDS, ACTIVATION_TEST_NOT_RECORDED, METRIC_NAMESPACE

from .errors import DataPlaneError

# How far ahead of this function's clock a recorded time may be before it is called impossible.
CLOCK_SKEW = timedelta(minutes=5)
_PARAMETER = r"^/[A-Za-z0-9_.\-/]{1,1010}$"
_STACK = r"^[A-Za-z0-9_.-]{1,100}$"


class ActivationAgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ENV: ClassVar[dict[str, str]] = {"parameter": "ACTIVATION_TEST_PARAMETER", "stack": "ACTIVATION_TEST_STACK"}
    FIX: ClassVar[dict[str, str]] = {
        "parameter": "set env ACTIVATION_TEST_PARAMETER to the SSM parameter the activation tests are recorded in",
        "stack": "set env ACTIVATION_TEST_STACK to the DR stack's name, e.g. dr",
    }

    parameter: str = Field(pattern=_PARAMETER)
    stack: str = Field(pattern=_STACK)


class RecordStore(Protocol):
    def read(self, parameter: str) -> tuple[str, datetime]: ...  # value, last modified
    def put_metrics(self, namespace: str, dimensions: dict[str, str], values: dict[str, tuple[float, str]],
                    at: datetime) -> None: ...


def recorded_at(value: str, parameter: str, now: datetime) -> datetime:
    fix = "run `python -m infra.activate --record-test` after the next activation test"
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DataPlaneError(f"SSM parameter {parameter} holds {value[:80]!r}, not an ISO 8601 time (fix: {fix})",
                             cause="record_malformed", parameter=parameter) from None
    if at.tzinfo is None:
        raise DataPlaneError(f"SSM parameter {parameter} holds {value!r}, a time without a zone (fix: {fix})",
                             cause="record_malformed", parameter=parameter)
    if at > now + CLOCK_SKEW:
        raise DataPlaneError(f"SSM parameter {parameter} records a test at {at.isoformat()}, in the future"
                             f" (fix: {fix})", cause="record_future_dated", parameter=parameter)
    return at.astimezone(UTC)


def publish_activation_test_age(cfg: ActivationAgeRequest, store: RecordStore, now: datetime | None = None,
                                ) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    value, modified = store.read(cfg.parameter)
    # Never recorded: the clock runs from the record's creation (the DR stack's deployment).
    at = modified.astimezone(UTC) if value.strip() == ACTIVATION_TEST_NOT_RECORDED else \
        recorded_at(value, cfg.parameter, now)
    age = max((now - at).total_seconds(), 0.0)
    store.put_metrics(METRIC_NAMESPACE, {"stack": cfg.stack}, {ACTIVATION_TEST_AGE_SECONDS: (age, "Seconds")}, now)
    return {"stack": cfg.stack, "last_recorded": at.isoformat().replace("+00:00", "Z"), "age_seconds": round(age, 3)}
