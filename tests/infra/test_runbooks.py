"""The runbooks (issue 5): generated objectives, and every command they name exists here.

Each command in a ```bash block of docs/runbooks/*.md and docs/failback.md is checked
against this project: `pulumi` subcommands name real stacks, config keys the typed config
knows and outputs the stacks export (under mocks); `python -m` commands go through the
module's own argument parser (the activation dry run actually runs); `kubectl` commands
name the namespace, Deployment and replica counts the program declares; `aws` commands name
an operation and parameters of the AWS API (botocore's service model); `psql` commands take
their DSN from the environment and run read-only SQL or a \\copy.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from drplan.objectives import Scenario
from drplan.periods import format_duration
from infra import config
from infra.commands import option, positionals
from infra.mockrun import ROOT, load_stack_config, run_stack
from infra.runbooks import BEGIN, all_commands, commands, runbook_path, stale
from infra.runbooks import achieved as achieved_objectives

P = "postoucancer-dr:"
ALL = all_commands()


def test_every_scenario_has_a_runbook_with_numbered_steps():
    for scenario in Scenario:
        text = runbook_path(scenario).read_text()
        steps = [int(n) for n in re.findall(r"^(\d+)\. \*\*", text, re.M)]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4, scenario
        assert BEGIN in text
        assert commands(runbook_path(scenario)), f"{scenario.value} names no command"
    assert (ROOT / "docs" / "failback.md").exists()


def test_objectives_blocks_are_up_to_date():
    assert stale() == [], "run: python -m infra.runbooks --write"


def test_runbook_numbers_are_the_models_achieved_objectives():
    """Independent of the renderer: the row in each runbook equals achieved_objectives(prod)."""
    for scenario, a in achieved_objectives("prod").items():
        text = runbook_path(scenario).read_text()
        row = re.search(r"^\| this topology achieves \| (\S+) \| (\S+) \|$", text, re.M)
        assert row, scenario
        assert row.groups() == (format_duration(a.rpo), format_duration(a.rto))
        plan = re.search(r"^\| the plan's objective \| (\S+) \| (\S+) \|$", text, re.M)
        assert plan.groups() == (format_duration(a.objective.rpo), format_duration(a.objective.rto))
        assert a.met


def test_the_runbooks_name_the_project_commands():
    tools = {(c.argv[0], c.argv[2] if c.argv[:2] == ["python", "-m"] else "") for c in ALL}
    for expected in (("python", "infra.activate"), ("python", "lambdas"), ("python", "drill"), ("pulumi", "")):
        assert expected in tools


def test_every_restore_reapplies_the_gdpr_erasure_ledger():
    """Restored data predates later erasures: each scenario's runbook re-applies the ledger."""
    for scenario in Scenario:
        text = runbook_path(scenario).read_text()
        assert "python -m lambdas.gdpr reapply --database postoucancer" in text, scenario.value


# --- the command checker ------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(pair_prod):
    activated = run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={P + "activated": True})
    return {"prod": [pair_prod.primary], "dr": [pair_prod.dr, activated], "vault": [pair_prod.vault]}


