"""`python -m infra.activate` (issue 5): the one-command activation and its dry run."""

from __future__ import annotations

import io
import stat

import pytest

from infra import activate, activation
from infra.activation import Change

AT = "2026-11-27T21:00:00Z"


def _run(argv) -> tuple[int, str]:
    out = io.StringIO()
    code = activate.main(argv, out=out)
    return code, out.getvalue()


@pytest.fixture
def fake_pulumi(tmp_path):
    """A stand-in CLI that logs its arguments; fails when they contain $FAIL_ON."""
    log = tmp_path / "calls.log"
    script = tmp_path / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ -n "$FAIL_ON" ] && echo "$*" | grep -q -- "$FAIL_ON"; then exit 7; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def test_dry_run_prints_every_step_and_the_offline_changes_and_runs_nothing(fake_pulumi):
    script, log = fake_pulumi
    code, text = _run(["--dry-run", "--at", AT, "--pulumi", str(script)])
    assert code == 0
    assert not log.exists(), "a dry run runs no command"
    assert "[1/9] check the committed configuration of dr: ok" in text
    assert "[2/9] offline preview of the changes: ok" in text
    assert "~ update  Record dr-dns-primary" in text and "~ update  HorizontalPodAutoscaler dr-api-hpa" in text
    assert f"output activatedAt: (unset) → {AT}" in text
    for command in (
        f"config set activatedAt {AT} --stack dr",
        "config set activated true --stack dr",
        "up --stack dr",
        "config set activationComplete true --stack dr",
        "up --stack dr",
        "stack output activatedAt --stack dr",
        "stack output dns --json --stack dr",
    ):
        assert f"$ {script} {command}" in text
    assert text.count("would run (dry run)") == 7


def test_activation_runs_the_sequence_in_order(fake_pulumi):
    script, log = fake_pulumi
    code, text = _run(["--at", AT, "--yes", "--pulumi", str(script), "--no-offline-preview"])
    assert code == 0, text
    assert log.read_text().splitlines() == [
        f"config set activatedAt {AT} --stack dr",
        "config set activated true --stack dr",
        "up --stack dr --yes",
        # Promotion first, alone; then Multi-AZ and size (AWS's order: promote, then modify).
        "config set activationComplete true --stack dr",
        "up --stack dr --yes",
        "stack output activatedAt --stack dr",
        "stack output dns --json --stack dr",
    ]
    assert f"DR site dr active since {AT}" in text


def test_a_failed_step_stops_the_sequence(fake_pulumi, monkeypatch):
    script, log = fake_pulumi
    monkeypatch.setenv("FAIL_ON", "up --stack")
    code, text = _run(["--at", AT, "--pulumi", str(script), "--no-offline-preview", "--stack", "staging-dr"])
    assert code == 1
    assert "[5/9] pulumi up (promote, app, DNS): FAILED (exit 7)" in text
    assert log.read_text().splitlines()[-1] == "up --stack staging-dr"  # nothing after the failure


def test_missing_cli_is_named(tmp_path):
    code, text = _run(["--at", AT, "--pulumi", str(tmp_path / "nope"), "--no-offline-preview"])
    assert code == 1 and "not found" in text


def test_refuses_when_the_preview_replaces_something_stateful(fake_pulumi, monkeypatch):
    script, log = fake_pulumi
    risky = Change("replace", "aws:rds/instance:Instance", "dr-db", "urn:x", stateful=True)
    monkeypatch.setattr(activation, "diff_runs", lambda before, after: [risky])
    code, text = _run(["--at", AT, "--pulumi", str(script)])
    assert code == 3 and "REFUSED" in text
    assert not log.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "prod"], "invalid choice"),
        (["--at", "yesterday"], "not an ISO 8601 time"),
        (["--at", "2026-11-27T21:00:00"], "no time zone"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        activate.parser().parse_args(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
