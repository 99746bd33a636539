"""The failover and failback sequence, run through the stacks offline, command by command.

    rehearse(pair) -> list[Up]

The commands are the documents' own: the README's failover (`python -m infra.activate
--stack dr --yes`, expanded into the steps it runs) and docs/failback.md. A rehearsal keeps
each stack's configuration as `pulumi config set` / `pulumi config rm` would, remembers
`pulumi state unprotect`, and at each `pulumi up` runs the real program under Pulumi's mock
runtime against the peer's latest outputs, exactly as the engine would read them through
the StackReference. Each `Up` holds the diff of that run against the stack's previous one
and the problems a real engine or provider would raise:

- an update the provider refuses (a primary made a replica again: `Change.refused`);
- a stateful (protected) resource deleted or replaced that no earlier `pulumi state
  unprotect` released (the engine refuses to delete a protected resource).

Other commands (waits, SQL, read-only outputs) act on the running systems, not on the
program's inputs, and are listed as such.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.activation import Change, diff_runs
from infra.commands import option, positionals
from infra.config import PROJECT
from infra.mockrun import ROOT, PairRun, StackRun, run_many
from infra.runbooks import README_WALKTHROUGH, Command
from infra.runbooks import commands as commands_of

FAILBACK_DOC = ROOT / "docs" / "failback.md"
FAILOVER_SECTION = README_WALKTHROUGH
# The activation time the rehearsal records (a fixed one keeps the runs comparable).
REHEARSAL_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Up:
    """One `pulumi up` of the sequence."""

    stack: str
    command: Command
    before: StackRun
    run: StackRun
    changes: list[Change]
    unprotected: frozenset[str] = frozenset()

    @property
    def problems(self) -> list[str]:
        out = []
        for c in self.changes:
            if c.refused:
                out.append(f"{self.command}: {c.type} {c.name}: the provider refuses it ({c.refused})")
            elif c.stateful and c.action in ("delete", "replace") and c.urn not in self.unprotected:
                out.append(
                    f"{self.command}: {c.action} of protected {c.type} {c.name}: the engine refuses it "
                    f"(no `pulumi state unprotect` before this step)"
                )
        return out


@dataclass
class Rehearsal:
    ups: list[Up] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # from commands themselves (e.g. an unknown URN)
    latest: dict[str, StackRun] = field(default_factory=dict)

    def all_problems(self) -> list[str]:
        return self.problems + [p for up in self.ups for p in up.problems]


def sequence() -> list[Command]:
    """The failover commands of the README walkthrough, then the whole of docs/failback.md."""
    failover = [c for c in commands_of(*FAILOVER_SECTION) if _is_activation(c.argv)]
    return failover + commands_of(FAILBACK_DOC)


def _is_activation(argv: list[str]) -> bool:
    return argv[:3] == ["python", "-m", "infra.activate"] and "--dry-run" not in argv


def _expand(cmd: Command) -> list[Command]:
    """`python -m infra.activate …` runs pulumi commands of its own: rehearse those."""
    if not _is_activation(cmd.argv):
        return [cmd]
    from infra import activate

    args = activate.parser().parse_args([*cmd.argv[3:], "--at", REHEARSAL_AT.isoformat()])
    return [
        Command(cmd.path, cmd.line, shlex.join(["pulumi", *s.argv[1:]]))
        for s in activate.steps(args, REHEARSAL_AT)
        if s.argv
    ]


def _value(text: str) -> Any:
    """As the CLI stores a value set with --path: true/false and integers typed, the rest strings."""
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.lstrip("-").isdigit() else text


def _full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _set(cfg: dict[str, Any], key: str, value: Any, path: bool) -> None:
    if not path or "." not in key:
        cfg[_full_key(key)] = value
        return
    top, *rest = key.split(".")
    node = cfg.setdefault(_full_key(top), {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value


def _remove(cfg: dict[str, Any], key: str, path: bool) -> None:
    if not path or "." not in key:
        cfg.pop(_full_key(key), None)
        return
    top, *rest = key.split(".")
    node = cfg.get(_full_key(top), {})
    for part in rest[:-1]:
        node = node.get(part, {})
    node.pop(rest[-1], None)


@dataclass
class _Planned:
    """A `pulumi up` of the sequence, before it runs: its config is known from the commands
    alone; its peer's outputs are those of the peer's latest run before it (`peer`: the index
    of that up, or None for the pair as bootstrapped)."""

    stack: str
    command: Command
    config: dict[str, Any]
    peer: int | None
    before: int | None
    unprotected: frozenset[str]


def _plan(pair: PairRun, commands: list[Command]) -> tuple[list[_Planned], list[tuple[Command, str, str, int | None]]]:
    stacks = (pair.primary.stack, pair.dr.stack)
    peer_of = {stacks[0]: stacks[1], stacks[1]: stacks[0]}
    configs = {s: _copy(run.config) for s, run in ((stacks[0], pair.primary), (stacks[1], pair.dr))}
    latest: dict[str, int | None] = {s: None for s in stacks}
    unprotected: dict[str, set[str]] = {s: set() for s in stacks}
    planned: list[_Planned] = []
    releases = []  # (command, stack, urn, latest up of that stack) to check once the runs exist
    for cmd in (c for raw in commands for c in _expand(raw)):
        argv = cmd.argv
        if argv[0] != "pulumi":
            continue
        stack = option(argv, "--stack", "-s")
        pos = positionals(argv[1:], {"--stack", "-s"})
        if stack not in configs:
            continue  # login, or a stack this pair does not have
        if pos[:2] == ["config", "set"]:
            _set(configs[stack], pos[2], _value(pos[3]), "--path" in argv)
        elif pos[:2] == ["config", "rm"]:
            _remove(configs[stack], pos[2], "--path" in argv)
        elif pos[:2] == ["state", "unprotect"]:
            releases.append((cmd, stack, pos[2], latest[stack]))
            unprotected[stack].add(pos[2])
        elif pos == ["up"]:
            planned.append(
                _Planned(stack, cmd, _copy(configs[stack]), latest[peer_of[stack]], latest[stack],
                         frozenset(unprotected[stack]))
            )
            latest[stack] = len(planned) - 1
    return planned, releases


def rehearse(pair: PairRun, commands: list[Command] | None = None, workers: int = 1) -> Rehearsal:
    """Run `commands` (default: `sequence()`) from the pair as bootstrapped.

    workers > 1 runs the ups that do not wait for each other at the same time (each reads only
    its peer's latest outputs: the activation and its completion, say, both read the primary's
    bootstrapped outputs), in forked processes: the offline plan's figure, not the tests'.
    """
    planned, releases = _plan(pair, sequence() if commands is None else commands)
    initial = {pair.primary.stack: pair.primary, pair.dr.stack: pair.dr}
    runs: list[StackRun | None] = [None] * len(planned)

    def run_of(index: int | None, stack: str) -> StackRun:
        return initial[stack] if index is None else runs[index]  # type: ignore[return-value]

    peer_of = {pair.primary.stack: pair.dr.stack, pair.dr.stack: pair.primary.stack}
    while None in runs:
        ready = [i for i, p in enumerate(planned) if runs[i] is None and (p.peer is None or runs[p.peer] is not None)]
        specs = [(planned[i].stack, planned[i].config, run_of(planned[i].peer, peer_of[planned[i].stack]).outputs)
                 for i in ready]
        for i, run in zip(ready, run_many(specs, workers=workers), strict=True):
            runs[i] = run
    out = Rehearsal()
    for cmd, stack, urn, index in releases:
        if run_of(index, stack).by_urn(urn) is None:
            out.problems.append(f"{cmd}: stack {stack} has no resource {urn}")
    for i, p in enumerate(planned):
        before = run_of(p.before, p.stack)
        out.ups.append(Up(p.stack, p.command, before, runs[i], diff_runs(before, runs[i]), p.unprotected))
    out.latest = {s: run_of(max((i for i, p in enumerate(planned) if p.stack == s), default=None), s)
                  for s in initial}
    return out


def _copy(cfg: dict[str, Any]) -> dict[str, Any]:
    """A deep copy, structured values decoded (a run records them as the JSON the engine passes)."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, str) and v[:1] in ("{", "["):
            with contextlib.suppress(json.JSONDecodeError):  # a placeholder such as "[secret]"
                v = json.loads(v)
        out[k] = copy.deepcopy(v)
    return out
