"""Alerting: an SNS topic per site (customer key, subscribers from config), the alarms and
EventBridge rules that publish to it, and the site's dashboard.

`AlertTopic` is the only way an alert leaves the account: encrypted with its own customer
key whose policy lets CloudWatch alarms, EventBridge and AWS Backup publish (their
documented key-policy statements), a topic policy that admits only this account's alarms
and rules, and e-mail / HTTPS subscriptions. `AlertTopic.alarm` and `AlertTopic.on_event`
create alarms and rules wired to the topic (alarm and OK actions, so a recovery is heard
too). Thresholds are passed in by the caller (infra/aws/monitoring.py derives each from
drplan); nothing here invents a number of the plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pulumi
import pulumi_aws as aws

from .kms import CustomerKey, CustomerKeyArgs

# Services that publish alerts to the topic and therefore encrypt with its key.
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "backup.amazonaws.com")


@dataclass(frozen=True)
class AlarmSpec:
    """What one kind of alarm watches: the metric, how it is aggregated, when it fires.

    `source` says where the threshold comes from (drplan, or the stack config), so that the
    table of specs documents itself; `AlertTopic.raise_alarm` turns a spec into an alarm.
    """

    namespace: str
    metric: str
    statistic: str
    fires_when: str  # "below" or "above" the threshold
    threshold: float
    period: timedelta
    source: str
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    missing_data_breaches: bool = False

    @property
    def comparison_operator(self) -> str:
        return {"below": "LessThanThreshold", "above": "GreaterThanThreshold"}[self.fires_when]


@dataclass
class AlertTopicArgs:
    region: str
    emails: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def publisher_key_statements(account_id: str) -> list[dict]:
    """CloudWatch alarms, EventBridge and AWS Backup publish to an encrypted topic only if
    the key lets the service principal generate data keys; AWS documents this statement
    without a source condition (those services do not pass one to KMS through SNS)."""
    return [
        {
            "Sid": "AlertPublishersUseTheKey",
            "Effect": "Allow",
            "Principal": {"Service": list(PUBLISHERS)},
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": "*",  # a key policy governs only its key
        }
    ]


def topic_policy(topic_arn: str, account_id: str, region: str) -> str:
    """Each publishing service only for this account's own alarms, rules and vaults: both
    aws:SourceAccount and aws:SourceArn (the confused-deputy conditions of the SNS developer
    guide), so no other account's alarm or rule can publish through these grants."""

    def from_this_account(source_arn: str) -> dict:
        return {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": source_arn}}

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountManagesTopic",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": [
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:Subscribe",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Publish",
                    ],
                    "Resource": topic_arn,
                },
                {
                    "Sid": "AlarmsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": from_this_account(f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"),
                },
                {
                    "Sid": "RulesOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": from_this_account(f"arn:aws:events:{region}:{account_id}:rule/*"),
                },
                {
                    "Sid": "BackupVaultNotifications",
                    "Effect": "Allow",
                    "Principal": {"Service": "backup.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": from_this_account(f"arn:aws:backup:{region}:{account_id}:backup-vault:*"),
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


class AlertTopic(pulumi.ComponentResource):
    """`postoucancer:aws:AlertTopic`."""

    topic: aws.sns.Topic
    key: CustomerKey
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:AlertTopic", name, None, opts)
        self.region = args.region
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=args.region,
                description=f"Post Ou Cancer alerts topic {name} ({args.region})",
                extra_statements=publisher_key_statements,
                tags=args.tags,
            ),
            opts=child,
        )
        self.topic = aws.sns.Topic(
            name,
            region=args.region,
            kms_master_key_id=self.key.arn,
            tags=args.tags,
            opts=child,
        )
        account_id = aws.get_caller_identity_output().account_id
        aws.sns.TopicPolicy(
            f"{name}-policy",
            region=args.region,
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, account_id).apply(lambda a: topic_policy(a[0], a[1], args.region)),
            opts=child,
        )
        self.subscriptions: list[aws.sns.TopicSubscription] = []
        for i, email in enumerate(args.emails):
            self.subscriptions.append(
                aws.sns.TopicSubscription(
                    f"{name}-email-{i}",
                    region=args.region,
                    topic=self.topic.arn,
                    protocol="email",
                    endpoint=email,
                    opts=child,
                )
            )
        for i, url in enumerate(args.webhooks):
            self.subscriptions.append(
                aws.sns.TopicSubscription(
                    f"{name}-webhook-{i}",
                    region=args.region,
                    topic=self.topic.arn,
                    protocol="https",
                    endpoint=url,
                    endpoint_auto_confirms=False,  # the receiver confirms via SubscribeURL
                    opts=child,
                )
            )
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        self.arn = self.topic.arn
        self.register_outputs({"arn": self.arn})

    def alarm(self, key: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        """A metric alarm publishing ALARM and OK transitions to this topic.

        kwargs are aws.cloudwatch.MetricAlarm arguments (metric, threshold, periods...);
        `region` defaults to the topic's (an alarm's actions must be in its own region).
        """
        kwargs.setdefault("region", self.region)
        kwargs.setdefault("treat_missing_data", "notBreaching")
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}",
            alarm_description=description,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            actions_enabled=True,
            opts=pulumi.ResourceOptions(parent=self),
            **kwargs,
        )
        self.alarms[key] = alarm
        return alarm

    def raise_alarm(
        self, key: str, spec: AlarmSpec, dimensions: dict[str, Any], description: str
    ) -> aws.cloudwatch.MetricAlarm:
        """The alarm `spec` describes, on the metric with these dimensions."""
        optional = {"datapoints_to_alarm": spec.datapoints_to_alarm} if spec.datapoints_to_alarm else {}
        return self.alarm(
            key,
            description,
            namespace=spec.namespace,
            metric_name=spec.metric,
            dimensions=dimensions,
            statistic=spec.statistic,
            period=int(spec.period.total_seconds()),
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=spec.comparison_operator,
            threshold=spec.threshold,
            treat_missing_data="breaching" if spec.missing_data_breaches else "notBreaching",
            **optional,
        )

    def on_event(self, key: str, description: str, pattern: dict[str, Any]) -> aws.cloudwatch.EventRule:
        """An EventBridge rule (default bus, this region) forwarding matching events here."""
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-{key}",
            region=self.region,
            description=description,
            event_pattern=json.dumps(pattern),
            state="ENABLED",
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-{key}",
            region=self.region,
            rule=rule.name,
            arn=self.topic.arn,
            opts=child,
        )
        self.rules[key] = rule
        return rule


@dataclass
class DashboardArgs:
    region: str
    widgets: list[dict[str, Any]]


class Dashboard(pulumi.ComponentResource):
    """`postoucancer:aws:Dashboard`: a CloudWatch dashboard from widget dicts that may hold
    Outputs (bucket names, function names); rendered to JSON once they are known."""

    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:Dashboard", name, None, opts)
        body = pulumi.Output.from_input({"widgets": args.widgets}).apply(lambda b: json.dumps(b, sort_keys=True))
        self.dashboard = aws.cloudwatch.Dashboard(
            name,
            region=args.region,
            dashboard_name=name,
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.dashboard.dashboard_name})
