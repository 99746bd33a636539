"""The DR model: the plan's numbers, GFS classes, slots and the achieved objectives."""

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from infra import model
from infra.model import (
    ASSUMPTIONS,
    HOUR,
    RETENTION,
    SCENARIO_OBJECTIVES,
    SCHEDULES,
    GfsClass,
    Scenario,
    Tier,
    Topology,
    achieved_objectives,
    gfs_class,
    schedule_slot,
)

PLAN = Path(__file__).resolve().parents[3] / "shared" / "seed" / "backup-dr-plan.md"


def test_plan_retention_tiers():
    prod, staging = RETENTION[Tier.PROD], RETENTION[Tier.STAGING]
    assert (prod.daily.days, prod.weekly.days) == (30, 84)
    assert 365 <= prod.monthly.days <= 366 and 2555 <= prod.yearly.days <= 2557
    assert (staging.daily.days, staging.weekly.days) == (7, 28)
    assert staging.monthly is None and staging.yearly is None
    assert prod.wal.days == prod.redis.days == prod.incremental.days == 7
    assert prod.deleted_files.days == 90 and prod.audit_logs.days >= 7 * 365


def test_plan_objectives_and_schedules():
    assert SCENARIO_OBJECTIVES[Scenario.DATACENTRE_LOSS].rto == 4 * HOUR
    assert SCENARIO_OBJECTIVES[Scenario.DATABASE_CORRUPTION].rto == 2 * HOUR
    assert SCENARIO_OBJECTIVES[Scenario.ACCIDENTAL_DELETION].rto == 1 * HOUR
    assert all(o.rpo == 1 * HOUR for o in SCENARIO_OBJECTIVES.values())
    assert SCHEDULES.full_backup_cron == "cron(0 2 * * ? *)"
    assert SCHEDULES.incremental_cron == "cron(0 2/6 * * ? *)"
    assert SCHEDULES.full_backup_k8s_cron == "0 2 * * *"


def test_each_plan_number_is_typed_once_in_the_model():
    """The plan's figures live in model.py; other modules import them instead of retyping."""
    source = Path(model.__file__).read_text()
    for literal in ("days(30)", "weeks(12)", "months(12)", "weeks(4)"):
        assert source.count(literal) == 1, literal
    assert source.count("years(7)") == 2  # the plan says it twice: yearly backups and audit logs
    project = Path(model.__file__).resolve().parents[1]
    offenders = []
    for path in list(project.glob("components/**/*.py")) + list(project.glob("infra/aws/*.py")):
        text = path.read_text()
        if re.search(r"\b(2555|2557|30 \* DAY|days=30|days=90|noncurrent_days\"?: ?90)\b", text):
            offenders.append(path.name)
    assert offenders == []


def test_gfs_classes():
    prod, staging = RETENTION[Tier.PROD], RETENTION[Tier.STAGING]
    assert gfs_class(date(2027, 1, 1), prod) is GfsClass.YEARLY
    assert gfs_class(date(2027, 3, 1), prod) is GfsClass.MONTHLY
    assert gfs_class(date(2026, 11, 29), prod) is GfsClass.WEEKLY  # a Sunday
    assert gfs_class(date(2026, 11, 27), prod) is GfsClass.DAILY
    assert date(2027, 1, 1).weekday() == 4 and gfs_class(date(2027, 1, 1), staging) is GfsClass.DAILY
    assert gfs_class(date(2027, 3, 1), staging) is GfsClass.DAILY  # staging keeps no monthly


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_gfs_class_is_kept_by_the_tier(day):
    for tier in Tier:
        c = gfs_class(day, RETENTION[tier])
        assert c in RETENTION[tier].classes
        assert RETENTION[tier].for_class(c).days >= RETENTION[tier].daily.days


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1)))
def test_schedule_slot_is_the_latest_0200_not_after(at):
    at = at.replace(tzinfo=UTC)
    slot = schedule_slot(at)
    assert slot.hour == 2 and slot.minute == 0 and slot <= at < slot + timedelta(days=1)


def test_prod_topology_meets_every_scenario():
    achieved = achieved_objectives(Topology(tier=Tier.PROD, database_size_gb=20))
    assert all(a.met for a in achieved), [a.shortfall() for a in achieved if not a.met]
    by = {a.scenario: a for a in achieved}
    # A replica replicates corruption: only going back in time can fix it.
    assert by[Scenario.DATABASE_CORRUPTION].source.point_in_time
    assert by[Scenario.DATACENTRE_LOSS].source.survives_region_loss
    assert by[Scenario.RANSOMWARE].source.immutable


def test_without_vault_lock_ransomware_has_no_clean_source():
    achieved = {
        a.scenario: a for a in achieved_objectives(Topology(tier=Tier.PROD, database_size_gb=20, vault_locked=False))
    }
    assert achieved[Scenario.RANSOMWARE].source is None and not achieved[Scenario.RANSOMWARE].met
    assert "no recovery source" in achieved[Scenario.RANSOMWARE].shortfall()


def test_without_warm_standby_region_loss_falls_back_to_dr_backups():
    achieved = {
        a.scenario: a for a in achieved_objectives(Topology(tier=Tier.PROD, database_size_gb=20, warm_standby=False))
    }
    dc = achieved[Scenario.DATACENTRE_LOSS]
    assert dc.source.name == "point-in-time restore (DR region)"
    assert dc.rpo == SCHEDULES.wal_archive_every + ASSUMPTIONS.cross_region_log_delay


def test_rto_grows_with_database_size_and_says_by_how_much():
    small = achieved_objectives(Topology(tier=Tier.PROD, database_size_gb=20))[0]
    big = achieved_objectives(Topology(tier=Tier.PROD, database_size_gb=400))[0]
    assert big.rto > small.rto
    assert not big.met and "exceeds 2h by" in big.shortfall()


def test_plan_file_states_the_numbers_the_model_holds():
    if not PLAN.exists():  # the plan lives beside the repository, in shared/
        return
    text = PLAN.read_text()
    for phrase in ("Daily at 2:00 AM UTC", "Every 6 hours", "7 years", "90 days", "12 weeks", "30 days"):
        assert phrase in text
