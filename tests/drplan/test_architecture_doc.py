"""docs/architecture.md and the README agree on the layout, and the layout is the repository's."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `([^`]+)`")


def _layout(text: str) -> dict[str, str]:
    table = text[text.index("| path | what |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows[ROW.match(line).group(1)] = line
    return rows


def test_readme_layout_is_the_architecture_pages():
    readme = _layout((ROOT / "README.md").read_text())
    arch = _layout((ROOT / "docs" / "architecture.md").read_text())
    assert readme == arch


def test_every_package_of_the_layout_exists_and_is_in_an_import_contract():
    arch = _layout((ROOT / "docs" / "architecture.md").read_text())
    # tests/ is a package for pytest, not part of the program.
    packages = [p.rstrip("/") for p in arch if p.endswith("/") and (ROOT / p / "__init__.py").is_file()]
    packages = [p for p in packages if p != "tests"]
    assert {"drplan", "components", "infra", "lambdas", "policy", "drill"} <= set(packages)
    for path in arch:
        if path.endswith("/"):
            assert (ROOT / path).is_dir(), path
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == set(packages)
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    named = {p.strip() for layer in layers for p in layer.split("|")}
    assert named == set(packages), "every package has its place in the layers"
