"""docs/azure.md's first real deployment: every `pulumi` and `python -m` command is checked
like the runbooks' (stacks, config keys, outputs, module arguments) against the Azure stacks;
`az` commands name the resource providers the sites use."""

from __future__ import annotations

import pytest

from infra.commands import option
from infra.mockrun import ROOT, run_stack
from infra.runbooks import commands
from tests.infra.test_runbooks import _check_pulumi, _check_python

DOC = ROOT / "docs" / "azure.md"
COMMANDS = commands(DOC)
NAMESPACES = {
    "Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.Network", "Microsoft.ManagedIdentity",
    "Microsoft.DBforPostgreSQL", "Microsoft.DataProtection", "Microsoft.Cache", "Microsoft.App",
    "Microsoft.ContainerRegistry", "Microsoft.OperationalInsights", "Microsoft.Insights",
}


@pytest.fixture(scope="module")
def runs(pair_azure):
    activated = run_stack(
        "dr-azure", peer_outputs=pair_azure.primary.outputs, overrides={"postoucancer-dr:activated": True}
    )
    return {"prod-azure": [pair_azure.primary], "dr-azure": [pair_azure.dr, activated]}


def _check(argv, runs):
    if argv[0] == "az":
        assert argv[1:2] == ["login"] or argv[1:3] in (["account", "set"], ["provider", "register"],
                                                         ["acr", "build"]), argv
        if argv[1] == "provider":
            assert argv[3] == "--namespace" and argv[4] in NAMESPACES, argv
        if argv[1] == "acr":
            # The image the jobs run (infra/azure/functions.py), built from the functions' Dockerfile.
            from infra.azure.functions import IMAGE_REPOSITORY

            assert option(argv, "--image") == f"{IMAGE_REPOSITORY}:1.0.0", argv
            assert (ROOT / option(argv, "--file")).exists() and argv[-1] == ".", argv
        return
    if argv[0] == "pulumi" and argv[1] == "login":
        assert argv[2].startswith("azblob://"), argv
        return
    if argv[0] == "pulumi" and argv[1:3] == ["stack", "init"]:
        assert argv[3] in runs and option(argv, "--secrets-provider").startswith("azurekeyvault://"), argv
        return
    {"pulumi": _check_pulumi, "python": _check_python}[argv[0]](argv, runs)


def test_the_deployment_walkthrough_uses_the_bootstrap_order_and_locks():
    ups = [c.argv[-1] for c in COMMANDS if c.argv[:2] == ["pulumi", "up"]]
    assert ups[:4] == ["dr-azure", "prod-azure", "dr-azure", "prod-azure"]
    assert any("azure.immutability" in c.text and c.argv[2] == "rm" for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"azure:{c.line}" for c in COMMANDS])
def test_every_command_exists_in_this_project(command, runs):
    try:
        _check(command.argv, runs)
    except SystemExit as e:
        raise AssertionError(f"{command}: refused by the argument parser") from e
