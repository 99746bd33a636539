"""Logs, metrics and audit for the core, injected so tests can observe them.

Metrics go out as CloudWatch Embedded Metric Format through aws-lambda-powertools
(namespace PostOuCancer/Backups, dimension `database`); in a CronJob the same JSON lines
go to stdout for the log shipper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from drplan.names import METRIC_NAMESPACE, METRIC_SERVICE

from . import audit

NAMESPACE = METRIC_NAMESPACE
SERVICE = METRIC_SERVICE


@dataclass
class Telemetry:
    logger: Any = None  # powertools Logger or any logging.Logger-like object
    metrics: Any = None  # powertools Metrics, or None (metrics dropped)
    audit_sink: audit.Sink | None = None
    published: list[dict[str, Any]] = field(default_factory=list)  # what was published, for callers

    @classmethod
    def default(cls) -> Telemetry:
        from aws_lambda_powertools import Logger, Metrics

        return cls(logger=Logger(service=SERVICE), metrics=Metrics(namespace=NAMESPACE, service=SERVICE))

    @property
    def log(self):
        return self.logger or logging.getLogger(SERVICE)

    def publish(self, database: str, values: dict[str, tuple[float, str]]) -> None:
        """values: metric name -> (value, unit name: Count, Seconds, Bytes)."""
        self.published.append({"database": database, **{k: v for k, (v, _u) in values.items()}})
        if self.metrics is None:
            return
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_dimension(name="database", value=database)
        for name, (value, unit) in values.items():
            self.metrics.add_metric(name=name, unit=getattr(MetricUnit, unit), value=value)
        self.metrics.flush_metrics()

    def audit(self, event: audit.AuditEvent) -> dict[str, Any]:
        return audit.emit(event, self.audit_sink)