def _check_pulumi(argv, runs):
    if argv[1] == "login":  # the state backend: a self-managed one in the DR region
        (url,) = argv[2:]
        assert url.startswith("s3://") and "region=" in url, url
        return
    # `pulumi stack init <stack>` names its stack as a positional argument.
    stack = argv[3] if argv[1:3] == ["stack", "init"] and len(argv) > 3 else option(argv, "--stack", "-s")
    assert stack in runs, f"--stack names no stack of this project: {stack}"
    assert (ROOT / f"Pulumi.{stack}.yaml").exists()
    flags = {a for a in argv[2:] if a.startswith("-")} - {"--stack", "-s", "--policy-pack", "--secrets-provider"}
    assert flags <= {"--yes", "--diff", "--json", "--path", "--secret"}, flags
    sub = argv[1]
    pos = positionals(argv[2:], {"--stack", "-s", "--policy-pack", "--secrets-provider"})
    if "--policy-pack" in argv:
        assert sub == "preview" and option(argv, "--policy-pack") == "policy"
        assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    if sub in ("up", "preview", "refresh"):
        assert pos == []
    elif sub == "config":
        op, key = pos[0], pos[1]
        assert op in ("set", "rm", "get")
        top = key.split(".", 1)[0]
        # The backup-only account's stack has a configuration of its own (infra/vault/config.py).
        from infra.vault.config import VaultConfig

        known = config._known_fields(VaultConfig if stack == "vault" else config.StackConfig)
        assert top in known or top in config.SECRET_KEYS, f"unknown config key {key}"
        if "." in key:
            nested = known[top]
            field = re.sub(r"\[\d+\]$", "", key.split(".")[1])
            assert nested is not None and field in config._known_fields(nested), key
        if top in config.SECRET_KEYS and op == "set":
            assert "--secret" in argv, f"{key} is a secret: set it with --secret"
        if op == "set" and key == "activated":
            assert pos[2] in ("true", "false")
    elif sub == "state":
        # Only releasing a resource from protection, and only one the program declares.
        assert pos[0] == "unprotect" and len(pos) == 2, pos
        assert any(r.by_urn(pos[1]) for r in runs[stack]), f"stack {stack} declares no {pos[1]}"
        assert "--yes" in argv
    elif sub == "stack":
        assert pos[0] in ("output", "select", "init")
        if pos[0] == "init":
            assert pos[1] == stack or (ROOT / f"Pulumi.{pos[1]}.yaml").exists(), pos
            provider = option(argv, "--secrets-provider")
            assert provider is None or provider.startswith("awskms://"), provider
        if pos[0] == "output" and len(pos) > 1:
            exported = set().union(*(r.outputs for r in runs[stack]))
            assert pos[1] in exported, f"stack {stack} exports no {pos[1]}"
    else:
        raise AssertionError(f"pulumi {sub} is not a command the runbooks may use")


def _check_python(argv, runs):
    assert argv[1] == "-m"
    module, args = argv[2], argv[3:]
    if module == "infra.activate":
        from infra import activate

        activate.parser().parse_args(args)
        if "--dry-run" in args:
            out = io.StringIO()
            assert activate.main(args, out=out) == 0, out.getvalue()
            assert "dry run complete" in out.getvalue()
    elif module == "infra.plan":
        from infra import plan

        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert plan.main(args) == 0
        assert "what `pulumi config set activated true -s dr" in out.getvalue()
    elif module == "lambdas":
        from lambdas import cli

        cli._event(cli._parser().parse_args(args))  # validates flags and probes
    elif module == "lambdas.gdpr":
        from lambdas import gdpr

        gdpr._event(gdpr._parser().parse_args(args))
    elif module == "drill":
        from drill import cli as drill_cli

        drill_cli.parse_args(args)
    elif module == "infra.runbooks":
        from infra import runbooks

        with contextlib.redirect_stdout(io.StringIO()):
            assert runbooks.main(args) == 0
    else:
        raise AssertionError(f"python -m {module} is not a module of this project")


def _check_kubectl(argv, runs):
    site = option(argv, "--context")
    namespace = option(argv, "-n", "--namespace")
    assert site in runs, f"--context names no site: {site}"
    run = runs[site][0]
    (ns,) = run.of_type("kubernetes:core/v1:Namespace")
    assert namespace == ns.inputs["metadata"]["name"]
    deployment = run.one("kubernetes:apps/v1:Deployment").inputs["metadata"]["name"]
    pos = positionals(argv[1:], {"--context", "-n", "--namespace"})
    assert pos[-1] == f"deployment/{deployment}", pos
    if pos[0] == "scale":
        replicas = int(option(argv, "--replicas"))
        app = {**config.App().model_dump(by_alias=True), **load_stack_config(site).get(P + "app", {})}
        assert replicas in (0, app["replicas"], app["standbyReplicas"]), f"{replicas} is no size of {site}"
    else:
        assert pos[:2] == ["rollout", "status"], pos


def _check_aws(argv, runs):
    import botocore.session

    session = botocore.session.get_session()
    service = {"s3api": "s3"}.get(argv[1], argv[1])
    model = session.get_service_model(service)
    operations = {op.lower(): op for op in model.operation_names}
    args = argv[2:]
    if args[0] == "wait":
        waiters = {w.lower(): w for w in session.get_waiter_model(service).waiter_names}
        waiter = args[1].replace("-", "")
        assert waiter in waiters, f"aws {argv[1]} wait {args[1]} does not exist"
        op_name = session.get_waiter_model(service).get_waiter(waiters[waiter]).operation
        args = args[2:]
    else:
        op = args[0].replace("-", "")
        assert op in operations, f"aws {argv[1]} {args[0]} does not exist"
        op_name = operations[op]
        args = args[1:]
    members = {m.lower() for m in model.operation_model(op_name).input_shape.members}
    for a in args:
        if a.startswith("--") and a not in ("--region", "--no-cli-pager"):
            name = a[2:].replace("-", "")
            ok = name in members or (name.startswith("no") and name[2:] in members)
            assert ok, f"aws {argv[1]} {op_name} has no parameter {a}"


