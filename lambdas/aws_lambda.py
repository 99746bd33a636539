"""AWS Lambda entry points (container image; see lambdas/Dockerfile).

    lambdas.aws_lambda.backup_handler   scheduled by EventBridge (cron from drplan)
    lambdas.aws_lambda.verify_handler   the weekly restore test

Configuration comes from the function's environment, the event may override fields
(lambdas/README.md). Any failure raises, so the invocation is marked failed and the
Errors metric / failure destinations fire.
"""

from __future__ import annotations

from typing import Any

from lambdas import service
from lambdas.core.audit import Actor
from lambdas.core.telemetry import Telemetry

_telemetry: Telemetry | None = None


def _tel() -> Telemetry:
    global _telemetry
    if _telemetry is None:
        _telemetry = Telemetry.default()
    return _telemetry


def backup_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tel = _tel()
    tel.logger.append_keys(operation="backup", request_id=getattr(context, "aws_request_id", None))
    return service.backup(event, actor=Actor.from_environment(lambda_context=context), telemetry=tel)


def verify_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tel = _tel()
    tel.logger.append_keys(operation="verify", request_id=getattr(context, "aws_request_id", None))
    return service.verify(event, actor=Actor.from_environment(lambda_context=context), telemetry=tel)
