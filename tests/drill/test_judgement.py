"""How the drill judges a recovery, on synthetic ledgers (no PostgreSQL needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from drill.cli import parse_args
from drill.integrity import exactness, loss, prefix_gaps
from drill.load import Ack, Ledger
from drill.report import ScenarioResult, as_json, as_table
from drplan.objectives import SCENARIO_OBJECTIVES, Scenario

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ledger(n: int) -> Ledger:
    """n acknowledged posts, one per second after T0, acknowledged 10 ms after commit."""
    acks = [Ack("posts", i, f"k{i}", T0 + timedelta(seconds=i), T0 + timedelta(seconds=i, milliseconds=10))
            for i in range(n)]
    return Ledger(acks=acks, seed_rows=0, seeded_at=T0 - timedelta(seconds=30))


def present(*keys: str) -> dict[str, set[str]]:
    return {"posts": set(keys), "comments": set()}


def test_exact_restore_is_exact():
    led = ledger(10)
    ex = exactness(led, present(*(f"k{i}" for i in range(5))), T0 + timedelta(seconds=5))
    assert ex.exact


def test_restore_that_misses_a_row_or_overshoots_is_not_exact():
    led = ledger(10)
    target = T0 + timedelta(seconds=5)
    missing = exactness(led, present("k0", "k1", "k3", "k4"), target)
    assert not missing.exact and [a.key for a in missing.missing_before] == ["k2"]
    overshot = exactness(led, present(*(f"k{i}" for i in range(6))), target)
    assert not overshot.exact and [a.key for a in overshot.present_after] == ["k5"]


def test_target_is_exclusive():
    led = ledger(3)
    # A row committed exactly at the target belongs after it (recovery_target_inclusive=off).
    assert not exactness(led, present("k0", "k1", "k2"), T0 + timedelta(seconds=2)).exact


def test_loss_counts_rows_and_span_from_the_recovery_point():
    led = ledger(10)
    result = loss(led, present(*(f"k{i}" for i in range(7))), incident=T0 + timedelta(seconds=10))
    assert result.rows == 3
    # Recovered up to commit 6; the last lost write was acknowledged at 9 s + 10 ms.
    assert result.span == timedelta(seconds=3, milliseconds=10)
    assert loss(led, present(*(f"k{i}" for i in range(10))), T0 + timedelta(seconds=10)).span == timedelta(0)


def test_loss_with_nothing_recovered_counts_from_the_seed():
    led = ledger(2)
    result = loss(led, present(), incident=T0 + timedelta(seconds=5))
    assert result.rows == 2
    assert result.span == timedelta(seconds=31, milliseconds=10)


def test_prefix_gaps_find_holes_but_not_a_lost_tail():
    led = ledger(6)
    assert prefix_gaps(led, present("k0", "k1", "k2")) == []
    assert [a.key for a in prefix_gaps(led, present("k0", "k2", "k3"))] == ["k1"]


def result(rto_s: float, rpo_s: float, ok: bool = True) -> ScenarioResult:
    r = ScenarioResult(Scenario.ACCIDENTAL_DELETION, rto=timedelta(seconds=rto_s), rpo=timedelta(seconds=rpo_s),
                       rows_lost=0)
    r.check("a check", ok, "detail")
    return r


def test_a_result_passes_only_within_its_objective_and_checks():
    objective = SCENARIO_OBJECTIVES[Scenario.ACCIDENTAL_DELETION]
    assert result(1, 0).passed
    assert not result(objective.rto.total_seconds() + 1, 0).passed
    assert not result(1, objective.rpo.total_seconds() + 1).passed
    assert not result(1, 0, ok=False).passed
    assert not ScenarioResult(Scenario.RANSOMWARE, error="boom").passed


def test_reports_show_the_verdict():
    good, bad = result(1.5, 0), result(1.5, 0, ok=False)
    table = as_table([good, bad], timedelta(seconds=3))
    assert "PASS" in table and "FAILED a check: detail" in table and table.endswith("drill FAIL in 3.0s")
    doc = json.loads(as_json([good], timedelta(seconds=3), {}))
    assert doc["passed"] and doc["scenarios"][0]["rto_seconds"] == 1.5
    assert doc["scenarios"][0]["objective"]["rto_seconds"] == 3600
    assert not json.loads(as_json([], timedelta(0), {}))["passed"]  # nothing run is no pass


def test_a_guarantee_the_emulator_lacks_is_stated_never_passed():
    r = result(1.5, 0)
    r.not_rehearsed("the account key cannot delete a locked backup", "Azurite 3.35.0", "501 Not Implemented")
    assert r.passed  # judged on what could be rehearsed
    assert [c.name for c in r.rehearsed] == ["a check"]
    table = as_table([r], timedelta(seconds=3), store="Azure Blob Storage (Azurite)")
    assert table.startswith("store: Azure Blob Storage (Azurite)")
    assert "1/1 +1 not emulated" in table
    assert ("NOT EMULATED by Azurite 3.35.0, not passed: the account key cannot delete a locked backup: "
            "501 Not Implemented") in table
    check = json.loads(as_json([r], timedelta(seconds=3), {}))["scenarios"][0]["checks"][1]
    assert check == {"name": "the account key cannot delete a locked backup", "ok": None,
                     "status": "not emulated by Azurite 3.35.0", "detail": "501 Not Implemented"}
    r.check("another check", False)
    assert not r.passed  # a failed rehearsed check still fails the scenario


@pytest.mark.parametrize("argv", [["--rows", "0"], ["--load-seconds", "0"], ["--scenario", "flood"],
                                  ["--store", "gcs"]])
def test_nonsense_options_are_refused(argv):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


def test_a_writer_stopped_before_its_thread_came_up_does_not_block_teardown():
    """SIGTERM can land while start() waits for the thread: stop() must not raise, or the
    clusters after it in the teardown would leak."""
    from drill.load import LoadWriter

    writer = LoadWriter("host=127.0.0.1 port=1", ledger=None, rate=10)  # never started
    writer.stop()
    assert writer._stop.is_set()
