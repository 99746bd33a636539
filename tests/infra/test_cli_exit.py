"""The operator CLIs that run the program under mocks leave through mockrun.exiting, and every
console script of pyproject.toml names a function that exists."""

from __future__ import annotations

import gc
import importlib
import tomllib

import pytest

from infra.mockrun import ROOT


@pytest.mark.parametrize("module_name", ["infra.plan", "infra.activate", "infra.policy_check"])
def test_cli_freezes_the_heap_and_keeps_the_exit_code(monkeypatch, module_name):
    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, "main", lambda: 3)
    gc.unfreeze()
    try:
        assert module.cli() == 3
        # Teardown's collections skip frozen objects: the plan's 1.2 s exit (bench/bench_plan.py).
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_every_console_script_names_a_callable():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts
    for name, target in scripts.items():
        module_name, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module_name), attr, None)), f"{name} = {target}"
    # The CLIs that run the program under mocks exit through cli(), not main().
    for module_name in ("infra.plan", "infra.activate", "infra.policy_check"):
        assert f"{module_name}:cli" in scripts.values()
