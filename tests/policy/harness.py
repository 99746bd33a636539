"""Synthetic stacks for rule tests: a small Pulumi program (real pulumi-aws resources, so the
recorded inputs have exactly the shapes the engine sees) run under the project's mock
runtime, then evaluated with the offline runner, one policy at a time.

It reuses infra.mockrun's mocks and recording monitor (private names on purpose: the same
machinery that records the real stacks records these)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import warnings
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
    records: list[mockrun.Recorded] = []

    def _run() -> dict[str, Any]:
        import pulumi
        from pulumi.runtime import settings
        from pulumi.runtime import stack as rt_stack
        from pulumi.runtime.config import set_all_config

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            mocks = mockrun._Mocks(stack, region, None)
            monitor = mockrun._make_monitor(mocks, records)
            set_all_config({"aws:region": region}, [])
            pulumi.runtime.set_mocks(
                mocks, project="postoucancer-dr", stack=stack, preview=False, monitor=monitor,
                logger=mockrun._LogCapture(),
            )  # type: ignore[arg-type]  # fmt: skip
            settings.SETTINGS.organization = "organization"
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi(_aws)?\b.*")
                if site is not None:
                    pulumi.export("site", site)
                program()
                loop.run_until_complete(rt_stack.wait_for_rpcs())
                root = settings.get_root_resource()
                return loop.run_until_complete(mockrun._resolve(getattr(root, "outputs", {}) or {}))
        except BaseException:
            with contextlib.suppress(Exception):  # let in-flight registrations settle
                loop.run_until_complete(rt_stack.wait_for_rpcs())
            raise
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    outputs = contextvars.copy_context().run(_run)
    return mockrun.StackRun(stack=stack, config={"aws:region": region}, resources=records, outputs=outputs, logs=[])


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
