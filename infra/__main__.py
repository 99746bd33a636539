"""Pulumi entry point (`main: infra/` in Pulumi.yaml)."""

import sys
from pathlib import Path

# The CLI runs this file by path; make the project root importable (infra, components).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.program import main  # noqa: E402

main()
