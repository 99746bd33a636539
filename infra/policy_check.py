"""Run the project's policy pack offline: the same rule objects as `pulumi preview
--policy-pack policy`, over the resources each stack registers under Pulumi's mock runtime.

    python -m infra.policy_check                 # prod, dr, staging, staging-dr
    python -m infra.policy_check --pair prod     # one site pair (bootstrap order dr → prod → dr)
    python -m infra.policy_check --json out.json

Prints every violation (advisory ones as warnings) and exits 1 when any mandatory policy
is violated in any stack, 0 otherwise: CI calls it (and tests/policy runs it in-process).

How the engine's view is rebuilt from `infra.mockrun` records:
- resource validation policies get each custom resource's *inputs* (the engine's Analyze),
  stack validation policies get every resource's *outputs* (AnalyzeStack), camelCase keys,
  wrapped in pulumi-policy's unknown-checking proxy like the engine does;
- resource options (`protect`, `parent`, `delete_before_replace`), dependencies and the
  provider (the default `aws` provider with the stack's `aws:region`) are filled in;
- the root `pulumi:pulumi:Stack` resource carries the stack outputs (the `site` export tells
  the rules the site's role and tier, as in a real stack).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from infra import sdk
from infra.mockrun import PAIRS, Recorded, StackRun, exiting, run_pair

PROJECT = "postoucancer-dr"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Violation:
    stack: str
    policy: str
    level: str  # "mandatory" | "advisory"
    message: str
    urn: str = ""

    @property
    def mandatory(self) -> bool:
        return self.level == EnforcementLevel.MANDATORY.value

    def __str__(self) -> str:
        where = self.urn.rsplit("::", 1)[-1] if self.urn else "(stack)"
        return f"[{self.level}] {self.stack}: {self.policy}: {where}: {self.message}"


def _opts(protect: bool = False, parent: str | None = None, delete_before_replace: bool = False):
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent or None,
    )


def _provider(run: StackRun, r: Recorded) -> PolicyProviderResource | None:
    pkg = r.type.split(":", 1)[0]
    if not r.custom or pkg in ("pulumi", "postoucancer"):
        return None
    if r.provider:  # an explicit provider: "<urn>::<id>"
        urn = r.provider.rsplit("::", 1)[0]
        explicit = run.by_urn(urn)
        if explicit is not None:
            return PolicyProviderResource(explicit.type, dict(explicit.inputs), explicit.urn, explicit.name)
    props: dict[str, Any] = {}
    if pkg == "aws":
        props["region"] = run.config.get("aws:region")
    urn = f"urn:pulumi:{run.stack}::{PROJECT}::pulumi:providers:{pkg}::default"
    return PolicyProviderResource(f"pulumi:providers:{pkg}", props, urn, "default")


def root_urn(run: StackRun) -> str:
    return f"urn:pulumi:{run.stack}::{PROJECT}::{STACK_TYPE}::{PROJECT}-{run.stack}"


def stack_resources(run: StackRun) -> list[PolicyResource]:
    """Every resource of the run as AnalyzeStack presents it (outputs, options, links)."""
    root = PolicyResource(
        STACK_TYPE, unknown_checking_proxy(dict(run.outputs)), root_urn(run), f"{PROJECT}-{run.stack}",
        _opts(), None, None, [], {},
    )  # fmt: skip
    out = [root]
    for r in run.resources:
        out.append(
            PolicyResource(
                r.type,
                unknown_checking_proxy(dict(r.outputs or r.inputs)),
                r.urn,
                r.name,
                _opts(r.protect, r.parent, r.delete_before_replace),
                _provider(run, r),
                None,
                [],
                {},
            )
        )
    by_urn = {p.urn: p for p in out}
    for p, r in zip(out[1:], run.resources, strict=True):
        top_level = r.parent.split("::")[2:3] == [STACK_TYPE]
        p.parent = by_urn.get(r.parent) or (root if top_level else None)
        p.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
    return out


def resource_args(run: StackRun, r: Recorded, config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """One custom resource as Analyze presents it (inputs, options, provider)."""
    return ResourceValidationArgs(
        r.type,
        unknown_checking_proxy(dict(r.inputs)),
        r.urn,
        r.name,
        _opts(r.protect, r.parent, r.delete_before_replace),
        _provider(run, r),
        config or {},
    )


def _settle(result: Any) -> None:
    if inspect.isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _level(policy: Policy) -> EnforcementLevel:
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def evaluate(
    run: StackRun, policies: Sequence[Policy] | None = None, config: dict[str, dict[str, Any]] | None = None
) -> list[Violation]:
    """Every violation of `policies` (default: the whole pack) in one recorded stack run."""
    if policies is None:
        from policy.rules import POLICIES as policies
    config = config or {}
    # What a rule's `args.not_applicable()` raises: skipped, as the engine does.
    skipped = (UnknownValueError, sdk.not_applicable_error())
    violations: list[Violation] = []
    resources = None
    for policy in policies:
        level = _level(policy)
        if level is EnforcementLevel.DISABLED:
            continue
        if level is EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY

        def report(message: str, urn: str | None = None, *, _p=policy, _l=level, _u="") -> None:
            violations.append(Violation(run.stack, _p.name, _l.value, message, urn or _u))

        try:
            if isinstance(policy, ResourceValidationPolicy):
                for r in run.resources:
                    if not r.custom:
                        continue
                    args = resource_args(run, r, config.get(policy.name))

                    def report_r(message: str, urn: str | None = None, *, _p=policy, _l=level, _r=r) -> None:
                        violations.append(Violation(run.stack, _p.name, _l.value, message, _r.urn))

                    try:
                        _settle(policy.validate(args, report_r))
                    except skipped:
                        continue
            elif isinstance(policy, StackValidationPolicy):
                resources = resources or stack_resources(run)
                _settle(policy.validate(StackValidationArgs(resources, config.get(policy.name)), report))
        except skipped:
            continue
    return violations


def check_stacks(runs: Iterable[StackRun]) -> list[Violation]:
    return [v for run in runs for v in evaluate(run)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.policy_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", action="append", choices=sorted(PAIRS), help="site pair(s); default: all")
    parser.add_argument("--json", metavar="FILE", help="also write the violations as JSON")
    ns = parser.parse_args(argv)
    runs: list[StackRun] = []
    for name in ns.pair or sorted(PAIRS, key=lambda n: n != "prod"):
        pair = run_pair(*PAIRS[name])
        # The backup-only account's stack first, where the pair has one (its bootstrap order).
        runs += [r for r in (getattr(pair, "vault", None), pair.primary, pair.dr) if r is not None]
    violations = check_stacks(runs)
    for run in runs:
        mine = [v for v in violations if v.stack == run.stack]
        mandatory = sum(v.mandatory for v in mine)
        print(f"{run.stack}: {len(run.resources)} resources, {mandatory} mandatory, {len(mine) - mandatory} advisory")
        for v in sorted(mine, key=lambda v: (not v.mandatory, v.policy)):
            print(f"  {v}")
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump([asdict(v) for v in violations], fh, indent=2)
    failed = any(v.mandatory for v in violations)
    print("policy check: " + ("FAILED (mandatory violations above)" if failed else "passed"))
    return 1 if failed else 0


def cli() -> int:
    """`python -m infra.policy_check` and its console script: main, then a quick exit (mockrun.exiting)."""
    return exiting(main())


if __name__ == "__main__":
    sys.exit(cli())
