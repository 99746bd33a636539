"""Trust policies of the roles AWS services assume on the program's behalf."""

from __future__ import annotations

import json


def service_trust_policy(service: str, condition: dict | None = None) -> str:
    """`service` may assume the role; `condition` (confused-deputy guard) when the service
    passes aws:SourceAccount / aws:SourceArn."""
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def from_account(account_id: str) -> dict:
    return {"StringEquals": {"aws:SourceAccount": account_id}}
