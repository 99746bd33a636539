"""The `drill` command end to end: real PostgreSQL, barman-cloud, moto on loopback.

Run as a subprocess: the exit code, the JSON on stdout and the teardown are what CI and a
new user see.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from drill.local import PG_BIN
from drplan.objectives import SCENARIO_OBJECTIVES, Scenario

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "postgres").exists(), reason="PostgreSQL 15 server binaries missing"),
]

ROOT = Path(__file__).resolve().parents[2]
REDUCED = ["--rows", "500", "--load-seconds", "1", "--rate", "150"]


@pytest.fixture
def workdir():
    """A work directory the `postgres` user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="drill-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_drill(*args: str, workdir: Path) -> tuple[int, dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "drill", *REDUCED, "--json", "--workdir", str(workdir), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def processes_under(path: Path) -> list[str]:
    """Command lines of live processes that mention `path` (a leaked postmaster would)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(cmdline)
    return found


def by_name(report: dict) -> dict[str, dict]:
    return {s["scenario"]: s for s in report["scenarios"]}


def checks(scenario: dict) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in scenario["checks"]}


def test_reduced_drill_meets_every_objective(workdir):
    code, report, stderr = run_drill(workdir=workdir)
    assert code == 0, stderr
    assert report["passed"]
    s = by_name(report)
    assert set(s) == {x.value for x in Scenario}
    for name, result in s.items():
        objective = SCENARIO_OBJECTIVES[Scenario(name)]
        assert result["passed"], result
        assert result["objective"]["rto_seconds"] == objective.rto.total_seconds()
        assert 0 < result["rto_seconds"] <= objective.rto.total_seconds()
        assert all(c["ok"] for c in result["checks"]), result["checks"]

    # Scenario 2: synchronous standby, hard kill, promotion, redirect.
    dc = s["datacentre-loss"]
    assert dc["rpo_rows"] == 0 and dc["rpo_seconds"] == 0
    assert dc["facts"]["standby_state_at_loss"] == "sync"
    assert dc["rto_seconds"] <= 5.0

    # Scenarios 1 and 4: exact point-in-time restores.
    assert checks(s["database-corruption"])["point-in-time restore exact at the target"]
    assert checks(s["database-corruption"])["no corrupted row in the restored database"]
    deletion = s["accidental-deletion"]
    assert deletion["facts"]["deleted_posts"] > 0
    assert deletion["rpo_rows"] == 0
    assert checks(deletion)["writes after the DELETE kept (no rollback)"]

    # Scenario 3: the attacker could delete nothing that was locked.
    ransom = s["ransomware"]
    assert ransom["facts"]["deletes_refused"] == ransom["facts"]["backup_versions"] > 0
    assert ransom["rpo_seconds"] <= SCENARIO_OBJECTIVES[Scenario.RANSOMWARE].rpo.total_seconds()

    assert "scenario data-centre loss" in stderr  # progress lines while it runs
    assert processes_under(workdir) == []


def test_lost_acknowledged_rows_fail_the_drill(workdir):
    """An async standby whose replication stalls loses acknowledged rows on failover: the
    drill must count them and exit non-zero, although RTO and RPO seconds are within the plan."""
    code, report, stderr = run_drill("--scenario", "datacentre-loss", "--inject-fault", "standby-stall",
                                     workdir=workdir)
    assert code == 1, stderr
    assert not report["passed"]
    dc = by_name(report)["datacentre-loss"]
    assert not dc["passed"]
    assert dc["rpo_rows"] > 0
    assert dc["rpo_seconds"] > 0
    assert not checks(dc)["zero acknowledged rows lost (synchronous standby)"]
    assert dc["rto_met"] and dc["rpo_met"]  # the plan's hour is met; the drill still fails
    assert processes_under(workdir) == []


def test_sigterm_tears_the_environment_down(workdir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "drill", *REDUCED, "--load-seconds", "30", "--scenario", "datacentre-loss",
         "--workdir", str(workdir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Wait until primary and standby run under load, then cancel like CI does.
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "scenario data-centre loss" in line:
                break
        else:
            pytest.fail("the drill ended before its scenario: " + "".join(seen))
        assert len(processes_under(workdir)) >= 2  # a primary and a standby at least
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "torn down" in rest
    assert processes_under(workdir) == []
