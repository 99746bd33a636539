"""AWS calls of the plan's periodic tests: the monthly drill's validation (RDS, Secrets Manager,
AWS Backup's PutRestoreValidationResult) and the activation test's record (SSM), and their
metrics (CloudWatch PutMetricData). boto3 clients are made lazily, from one session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.core.errors import DataPlaneError

from .s3 import _code, secret_resolver


def _failed(what: str, exc: Exception, cause: str) -> DataPlaneError:
    if isinstance(exc, ClientError):
        reason = f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return DataPlaneError(f"{what}: {reason}", cause=cause)


def _resource_id(arn: str, kind: str) -> str:
    # arn:aws:rds:<region>:<account>:<kind>:<id>; AWS Backup's snapshot ids hold a colon themselves.
    return arn.split(f":{kind}:", 1)[1]


_DEFAULT_SESSION: boto3.session.Session | None = None


def _default_session() -> boto3.session.Session:
    # One session per process: a warm Lambda (and each later call) reuses its loaded service models.
    global _DEFAULT_SESSION
    if _DEFAULT_SESSION is None:
        _DEFAULT_SESSION = boto3.session.Session()
    return _DEFAULT_SESSION


class AwsTests:
    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self._session = session or _default_session()
        self._clients: dict[str, Any] = {}

    def _client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    # --- the restored instance ------------------------------------------------------------
    def instance_endpoint(self, db_arn: str) -> tuple[str, int]:
        ident = _resource_id(db_arn, "db")
        try:
            (db,) = self._client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"]
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise _failed(f"cannot describe the restored instance {ident}", exc, "restored_instance_missing") from None
        endpoint = db.get("Endpoint") or {}
        if not endpoint.get("Address"):
            raise DataPlaneError(f"the restored instance {ident} has no endpoint (status {db.get('DBInstanceStatus')})",
                                 cause="restored_instance_unavailable")
        return endpoint["Address"], int(endpoint.get("Port") or 5432)

    def snapshot_created(self, snapshot_arn: str) -> datetime:
        """When the recovery point's data was taken: OriginalSnapshotCreateTime, which RDS keeps
        through copies (RDS API, DBSnapshot), so a copy in the DR vault reports its source's time."""
        ident = _resource_id(snapshot_arn, "snapshot")
        try:
            (snap,) = self._client("rds").describe_db_snapshots(DBSnapshotIdentifier=ident)["DBSnapshots"]
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise _failed(f"cannot describe the recovery point {ident}", exc, "recovery_point_missing") from None
        created = snap.get("OriginalSnapshotCreateTime") or snap.get("SnapshotCreateTime")
        if created is None:
            raise DataPlaneError(f"the recovery point {ident} has no creation time", cause="recovery_point_missing")
        return created

    def credentials(self, secret_arn: str) -> dict[str, Any]:
        return secret_resolver(self._session)(secret_arn)

    # --- results ---------------------------------------------------------------------------
    def report(self, restore_job_id: str, status: str, message: str) -> None:
        try:
            self._client("backup").put_restore_validation_result(
                RestoreJobId=restore_job_id, ValidationStatus=status, ValidationStatusMessage=message)
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"cannot report the validation of restore job {restore_job_id}", exc,
                          "report_failed") from None

    def put_metrics(self, namespace: str, dimensions: dict[str, str], values: dict[str, tuple[float, str]],
                    at: datetime) -> None:
        dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
        data = [{"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": float(value), "Unit": unit}
                for name, (value, unit) in values.items()]
        try:
            self._client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"cannot publish {', '.join(values)} to {namespace}", exc, "metrics_failed") from None

    # --- the activation test's record ------------------------------------------------------
    def read(self, parameter: str) -> tuple[str, datetime]:
        try:
            found = self._client("ssm").get_parameter(Name=parameter)["Parameter"]
            return found["Value"], found["LastModifiedDate"]
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"cannot read SSM parameter {parameter}", exc, "record_unreadable") from None
