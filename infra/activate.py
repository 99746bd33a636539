"""Activate the DR site in one command, printing each step and its outcome.

    python -m infra.activate --dry-run          # offline: what activation would change; runs nothing
    python -m infra.activate                    # for real: pulumi config set … && pulumi up -s dr
    python -m infra.activate --stack staging-dr --yes --at 2026-11-27T21:00:00Z
    python -m infra.activate --record-test      # after the quarterly activation test: record it

The sequence is exactly the design card's `pulumi config set activated true -s dr &&
pulumi up -s dr`, plus what makes it safe and traceable:

1. check the stack's committed configuration (offline): it must be a dr-role stack;
2. offline preview (the real program under mocks, dr activated false vs true): the
   resources that will change; refuses to go on if a stateful resource would be replaced
   or deleted (`--no-offline-preview` skips this when the repository is not at hand);
3. `pulumi config set activatedAt <time>` — the activation time, fixed once, exported;
4. `pulumi config set activated true`;
5. `pulumi up` — promotes the replica (alone: at the standby's size, single-AZ), scales the API
   to production size, forces DNS to the DR site, stops expecting replication from the primary:
   service is back after this step;
6. `pulumi config set activationComplete true` and `pulumi up` — the promoted database becomes
   Multi-AZ at production size (AWS's own order: promote, then modify; the conversion takes long
   and nothing waits for it on the way back to service);
7. `pulumi stack output activatedAt` and `pulumi stack output dns --json` — the result.

Nothing here talks to the primary region: the dr stack's state backend, cluster,
database and Route 53 (global) are all reachable with eu-west-3 gone.
Exit status: 0 done (or dry run shown), 1 a step failed, 2 bad arguments or
configuration, 3 the preview shows a stateful resource replaced or deleted.

`--record-test` records that the plan's quarterly DR activation test was done (at `--at`, default
now): `aws ssm put-parameter` of the time into the DR stack's record
(`drplan.names.activation_test_parameter`), in the DR region. A daily function publishes the
record's age and an alarm fires once it is older than a quarter plus the grace period
(drplan.schedules); the quarterly tracked task names this command.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drplan.names import activation_test_parameter
from infra.commands import ACTIVATE, activate_command
from infra.config import PROJECT, SECRET_KEYS, ConfigError, Role, parse
from infra.mockrun import PAIRS, exiting, load_stack_config


@dataclass
class Step:
    title: str
    argv: list[str] | None = None  # a command to run; None: an in-process check
    check: Callable[[], tuple[bool, str]] | None = None

    @property
    def shown(self) -> str:
        return shlex.join(self.argv) if self.argv else self.title


def _timestamp(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-27T21:00:00Z") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z for UTC")
    return at.astimezone(UTC)


PROG = ACTIVATE
command = activate_command  # this CLI's command line with given arguments (infra.commands)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    dr_stacks = sorted(dr for _, dr in PAIRS.values())
    p.add_argument("--stack", default="dr", choices=dr_stacks, help="the DR stack to activate (default: dr)")
    p.add_argument("--dry-run", action="store_true", help="show every step and the offline preview; run nothing")
    p.add_argument("--yes", action="store_true", help="pass --yes to pulumi up (no interactive confirmation)")
    p.add_argument("--at", type=_timestamp, help="activation time to record (default: now, UTC)")
    p.add_argument("--pulumi", default="pulumi", help="the Pulumi CLI to run (default: pulumi on PATH)")
    p.add_argument(
        "--record-test",
        action="store_true",
        help="record that the quarterly DR activation test was done (at --at, default now); activates nothing",
    )
    p.add_argument("--aws", default="aws", help="the AWS CLI to run for --record-test (default: aws on PATH)")
    p.add_argument(
        "--no-offline-preview",
        action="store_true",
        help="skip the offline preview (e.g. activating from a machine without this repository's venv)",
    )
    return p


def dr_config(stack: str):
    """The committed configuration of `stack` (ConfigError if invalid)."""
    raw_file = load_stack_config(stack)
    prefix = f"{PROJECT}:"
    raw = {
        k[len(prefix) :]: v for k, v in raw_file.items() if k.startswith(prefix) and k[len(prefix) :] not in SECRET_KEYS
    }
    raw.pop("activated", None)
    raw.pop("activatedAt", None)
    return parse(raw, raw_file.get("aws:region"))


def check_stack(stack: str) -> tuple[bool, str]:
    """The committed configuration of `stack` is valid and is a dr site."""
    try:
        cfg = dr_config(stack)
    except ConfigError as e:
        return False, str(e)
    if cfg.role is not Role.DR:
        return False, f"stack {stack} has role {cfg.role.value}: only a dr site can be activated"
    return True, f"dr site in {cfg.region}, peer {cfg.peer_stack} (primary in {cfg.peer_region})"


def offline_preview(stack: str, at: datetime) -> tuple[bool, list[str]]:
    """The changes activation makes, from the real program under mocks; False if any is risky."""
    from infra.activation import activation_runs, diff_completion, diff_runs, output_changes
    from infra.mockrun import run_pair

    label = next(label for label, (_, dr) in PAIRS.items() if dr == stack)
    pair = run_pair(*PAIRS[label], dr_overrides={"postoucancer-dr:activated": False})
    # The runs leave the time to the program (at=None): the same runs then serve every preview
    # (and the offline plan) instead of two new program runs per activation time; the time this
    # activation records is shown as the one output that depends on it.
    before, after = activation_runs(pair, None)
    changes = diff_runs(before, after)
    completion = diff_completion(pair, None)
    stamp = at.isoformat().replace("+00:00", "Z")
    lines = [str(c) for c in changes] + [
        f"output activatedAt: (unset) → {stamp}" if c.path == "activatedAt" else f"output {c}"
        for c in output_changes(before, after)
    ]
    lines += ["then activationComplete:"] + [f"  {c}" for c in completion]
    risky = [c for c in changes + completion if c.risky]
    if risky:
        lines.append(f"REFUSED: {len(risky)} stateful resource(s) would be replaced or deleted")
    return not risky, lines


def steps(args: argparse.Namespace, at: datetime) -> list[Step]:
    pulumi = [args.pulumi]
    stack = ["--stack", args.stack]
    stamp = at.isoformat().replace("+00:00", "Z")
    up = [*pulumi, "up", *stack, *(["--yes"] if args.yes else [])]
    return [
        Step("pulumi config set activatedAt", [*pulumi, "config", "set", "activatedAt", stamp, *stack]),
        Step("pulumi config set activated", [*pulumi, "config", "set", "activated", "true", *stack]),
        Step("pulumi up (promote, app, DNS)", up),
        Step("pulumi config set activationComplete", [*pulumi, "config", "set", "activationComplete", "true", *stack]),
        Step("pulumi up (database Multi-AZ, production size)", up),
        Step("activation time", [*pulumi, "stack", "output", "activatedAt", *stack]),
        Step("DNS state", [*pulumi, "stack", "output", "dns", "--json", *stack]),
    ]


def record_test_step(args: argparse.Namespace, at: datetime) -> Step:
    region = dr_config(args.stack).region
    stamp = at.isoformat().replace("+00:00", "Z")
    return Step("record the activation test", [
        args.aws, "ssm", "put-parameter", "--name", activation_test_parameter(args.stack), "--type", "String",
        "--value", stamp, "--overwrite", "--region", region])


def record_test(args: argparse.Namespace, at: datetime, out) -> int:
    if at > datetime.now(UTC) + timedelta(minutes=5):
        print(f"--at {at.isoformat()} is in the future: record a test that was done (default: now)", file=out)
        return 2
    ok, message = check_stack(args.stack)
    print(f"[1/2] check the committed configuration of {args.stack}: {'ok' if ok else 'FAILED'}", file=out)
    print(f"        {message}", file=out)
    if not ok:
        return 2
    step = record_test_step(args, at)
    if args.dry_run:
        print(f"[2/2] {step.title}: would run (dry run)\n        $ {step.shown}", file=out)
        return 0
    print(f"[2/2] {step.title}: running $ {step.shown}", file=out, flush=True)
    try:
        result = subprocess.run(step.argv or [], check=False)
    except FileNotFoundError:
        print(f"[2/2] {step.title}: FAILED: {args.aws!r} not found: install the AWS CLI or pass --aws PATH", file=out)
        return 1
    if result.returncode != 0:
        print(f"[2/2] {step.title}: FAILED (exit {result.returncode}); nothing was recorded", file=out)
        return 1
    print(f"activation test of {args.stack} recorded at {step.argv[step.argv.index('--value') + 1]}", file=out)
    return 0


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    at = args.at or datetime.now(UTC).replace(microsecond=0)
    if args.record_test:
        return record_test(args, at, out)
    commands = steps(args, at)
    total = 2 + len(commands)

    def say(n: int, title: str, outcome: str, detail: list[str] = ()) -> None:
        print(f"[{n}/{total}] {title}: {outcome}", file=out)
        for line in detail:
            print(f"        {line}", file=out)

    mode = "DRY RUN — nothing is changed" if args.dry_run else "activation"
    print(f"DR {mode}: stack {args.stack}, activatedAt {at.isoformat().replace('+00:00', 'Z')}", file=out)
    try:
        ok, message = check_stack(args.stack)
    except FileNotFoundError as e:
        ok, message = False, str(e)
    say(1, f"check the committed configuration of {args.stack}", "ok" if ok else "FAILED", [message])
    if not ok:
        return 2
    if args.no_offline_preview:
        say(2, "offline preview", "skipped (--no-offline-preview)")
    else:
        try:
            ok, lines = offline_preview(args.stack, at)
        except ConfigError as e:
            say(2, "offline preview of the changes", "FAILED", [str(e)])
            return 2
        say(2, "offline preview of the changes", "ok" if ok else "REFUSED", lines or ["(no change)"])
        if not ok:
            return 3
    for n, step in enumerate(commands, start=3):
        if args.dry_run:
            say(n, step.title, "would run (dry run)", [f"$ {step.shown}"])
            continue
        print(f"[{n}/{total}] {step.title}: running $ {step.shown}", file=out, flush=True)
        try:
            result = subprocess.run(step.argv or [], check=False)
        except FileNotFoundError:
            say(n, step.title, "FAILED", [f"{args.pulumi!r} not found: install the Pulumi CLI or pass --pulumi PATH"])
            return 1
        if result.returncode != 0:
            say(
                n,
                step.title,
                f"FAILED (exit {result.returncode})",
                ["fix the cause and run the same command again: every step is idempotent"],
            )
            return 1
        say(n, step.title, "ok")
    if args.dry_run:
        print("dry run complete: run again without --dry-run to activate", file=out)
        print(f"after the quarterly activation test, record it: {command('--stack', args.stack, '--record-test')}",
              file=out)
    else:
        print(f"DR site {args.stack} active since {at.isoformat().replace('+00:00', 'Z')}", file=out)
    return 0


def cli() -> int:
    """`python -m infra.activate` and its console script: main, then a quick exit (mockrun.exiting)."""
    return exiting(main())


if __name__ == "__main__":
    sys.exit(cli())
