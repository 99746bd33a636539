"""The offline plan against a bare import of the SDK modules it uses, side by side.

    .venv/bin/python bench/bench_plan.py [--rounds 5] [--pair prod]

Every measurement is a fresh interpreter (`python -c ...`, `python -m infra.plan`), so
both figures include the interpreter's start. The rounds alternate the two commands
(the machine is shared: a burst of load hits both alike) and each figure is the best
round. Printed: both figures, their ratio, and the load average before and after.

Which SDK modules the plan uses is not a hand-kept list: a first run of the plan in a
subprocess reports the modules it actually loaded (pulumi_aws and pulumi_kubernetes load
their submodules lazily, so only the ones the program touches count), and the bare
import loads exactly those. Loads: `import pulumi_aws.ec2` alone only installs a lazy
stub (about 1 s for all of them); the service's code runs at its first attribute access,
as in the program. Both are printed; the target is against the real load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Third-party packages the plan may load; the discovery run keeps those it does load.
ROOTS = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy", "pulumi_azure_native", "pydantic", "yaml")

_DISCOVER = r"""
import json, sys, contextlib, io
from infra import plan
with contextlib.redirect_stdout(io.StringIO()):
    plan.main(sys.argv[1:])
roots = set(json.loads(%r))
def loaded(name):
    # A lazily imported submodule that was never touched is still a LazyLoader stub.
    return type(sys.modules[name]).__name__ != "_LazyModule"
print(json.dumps(sorted(m for m in list(sys.modules) if m.split(".")[0] in roots and loaded(m))))
"""


# `import pulumi_aws.ec2` alone only installs the SDK's lazy stub (pulumi._utils._LazyModule):
# the service loads at the first access of a non-introspection attribute, as the program does.
_BARE = r"""
import importlib, json, sys
for name in json.loads(%r):
    getattr(importlib.import_module(name), "_bench_load_", None)
lazy = [m for m, v in sys.modules.items() if m in json.loads(%r) and type(v).__name__ == "_LazyModule"]
assert not lazy, lazy
"""


def _python() -> str:
    return sys.executable


def discover(pair: str) -> list[str]:
    code = _DISCOVER % json.dumps(ROOTS)
    out = subprocess.run(
        [_python(), "-c", code, "--pair", pair], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out.strip().splitlines()[-1])
    # Only packages (a service, an API group version), not each resource's own module.
    packages = []
    for m in modules:
        parts = m.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        if parts[0] == "pulumi_aws" and len(parts) > 2:
            continue
        if parts[0] == "pulumi_kubernetes" and len(parts) > 3:
            continue
        if parts[0] not in ("pulumi_aws", "pulumi_kubernetes") and len(parts) > 1:
            continue  # `import pulumi` / `import pydantic` load their own submodules
        packages.append(m)
    return packages


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time suffers less from a busy machine."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each command; the best counts")
    parser.add_argument("--pair", default="prod")
    args = parser.parse_args(argv)

    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    modules = discover(args.pair)
    print(f"SDK modules the plan loads ({len(modules)}): {' '.join(modules)}")
    commands = {
        # What the plan loads: every module, lazily installed services included.
        "import": [_python(), "-c", _BARE % (json.dumps(modules), json.dumps(modules))],
        # For comparison: `import` statements alone, which leave the services as lazy stubs.
        "stubs": [_python(), "-c", "import " + ", ".join(modules)],
        "plan": [_python(), "-m", "infra.plan", "--pair", args.pair],
    }
    times: dict[str, list[tuple[float, float]]] = {what: [] for what in commands}
    for i in range(args.rounds):
        for what, cmd in commands.items():
            times[what].append(timed(cmd))
        print(f"  round {i + 1}: " + ", ".join(f"{w} {t[-1][0]:.2f} s (cpu {t[-1][1]:.2f})" for w, t in times.items()))
    best = {what: (min(w for w, _ in t), min(c for _, c in t)) for what, t in times.items()}
    print(f"load average after:  {load()}")
    labels = {
        "import": "bare import of the SDK modules (loaded)",
        "stubs": "`import` statements only (lazy stubs)",
        "plan": f"python -m infra.plan --pair {args.pair}",
    }
    for what, (wall, cpu) in best.items():
        print(f"{labels[what]:<42} {wall:6.2f} s wall, {cpu:6.2f} s cpu  (best of {args.rounds})")
    for base in ("import", "stubs"):
        print(
            f"ratio plan / {labels[base]}: {best['plan'][0] / best[base][0]:.1f}x wall, "
            f"{best['plan'][1] / best[base][1]:.1f}x cpu"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
