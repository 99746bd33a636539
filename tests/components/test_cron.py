"""Cron rendering of the model's schedules (components/aws/cron.py, components/k8s/cron.py).

A restore test a few hours after a late slot runs past midnight: it must land on the next
day at a valid hour (the old renderer produced `cron(0 26 ? * SUN *)` for a 22:00 slot).
"""

from dataclasses import replace
from datetime import time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from components.aws import cron as aws_cron
from components.k8s import cron as k8s_cron
from drplan.schedules import SCHEDULES

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MINUTES_PER_WEEK = 7 * 24 * 60

schedules = st.builds(
    lambda h, m, wd, delay: replace(
        SCHEDULES, full_backup_at_utc=time(h, m), weekly_on=wd, restore_test_after_backup=timedelta(minutes=delay)
    ),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 6),
    st.integers(0, 23 * 60),
)


def _aws_fields(expr: str) -> list[str]:
    assert expr.startswith("cron(") and expr.endswith(")"), expr
    fields = expr[5:-1].split()
    assert len(fields) == 6, expr
    minute, _hour, dom, _month, dow, year = fields
    assert 0 <= int(minute) <= 59 and year == "*"
    assert "?" in (dom, dow), "AWS cron: one of day-of-month / day-of-week must be '?'"
    return fields


def _week_minute(day: str, hour: int, minute: int) -> int:
    return DAYS.index(day) * 24 * 60 + hour * 60 + minute


@given(schedules)
def test_restore_test_follows_the_weekly_backup_by_the_delay_on_every_slot(s):
    b_min, b_hour, _, _, b_day, _ = _aws_fields(aws_cron.weekly(s))
    r_min, r_hour, _, _, r_day, _ = _aws_fields(aws_cron.restore_test(s))
    assert 0 <= int(r_hour) <= 23 and r_day in DAYS
    backup = _week_minute(b_day, int(b_hour), int(b_min))
    test = _week_minute(r_day, int(r_hour), int(r_min))
    assert (test - backup) % MINUTES_PER_WEEK == s.restore_test_after_backup // timedelta(minutes=1)


@given(schedules)
def test_kubernetes_restore_test_is_the_same_moment_in_five_fields(s):
    minute, hour, dom, month, dow = k8s_cron.restore_test(s).split()
    a_min, a_hour, _, _, a_day, _ = _aws_fields(aws_cron.restore_test(s))
    assert (minute, hour, dom, month, dow) == (a_min, a_hour, "*", "*", a_day)


@given(schedules)
def test_every_aws_expression_is_well_formed(s):
    for render in (aws_cron.daily, aws_cron.weekly, aws_cron.monthly, aws_cron.yearly, aws_cron.incremental):
        _minute, hour, *_ = _aws_fields(render(s))
        if "/" in hour:
            start, step = hour.split("/")
            assert int(start) < int(step) and int(start) == s.full_backup_at_utc.hour % int(step)
        else:
            assert int(hour) == s.full_backup_at_utc.hour


def test_the_plans_schedule_renders_as_the_plan_says():
    # Plan: full backups daily at 02:00 UTC, incrementals every 6 hours, a weekly restore test.
    assert aws_cron.daily(SCHEDULES) == "cron(0 2 * * ? *)"
    assert aws_cron.incremental(SCHEDULES) == "cron(0 2/6 * * ? *)"
    assert aws_cron.weekly(SCHEDULES) == "cron(0 2 ? * SUN *)"
    assert aws_cron.monthly(SCHEDULES) == "cron(0 2 1 * ? *)"
    assert aws_cron.yearly(SCHEDULES) == "cron(0 2 1 1 ? *)"
    assert k8s_cron.daily(SCHEDULES) == "0 2 * * *"


def test_a_late_slot_rolls_the_restore_test_into_the_next_day():
    late = replace(SCHEDULES, full_backup_at_utc=time(22, 0))
    assert aws_cron.restore_test(late) == "cron(0 2 ? * MON *)"
    assert k8s_cron.restore_test(late) == "0 2 * * MON"