def _check_psql(argv, runs):
    assert argv[1].startswith("$"), "psql takes its DSN from the environment, never inline"
    sql = option(argv, "-c")
    assert sql, "psql -c <SQL>"
    first = sql.split()[0].lower()
    # The one write a runbook may make: failback's write pause (and its lifting), which makes
    # the database read-only for new sessions and changes no data.
    fence = re.fullmatch(
        r"ALTER DATABASE postoucancer (SET default_transaction_read_only = on|RESET default_transaction_read_only)", sql
    )
    assert first in ("select", "with", "show") or first == "\\copy" or fence, f"not read-only: {sql}"


CHECKERS = {
    "pulumi": _check_pulumi,
    "python": _check_python,
    "kubectl": _check_kubectl,
    "aws": _check_aws,
    "psql": _check_psql,
}


@pytest.mark.parametrize("command", ALL, ids=[f"{c.path.stem}:{c.line}" for c in ALL])
def test_every_runbook_command_exists_in_this_project(command, runs):
    argv = command.argv
    assert argv[0] in CHECKERS, f"{command}: {argv[0]} is not a tool of this project"
    try:
        CHECKERS[argv[0]](argv, runs)
    except SystemExit as e:  # an argparse refusal
        raise AssertionError(f"{command}: refused by the argument parser") from e
    except AssertionError as e:
        raise AssertionError(f"{command}: {e}") from e


def test_the_ransomware_runbook_restores_from_the_vault_accounts_real_vaults(pair_prod):
    """Step 6 names the vault stack's vaults by their real names and regions (one per site region)."""
    vaults = {v.inputs["name"]: v.region for v in pair_prod.vault.of_type("aws:backup/vault:Vault")}
    named = []
    for c in commands(runbook_path(Scenario.RANSOMWARE)):
        for flag in ("--backup-vault-name", "--source-backup-vault-name"):
            name = option(c.argv, flag)
            if name and name.startswith("postoucancer-vault"):
                assert vaults.get(name) == option(c.argv, "--region"), c
                named.append(name)
    assert set(named) == set(vaults)


@pytest.mark.parametrize(
    "bad",
    [
        "pulumi config set activatd true --stack dr",
        "pulumi stack output noSuchOutput --stack prod",
        "pulumi destroy --stack dr",
        "pulumi config set --path accounts.recoveryy[0] 123456789012 --stack vault",
        "pulumi stack output vaultBucketArn --stack prod",
        "python -m lambdas restore --database postoucancer",
        "kubectl --context prod -n default scale deployment/api --replicas=3",
        "kubectl --context prod -n postoucancer scale deployment/api --replicas=7",
        "aws rds restore-db-instance-from-nowhere --region eu-west-3",
        "aws rds restore-db-instance-to-point-in-time --restore-tme x",
        'psql "$DB_DSN" -c "DELETE FROM posts"',
        'psql "$DB_DSN" -c "ALTER DATABASE postoucancer OWNER TO attacker"',
        "pulumi state unprotect 'urn:pulumi:prod::postoucancer-dr::postoucancer:aws:X$aws:s3/bucket:Bucket::nope' "
        "--stack prod --yes",
        "pulumi state delete 'urn:pulumi:prod::postoucancer-dr::postoucancer:aws:PostgresPrimary"
        "$aws:rds/instance:Instance::primary-database' --stack prod --yes",
        "psql postgres://admin:secret@host/db -c 'SELECT 1'",
    ],
)
def test_the_checker_refuses_commands_that_do_not_exist(bad, runs):
    from infra.runbooks import Command

    command = Command(ROOT / "docs" / "failback.md", 0, bad)
    with pytest.raises((AssertionError, SystemExit)):
        CHECKERS[command.argv[0]](command.argv, runs)
