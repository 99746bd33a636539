"""Audit events: one structured record per operation on backups (who, what, which, outcome).

Small and dependency-free on purpose: the backup/verify functions use it now, the GDPR
export/erasure functions will reuse it. A sink receives the event as a dict; the default
sink logs it as one JSON line through aws-lambda-powertools' Logger (service
"postoucancer-audit"), which CloudWatch Logs / the cluster's log shipper keep for the
plan's 7 years of audit retention.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

AUDIT_SERVICE = "postoucancer-audit"
SCHEMA_VERSION = 1

Sink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Actor:
    """Who acted: a principal (role/function ARN, service account, user) and through what."""

    principal: str
    via: str  # lambda | cronjob | cli

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, lambda_context: Any = None) -> Actor:
        environ = os.environ if environ is None else environ
        if lambda_context is not None:
            return cls(getattr(lambda_context, "invoked_function_arn", "lambda"), "lambda")
        if environ.get("AUDIT_ACTOR"):
            return cls(environ["AUDIT_ACTOR"], environ.get("AUDIT_VIA", "cli"))
        if environ.get("KUBERNETES_SERVICE_HOST"):
            ns = environ.get("POD_NAMESPACE", "")
            return cls(f"k8s:{ns}/{environ.get('HOSTNAME', 'pod')}".replace(":/", ":"), "cronjob")
        return cls(environ.get("USER") or environ.get("LOGNAME") or f"uid:{os.getuid()}", "cli")


@dataclass(frozen=True)
class AuditEvent:
    action: str  # e.g. backup.create, backup.verify, gdpr.export
    outcome: str  # success | failure | skipped
    actor: Actor
    resource: dict[str, Any]  # which backup: database, object key, version, manifest
    reason: str | None = None  # failure cause / why skipped
    details: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = SCHEMA_VERSION
        d["audit"] = True
        return d


_default_logger = None


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is at emit time: the Logger is cached (and the standard
    logging.Logger behind it lives for the process), while stdout may be swapped after it
    was created (a CLI's redirection, a test's capture)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def log_sink(record: dict[str, Any]) -> None:
    global _default_logger
    if _default_logger is None:
        from aws_lambda_powertools import Logger

        _default_logger = Logger(service=AUDIT_SERVICE, logger_handler=_CurrentStdout())
    _default_logger.info(f"audit {record['action']} {record['outcome']}", extra={"audit_event": record})


def emit(event: AuditEvent, sink: Sink | None = None) -> dict[str, Any]:
    record = event.as_dict()
    (sink or log_sink)(record)
    return record
