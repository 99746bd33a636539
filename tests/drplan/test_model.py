"""The ground floor's behaviour: GFS classes, slots, effective retention, the achieved objectives."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drplan.objectives import Scenario
from drplan.periods import days, months, weeks
from drplan.recovery import ASSUMPTIONS, Topology, achieved_objectives
from drplan.retention import RETENTION, GfsClass, Tier, effective_retention, gfs_class, override_problems
from drplan.schedules import SCHEDULES, schedule_slot


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


def test_an_override_lengthens_one_generation_and_nothing_else():
    eff = effective_retention(Tier.PROD, {"weekly": weeks(16)})
    assert eff.weekly.days == 112
    assert (eff.daily, eff.monthly, eff.yearly) == (RETENTION[Tier.PROD].daily, RETENTION[Tier.PROD].monthly,
                                                     RETENTION[Tier.PROD].yearly)


@pytest.mark.parametrize(
    ("tier", "overrides", "why"),
    [
        (Tier.PROD, {"weekly": weeks(8)}, "shorter than the plan's minimum of 12w"),
        (Tier.STAGING, {"monthly": months(12)}, "does not keep"),
        (Tier.PROD, {"hourly": days(1)}, "not a GFS generation"),
    ],
)
def test_an_override_never_shortens_or_invents_a_generation(tier, overrides, why):
    assert why in next(iter(override_problems(tier, overrides).values()))
    with pytest.raises(ValueError, match=why):
        effective_retention(tier, overrides)
