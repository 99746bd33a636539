"""A customer-managed KMS key: rotation on, explicit key policy, protected."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# Long enough to notice and cancel a scheduled deletion; the maximum AWS allows.
KEY_DELETION_WINDOW_DAYS = 30


@dataclass
class CustomerKeyArgs:
    region: str
    description: str
    # AWS services (e.g. "logs.eu-west-3.amazonaws.com", "sns.amazonaws.com") that encrypt
    # with this key on the account's behalf; each gets only GenerateDataKey*/Decrypt.
    service_principals: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    # Further key-policy statements, given the account id: for services whose documented key
    # policy differs from the one above (CloudTrail's encryption context, alarm publishers).
    extra_statements: Callable[[str], list[dict]] | None = None


def logs_key_statements(region: str, log_group_names: list[str]) -> Callable[[str], list[dict]]:
    """CloudWatch Logs' documented key-policy statement ("Encrypt log data in CloudWatch Logs
    using AWS KMS"): the regional service principal, only for these log groups (the
    encryption context CloudWatch Logs passes is the log group's ARN)."""

    def statements(account_id: str) -> list[dict]:
        arns = sorted(f"arn:aws:logs:{region}:{account_id}:log-group:{n}" for n in log_group_names)
        return [
            {
                "Sid": "CloudWatchLogsEncryptsTheseLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                # In a key policy "*" is this key: a key policy can name no other resource.
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": arns}},
            }
        ]

    return statements


def combined(*parts: Callable[[str], list[dict]] | None) -> Callable[[str], list[dict]]:
    """Several services' key-policy statements as one `extra_statements`."""
    return lambda account_id: [s for part in parts if part is not None for s in part(account_id)]


def key_policy(account_id: str, args: CustomerKeyArgs) -> str:
    # In a key policy "Resource": "*" means this key (the only resource a key policy governs).
    statements = [
        {
            # Without this the key is unmanageable; IAM policies then grant least privilege.
            "Sid": "AccountAdministersKeyThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if args.service_principals:
        statements.append(
            {
                "Sid": "ServicesEncryptForThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": sorted(args.service_principals)},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    if args.extra_statements is not None:
        statements.extend(args.extra_statements(account_id))
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class CustomerKey(pulumi.ComponentResource):
    """`postoucancer:aws:CustomerKey`: one key per purpose and region."""

    key: aws.kms.Key
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: CustomerKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:CustomerKey", name, None, opts)
        account_id = aws.get_caller_identity_output().account_id
        self.key = aws.kms.Key(
            name,
            region=args.region,
            description=args.description,
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=account_id.apply(lambda a: key_policy(a, args)),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.kms.Alias(
            f"{name}-alias",
            region=args.region,
            # Alias names are unique per account and region: carry the stack (prod and staging may
            # share an account, and their resource names are the same).
            name=f"alias/postoucancer/{pulumi.get_stack()}/{name}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
