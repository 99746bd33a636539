"""AWS Lambda entry points (container image; see lambdas/Dockerfile).

    lambdas.aws_lambda.backup_handler   scheduled by EventBridge (cron from drplan)
    lambdas.aws_lambda.verify_handler   the weekly restore test
    lambdas.aws_lambda.restore_test_handler   the monthly DR drill's validation (EventBridge, restore testing)
    lambdas.aws_lambda.activation_age_handler the daily age of the last recorded activation test

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


def restore_test_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tel = _tel()
    tel.logger.append_keys(operation="restore-test", request_id=getattr(context, "aws_request_id", None))
    return service.validate_restore(event, telemetry=tel)


def activation_age_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return service.activation_test_age(event)
