"""The ground floor holds what the plan says: its numbers are read out of the plan's own text
(docs/backup-dr-plan.md, a copy of ../shared/seed/backup-dr-plan.md kept in the repository so
that this test always runs) and compared with drplan's values."""

import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from drplan.objectives import PLAN_OBJECTIVE, SCENARIO_OBJECTIVES, Scenario
from drplan.periods import DAY, HOUR, Period, Unit
from drplan.retention import RETENTION, Tier
from drplan.schedules import SCHEDULES

PLAN = Path(__file__).resolve().parents[2] / "docs" / "backup-dr-plan.md"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "backup-dr-plan.md"
UNITS = {"day": Unit.DAYS, "week": Unit.WEEKS, "month": Unit.MONTHS, "year": Unit.YEARS}


@pytest.fixture(scope="module")
def plan() -> str:
    return PLAN.read_text()


def _section(text: str, heading: str) -> str:
    """From `heading` to the next heading of its level or above (a bold heading: the next blank-line
    separated bold heading or markdown heading)."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    stop = rf"^#{{1,{level}}} " if level else r"^(#+ |\*\*|\d+\. \*\*)"
    nxt = re.search(stop, text[start + len(heading):], re.M)
    return text[start: start + len(heading) + (nxt.start() if nxt else len(text))]


def _period(text: str, label: str) -> Period:
    m = re.search(rf"\*\*{label}\*\*: (\d+) (day|week|month|year)s?", text)
    assert m, f"the plan states no '{label}'"
    return Period(int(m.group(1)), UNITS[m.group(2)])


def _hours(text: str) -> timedelta:
    m = re.match(r"(\d+) hours?", text.strip())
    assert m, text
    return int(m.group(1)) * HOUR


def test_the_repository_copy_is_the_plan():
    if not SHARED.exists():
        pytest.skip("the shared plan is not beside this checkout (CI): the repository copy is the reference")
    assert PLAN.read_text() == SHARED.read_text()


@pytest.mark.parametrize(
    ("heading", "tier"), [("### Production", Tier.PROD), ("### Development/Staging", Tier.STAGING)]
)
def test_gfs_retention_is_the_plans(plan, heading, tier):
    section = _section(_section(plan, "## Backup Retention Policy"), heading)
    r = RETENTION[tier]
    assert r.daily == _period(section, "Daily Backups")
    assert r.weekly == _period(section, "Weekly Backups")
    for label, kept in (("Monthly Backups", r.monthly), ("Yearly Backups", r.yearly)):
        assert kept == (_period(section, label) if f"**{label}**" in section else None)


def test_wal_incremental_redis_files_and_audit_retention_are_the_plans(plan):
    r = RETENTION[Tier.PROD]
    incremental = _section(plan, "2. **Incremental Backups**")
    wal = _section(plan, "3. **Continuous WAL Archiving**")
    assert r.incremental.days == int(re.search(r"Retention: (\d+) days", incremental).group(1))
    assert r.wal.days == int(re.search(r"Retention: (\d+) days", wal).group(1))
    assert r.redis.days == int(re.search(r"Retention: (\d+) days", _section(plan, "### Redis Backups")).group(1))
    assert r.deleted_files == _period(plan, "Retention") and "for deleted files" in plan
    assert r.audit_logs == Period(int(re.search(r"\*\*Retention\*\*: (\d+) years for audit logs", plan).group(1)),
                                  Unit.YEARS)


def test_schedules_are_the_plans(plan):
    m = re.search(r"Frequency: Daily at (\d+):(\d+) AM UTC", plan)
    assert SCHEDULES.full_backup_at_utc == time(int(m.group(1)), int(m.group(2)))
    m = re.search(r"Frequency: Every (\d+) hours", plan)
    assert SCHEDULES.incremental_every == int(m.group(1)) * HOUR
    testing = _section(plan, "**Testing Schedule**")
    assert "**Weekly**: Automated backup verification" in testing and SCHEDULES.restore_test_every == 7 * DAY
    assert "**Monthly**: Full disaster recovery drill" in testing and 28 * DAY <= SCHEDULES.dr_drill_every <= 31 * DAY
    assert "**Quarterly**: Complete DR site activation test" in testing
    assert 89 * DAY <= SCHEDULES.activation_test_every <= 92 * DAY


def test_objectives_are_the_plans(plan):
    assert PLAN_OBJECTIVE.rto == _hours(re.search(r"\(RTO\)\*\*: Restore service within (.+)", plan).group(1))
    assert PLAN_OBJECTIVE.rpo == _hours(re.search(r"\(RPO\)\*\*: Maximum (\d+ hours?)", plan).group(1))
    titles = {
        Scenario.DATABASE_CORRUPTION: "Scenario 1: Database Corruption",
        Scenario.DATACENTRE_LOSS: "Scenario 2: Complete Data Center Failure",
        Scenario.RANSOMWARE: "Scenario 3: Ransomware Attack",
        Scenario.ACCIDENTAL_DELETION: "Scenario 4: Accidental Data Deletion",
    }
    for scenario, title in titles.items():
        section = _section(plan, f"### {title}")
        assert SCENARIO_OBJECTIVES[scenario].rto == _hours(re.search(r"\*\*RTO\*\*: (.+)", section).group(1))
        assert SCENARIO_OBJECTIVES[scenario].rpo == _hours(re.search(r"\*\*RPO\*\*: (.+)", section).group(1))
