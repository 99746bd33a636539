"""Commands the documents and the tracked tasks name, without the program's weight.

The runbooks' ```bash blocks (`commands`), the path of a scenario's runbook, and the activation
CLI's command line: plain text and paths, so that the stack program (the quarterly tracked task,
infra/aws/drills.py) can quote them without loading the mock runner or another cloud's SDK.
infra.runbooks and infra.activate use the same definitions.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from drplan.objectives import Scenario

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK_DIR = ROOT / "docs" / "runbooks"
ACTIVATE = "python -m infra.activate"


def runbook_path(scenario: Scenario) -> Path:
    return RUNBOOK_DIR / f"{scenario.value}.md"


def activate_command(*args: str) -> str:
    """`python -m infra.activate` with `args`, as the runbooks and the tracked tasks print it."""
    return shlex.join([*ACTIVATE.split(), *args])


@dataclass(frozen=True)
class Command:
    path: Path
    line: int
    text: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text}"


def commands(path: Path, section: str | None = None) -> list[Command]:
    """Every command in the ```bash blocks of `path` (continuations joined, comments dropped);
    with `section`, only those under the `## <section>` heading."""
    out: list[Command] = []
    in_block = False
    in_section = section is None
    pending, start = "", 0
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if section is not None and raw.startswith("## "):
            in_section = raw[3:].strip() == section
        if not in_section:
            continue
        if line.startswith("```"):
            in_block = line == "```bash" if not in_block else False
            continue
        if not in_block or (not pending and (not line or line.startswith("#"))):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(Command(path, start, (pending + line).strip()))
        pending = ""
    return out


def option(argv: list[str], *names: str) -> str | None:
    """The value of the first of `names` (`--stack dr` or `--stack=dr`) in a command's argv."""
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def positionals(argv: list[str], with_value: set[str]) -> list[str]:
    """The arguments that are not flags, skipping the values of the flags in `with_value`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in with_value:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out
