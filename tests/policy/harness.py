"""Synthetic stacks for rule tests: a small Pulumi program (real pulumi-aws resources, so the
recorded inputs have exactly the shapes the engine sees) run under the project's mock
runtime, then evaluated with the offline runner, one policy at a time.

It runs them with infra.mockrun.run_program: the same machinery that records the real
stacks records these."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pulumi_policy import Policy

from infra import mockrun
from infra.policy_check import Violation, evaluate

ACCOUNT = mockrun.ACCOUNT
PRIMARY_REGION = "eu-west-3"
DR_REGION = "eu-central-1"


def record(
    program: Callable[[], None], stack: str = "synthetic", region: str = PRIMARY_REGION, site: dict | None = None
) -> mockrun.StackRun:
    """Run `program` under mocks; `site` is exported like infra/program.py does (role, tier)."""

    def _program() -> None:
        import pulumi

        if site is not None:
            pulumi.export("site", site)
        program()

    return mockrun.run_program(_program, stack, {"aws:region": region})


def violations(
    policy: Policy, program: Callable[[], None], *, region: str = PRIMARY_REGION, site: dict | None = None
) -> list[Violation]:
    run = record(program, region=region, site=site if site is not None else {"role": "primary", "tier": "prod"})
    return evaluate(run, [policy])


def names(found: list[Violation]) -> set[str]:
    """The resource names the violations point at."""
    return {v.urn.rsplit("::", 1)[-1] for v in found}


def dumps(doc: dict) -> str:
    return json.dumps(doc)


def statement(effect: str, action: Any, resource: Any, **extra: Any) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
