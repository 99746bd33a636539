"""Functions: a dead-letter queue for failed asynchronous runs and an alarm on errors."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from ._util import Stack, as_list, each_known, get, label, stack_policy

FUNCTION = "aws:lambda/function:Function"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _dead_letter(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == FUNCTION and not get(args.props, "deadLetterConfig", "targetArn"):
        report("no deadLetterConfig.targetArn: a failed asynchronous run would vanish without trace")


lambda_dead_letter_queue = ResourceValidationPolicy(
    name="lambda-dead-letter-queue",
    description=(
        "Every Lambda function has a dead-letter queue (deadLetterConfig.targetArn). Mandatory: the backup "
        "and verify functions run asynchronously from schedules; without a DLQ a run that fails all its "
        "retries leaves no trace, and the plan asks to monitor every backup failure."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_dead_letter,
)


def _watched_functions(alarm: PolicyResource) -> list[tuple[str | None, str | None, object]]:
    """(namespace, metric, FunctionName dimension) of the metrics an alarm watches."""
    watched = [(get(alarm.props, "namespace"), get(alarm.props, "metricName"), get(alarm.props, "dimensions"))]
    for q in as_list(get(alarm.props, "metricQueries")):
        m = get(q, "metric")
        if m:
            watched.append((get(m, "namespace"), get(m, "metricName"), get(m, "dimensions")))
    return [(ns, name, get(dims, "FunctionName")) for ns, name, dims in watched]


@stack_policy
def _error_alarm(stack: Stack, report: ReportViolation) -> None:
    alarms = stack.of_type(ALARM)

    def watches(alarm: PolicyResource, fn: PolicyResource) -> bool:
        if not as_list(get(alarm.props, "alarmActions")):
            return False  # an alarm nobody hears
        name = get(fn.props, "name")
        for ns, metric, function_name in _watched_functions(alarm):
            if ns != "AWS/Lambda" or metric != "Errors":
                continue
            if function_name is not None and function_name == name:
                return True
        # During a preview the name may be unknown: fall back to the dependency on the function.
        deps = alarm.property_dependencies.get("dimensions", []) + alarm.property_dependencies.get("metricQueries", [])
        return fn in deps and any(ns == "AWS/Lambda" and m == "Errors" for ns, m, _ in _watched_functions(alarm))

    def check(fn: PolicyResource) -> None:
        if not any(_safe(watches, a, fn) for a in alarms):
            report(f"{label(fn)} has no CloudWatch alarm with actions on its AWS/Lambda Errors metric", fn.urn)

    each_known(stack.of_type(FUNCTION), check)


def _safe(fn, *args) -> bool:
    from pulumi_policy.proxy import UnknownValueError

    try:
        return bool(fn(*args))
    except UnknownValueError:
        return False


lambda_error_alarm = StackValidationPolicy(
    name="lambda-error-alarm",
    description=(
        "Every Lambda function has a CloudWatch metric alarm with alarm actions on its AWS/Lambda Errors "
        "metric (FunctionName dimension). Mandatory: the plan's alerts start with 'backup failure'; a "
        "failing backup function nobody hears about is a missing backup discovered at restore time."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_error_alarm,
)


POLICIES = [lambda_dead_letter_queue, lambda_error_alarm]
