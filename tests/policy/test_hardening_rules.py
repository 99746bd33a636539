"""Hardening rules (docs/security.md): a bad resource is caught, a good one passes."""

from __future__ import annotations

import pulumi_aws as aws
import pytest

from policy.rules import hardening, rds
from tests.policy.harness import ACCOUNT, PRIMARY_REGION, doc, names, statement, violations

KEY = f"arn:aws:kms:{PRIMARY_REGION}:{ACCOUNT}:key/logs"
IMAGE = f"{ACCOUNT}.dkr.ecr.{PRIMARY_REGION}.amazonaws.com/backup:1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/fn"


def log_group(**overrides) -> None:
    args = {"region": PRIMARY_REGION, "kms_key_id": KEY, "retention_in_days": 365, **overrides}
    aws.cloudwatch.LogGroup("logs", **args)


@pytest.mark.parametrize("bad", [{"kms_key_id": None}, {"retention_in_days": None}, {"retention_in_days": 0}])
def test_log_group_rule(bad):
    p = hardening.log_group_keyed_and_retained
    assert names(violations(p, lambda: log_group(**bad))) == {"logs"}
    assert violations(p, log_group) == []


def function(**overrides) -> None:
    args = {
        "region": PRIMARY_REGION,
        "package_type": "Image",
        "image_uri": IMAGE,
        "role": ROLE,
        "environment": {"variables": {"BACKUP_BUCKET": "b"}},
        "kms_key_arn": KEY,
        "reserved_concurrent_executions": 1,
        **overrides,
    }
    aws.lambda_.Function("fn", **args)


@pytest.mark.parametrize(
    "bad", [{"reserved_concurrent_executions": None}, {"reserved_concurrent_executions": -1}, {"kms_key_arn": None}]
)
def test_function_rule(bad):
    p = hardening.lambda_concurrency_and_environment_key
    assert names(violations(p, lambda: function(**bad))) == {"fn"}
    assert violations(p, function) == []
    # Without an environment there is nothing to encrypt.
    assert violations(p, lambda: function(environment=None, kms_key_arn=None)) == []


def network(flow_log: str | None = "ALL", default_sg: bool = True, default_rules: bool = False) -> None:
    vpc = aws.ec2.Vpc("vpc", region=PRIMARY_REGION, cidr_block="10.40.0.0/16")
    if flow_log is not None:
        aws.ec2.FlowLog(
            "flow", region=PRIMARY_REGION, vpc_id=vpc.id, traffic_type=flow_log,
            log_destination_type="cloud-watch-logs",
            log_destination=f"arn:aws:logs:{PRIMARY_REGION}:{ACCOUNT}:log-group:f",
            iam_role_arn=ROLE,
        )
    if default_sg:
        rules = (
            {"ingress": [{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}]} if default_rules else {}
        )
        aws.ec2.DefaultSecurityGroup("default", region=PRIMARY_REGION, vpc_id=vpc.id, **rules)


@pytest.mark.parametrize(
    "bad", [{"flow_log": None}, {"flow_log": "REJECT"}, {"default_sg": False}, {"default_rules": True}]
)
def test_vpc_rule(bad):
    p = hardening.vpc_flow_logs_and_closed_default
    assert names(violations(p, lambda: network(**bad))) == {"vpc"}
    assert violations(p, network) == []


def database(**overrides) -> None:
    args = {
        "region": PRIMARY_REGION,
        "instance_class": "db.r6g.large",
        "engine": "postgres",
        "allocated_storage": 100,
        "monitoring_interval": 60,
        "monitoring_role_arn": ROLE,
        **overrides,
    }
    aws.rds.Instance("db", **args)


@pytest.mark.parametrize(
    "bad", [{"monitoring_interval": 0}, {"monitoring_interval": None}, {"monitoring_role_arn": None}]
)
def test_enhanced_monitoring_rule(bad):
    p = rds.rds_enhanced_monitoring
    assert names(violations(p, lambda: database(**bad))) == {"db"}
    assert violations(p, database) == []


TOPIC = f"arn:aws:sns:{PRIMARY_REGION}:{ACCOUNT}:alerts"


def topic_policy(condition: dict | None) -> None:
    extra = {"Condition": condition} if condition is not None else {}
    aws.sns.TopicPolicy(
        "topic-policy",
        region=PRIMARY_REGION,
        arn=TOPIC,
        policy=doc(
            statement("Allow", "sns:Publish", TOPIC, Sid="Alarms", Principal={"Service": "cloudwatch.amazonaws.com"},
                      **extra),
            # The account's own principals need no source condition.
            statement("Allow", "sns:Publish", TOPIC, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        ),
    )


def test_sns_service_grants_need_a_source_condition():
    p = hardening.sns_service_grants_scoped
    assert names(violations(p, lambda: topic_policy(None))) == {"topic-policy"}
    assert names(violations(p, lambda: topic_policy({"Bool": {"aws:SecureTransport": "true"}}))) == {"topic-policy"}
    assert violations(p, lambda: topic_policy({"StringEquals": {"aws:SourceAccount": ACCOUNT}})) == []
    arn = {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{PRIMARY_REGION}:{ACCOUNT}:alarm:*"}}
    assert violations(p, lambda: topic_policy(arn)) == []
