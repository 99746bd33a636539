"""`pulumi preview --policy-pack policy` would load the pack: the entry point builds a
PolicyPack from every rule (PolicyPack patched: the real one starts a server and blocks),
PulumiPolicy.yaml is a valid Python pack file and requirements.txt covers every third-party
package the pack imports."""

from __future__ import annotations

import importlib.metadata as md
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pulumi_policy
import yaml
from packaging.requirements import Requirement

from policy.rules import POLICIES

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def test_entry_point_builds_the_pack_from_every_rule(monkeypatch):
    built = []

    class FakePack:
        def __init__(self, **kwargs):
            built.append(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", FakePack)
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    (pack,) = built
    assert re.fullmatch(r"[a-zA-Z0-9-_.]{1,100}", pack["name"])
    assert [p.name for p in pack["policies"]] == [p.name for p in POLICIES]
    # What PolicyPack itself validates before serving.
    assert all(isinstance(p, pulumi_policy.Policy) for p in pack["policies"])
    assert len({p.name for p in POLICIES}) == len(POLICIES)


def test_every_policy_states_its_level_and_why():
    for p in POLICIES:
        levels = (pulumi_policy.EnforcementLevel.MANDATORY, pulumi_policy.EnforcementLevel.ADVISORY)
        assert p.enforcement_level in levels
        level = p.enforcement_level.value.capitalize()
        assert f"{level}:" in p.description, f"{p.name}: the description must say why it is {level.lower()}"


def test_pulumi_policy_yaml_is_a_python_pack():
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    runtime = spec["runtime"]
    assert (runtime if isinstance(runtime, str) else runtime["name"]) == "python"
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"])
    main = POLICY_DIR / spec.get("main", ".")
    assert (main / "__main__.py").is_file()


def _closure(names: list[str]) -> set[str]:
    """Distributions required by `names`, transitively (installed metadata)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for req in md.requires(name) or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def test_requirements_cover_everything_the_pack_imports():
    pinned = [
        Requirement(line).name
        for line in (POLICY_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "pulumi-policy" in pinned
    # Import the pack in a fresh interpreter (as the CLI does) and list the top-level modules.
    code = (
        "import sys, runpy, pulumi_policy\n"
        "pulumi_policy.PolicyPack = lambda **k: None\n"
        f"runpy.run_path({str(POLICY_DIR / '__main__.py')!r}, run_name='__main__')\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=POLICY_DIR)
    modules = set(out.stdout.split())
    provided = md.packages_distributions()
    # The repository's own packages (drplan, policy) ship with the pack; after `pip install -e .`
    # they also map to this project's distribution, which is no third-party requirement.
    own = {p.name for p in POLICY_DIR.parent.iterdir() if (p / "__init__.py").is_file()}
    needed = {
        dist.lower().replace("_", "-")
        for m in modules
        for dist in provided.get(m, [])
        if m not in sys.stdlib_module_names and m not in own
    }
    assert needed - _closure(pinned) == set()


def test_docs_list_every_rule():
    text = (POLICY_DIR.parent / "docs" / "policy.md").read_text()
    missing = [p.name for p in POLICIES if f"`{p.name}`" not in text]
    assert missing == []
