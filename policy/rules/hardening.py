"""Hardening a security review asks for (docs/security.md): log groups under a customer key
with a retention, functions with reserved concurrency and a keyed environment, VPCs with flow
logs and a closed default security group, RDS Enhanced Monitoring, SNS grants to services
scoped to this account."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from ._util import Stack, allows, as_list, each_known, get, label, number, policy_statements, stack_policy

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SOURCE_KEYS = ("aws:sourceaccount", "aws:sourcearn", "aws:sourceowner")


def _log_group(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    if not get(args.props, "kmsKeyId"):
        report("no kmsKeyId: log events (audit records, flow logs, trail events) under CloudWatch's own key")
    days = number(get(args.props, "retentionInDays"))
    if days is None or days <= 0:
        report("no retentionInDays: the log group keeps (and bills) events forever, or as long as nobody decides")


log_group_keyed_and_retained = ResourceValidationPolicy(
    name="log-group-keyed-and-retained",
    description=(
        "Every CloudWatch Logs group has a customer-managed kmsKeyId and a retentionInDays. Mandatory: the "
        "functions' audit records, flow logs and trail events are evidence; a customer key makes reading them "
        "an auditable, revocable grant, and a retention says how long the evidence is kept."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_log_group,
)


def _function(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FUNCTION:
        return
    reserved = number(get(args.props, "reservedConcurrentExecutions"))
    if reserved is None or reserved < 0:
        report("no reservedConcurrentExecutions: runs of the same function may overlap without bound")
    if get(args.props, "environment", "variables") and not get(args.props, "kmsKeyArn"):
        report("environment without kmsKeyArn: its variables are encrypted with Lambda's own key only")


lambda_concurrency_and_environment_key = ResourceValidationPolicy(
    name="lambda-concurrency-and-environment-key",
    description=(
        "Every Lambda function has reservedConcurrentExecutions, and one with environment variables encrypts "
        "them with a customer-managed kmsKeyArn. Mandatory: two backup runs at once would race for one slot's "
        "manifest, and the environment names the buckets, keys and secrets a function reaches."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_function,
)


def _refers_to(r: PolicyResource, vpc: PolicyResource) -> bool:
    """`r.vpcId` is this VPC: its id is not among a VPC's outputs, so by the dependency the
    engine records when vpc_id takes the VPC's id."""
    deps = (r.property_dependencies or {}).get("vpcId") or r.dependencies or []
    return any(d.urn == vpc.urn for d in deps)


@stack_policy
def _vpc(stack: Stack, report: ReportViolation) -> None:
    flow_logs = stack.of_type(FLOW_LOG)
    defaults = stack.of_type(DEFAULT_SG)

    def check(vpc: PolicyResource) -> None:
        logged = [f for f in flow_logs if _refers_to(f, vpc)]
        if not any(get(f.props, "trafficType") == "ALL" for f in logged):
            report(f"{label(vpc)} has no flow log of ALL traffic (accepted and rejected)", vpc.urn)
        closed = [d for d in defaults if _refers_to(d, vpc)]
        if not closed:
            report(f"{label(vpc)}: its default security group is unmanaged (AWS's default admits its members)", vpc.urn)
        for d in closed:
            if as_list(get(d.props, "ingress")) or as_list(get(d.props, "egress")):
                report(f"{label(vpc)}: default security group {label(d)} has rules; it must admit nothing", vpc.urn)

    each_known(stack.of_type(VPC), check)


vpc_flow_logs_and_closed_default = StackValidationPolicy(
    name="vpc-flow-logs-and-closed-default-sg",
    description=(
        "Every VPC the stack declares has a flow log of ALL traffic and a DefaultSecurityGroup without rules. "
        "Mandatory: flow logs are the network's record for an investigation, and the default group is what "
        "a resource launched without a group gets: it must admit nothing."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_vpc,
)


def _service_grants_scoped(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TOPIC_POLICY:
        return
    for s in policy_statements(get(args.props, "policy")):
        principal = s.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if not allows(s) or not services:
            continue
        keys = {k.lower() for conditions in (s.get("Condition") or {}).values() for k in (conditions or {})}
        if not keys & set(SOURCE_KEYS):
            report(
                f"statement {s.get('Sid') or ''} lets {', '.join(map(str, services))} publish without an "
                "aws:SourceAccount / aws:SourceArn condition (any account's alarm or rule could use it)"
            )


sns_service_grants_scoped = ResourceValidationPolicy(
    name="sns-service-grants-scoped",
    description=(
        "Every Allow of an SNS topic policy to an AWS service principal carries an aws:SourceAccount or "
        "aws:SourceArn condition. Mandatory: without it the grant is a confused deputy: another account's "
        "alarm or rule could publish (or flood) the site's alert topic."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_service_grants_scoped,
)


POLICIES = [
    log_group_keyed_and_retained,
    lambda_concurrency_and_environment_key,
    vpc_flow_logs_and_closed_default,
    sns_service_grants_scoped,
]
