"""Documents that quote the plan's numbers agree with drplan.

The tables are generated (`python -m infra.docs`, `python -m infra.runbooks`): they must be
fresh. Prose around them is hand-written: every period it quotes ("30 d", "12 weeks",
"2557 days") must be a number the model holds, so that changing a retention in drplan flags
each sentence that still says the old one.
"""

import re
from pathlib import Path

import pytest

from drplan.periods import Period
from drplan.retention import COLD_STORAGE_AFTER, COLD_STORAGE_MIN_STAY, MULTIPART_ABORT, RETENTION
from drplan.schedules import SCHEDULES, calendar_period
from infra import docs, runbooks

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"d": "d", "day": "d", "days": "d", "w": "w", "week": "w", "weeks": "w", "mo": "mo", "month": "mo",
         "months": "mo", "y": "y", "year": "y", "years": "y"}
QUOTED = re.compile(r"(?<![\w.])(\d+)[ -]?(days?|weeks?|months?|years?|d|w|mo|y)\b")
# Not numbers of the plan, named where they come from.
OTHER_SOURCES = {
    (35, "d"): "AWS: RDS, ElastiCache and continuous backups keep at most 35 days",
    (1, "d"): "the GDPR ledger's margin past the longest retention (lambdas/core/gdpr.py LEDGER_MARGIN)",
}


def _model_numbers() -> set[tuple[int, str]]:
    periods: list[Period] = [MULTIPART_ABORT, COLD_STORAGE_AFTER, COLD_STORAGE_MIN_STAY]
    for r in RETENTION.values():
        periods += [p for p in (r.daily, r.weekly, r.monthly, r.yearly, r.incremental, r.wal, r.redis,
                                r.deleted_files, r.audit_logs) if p is not None]
    numbers = {(p.count, p.unit.value) for p in periods} | {(p.days, "d") for p in periods}
    s = SCHEDULES  # the plan's testing schedule (weekly, monthly, quarterly, yearly) in days
    numbers |= {(t.days, "d") for t in (s.restore_test_every, s.dr_drill_every, s.activation_test_every,
                                        s.plan_review_every, s.activation_test_grace,
                                        s.activation_test_overdue_after)}
    testing = (s.restore_test_every, s.dr_drill_every, s.activation_test_every, s.plan_review_every)
    numbers |= {(p.count, p.unit.value) for p in map(calendar_period, testing)}  # 1w, 1mo, 3mo, 1y
    longest = max(r.longest.days for r in RETENTION.values())
    numbers.add((longest + 1, "d"))  # the ledger entry's lock: longest retention + its margin
    return numbers


def _documents() -> list[Path]:
    docs_dir = ROOT / "docs"
    found = [ROOT / "README.md", ROOT / "lambdas" / "README.md", ROOT / "bench" / "README.md",
             *sorted(docs_dir.rglob("*.md"))]
    return [p for p in found if p.name != "backup-dr-plan.md"]  # the plan itself: tests/drplan/test_plan_numbers.py


def test_generated_tables_are_fresh():
    assert docs.stale() == [], "run: python -m infra.docs --write"
    assert runbooks.stale() == [], "run: python -m infra.runbooks --write"


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_period_a_document_quotes_is_the_models(path):
    allowed = _model_numbers() | set(OTHER_SOURCES)
    stray = [
        f"line {n}: {m.group(0)!r}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in QUOTED.finditer(line)
        if (int(m.group(1)), UNITS[m.group(2)]) not in allowed
    ]
    assert stray == [], f"{path.name} quotes periods drplan does not hold (stale after a change?): {stray}"


def test_the_check_catches_a_stale_sentence(tmp_path):
    stale = "prod keeps weekly backups 16 weeks (112 days)"  # what an outdated sentence would say
    allowed = _model_numbers() | set(OTHER_SOURCES)
    assert {(int(a), UNITS[u]) for a, u in QUOTED.findall(stale)} - allowed == {(16, "w"), (112, "d")}
