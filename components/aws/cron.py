"""The model's schedules as EventBridge / AWS Backup cron expressions (UTC).

AWS cron has six fields, `cron(minutes hours day-of-month month day-of-week year)`, and one
of day-of-month / day-of-week must be `?`
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
"""

from __future__ import annotations

from datetime import time, timedelta

from drplan.periods import HOUR, Unit
from drplan.retention import GfsClass
from drplan.schedules import Schedules, WeeklyTime, calendar_period

DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _at(t: time) -> str:
    return f"{t.minute} {t.hour}"


def daily(s: Schedules) -> str:
    return daily_at(s.full_backup_at_utc)


def daily_at(t: time) -> str:
    return f"cron({_at(t)} * * ? *)"


def weekly_at(w: WeeklyTime) -> str:
    return f"cron({_at(w.at)} ? * {DAY_NAMES[w.weekday]} *)"


def weekly(s: Schedules) -> str:
    return weekly_at(s.weekly_backup)


def monthly(s: Schedules) -> str:
    return f"cron({_at(s.full_backup_at_utc)} 1 * ? *)"


def yearly(s: Schedules) -> str:
    return f"cron({_at(s.full_backup_at_utc)} 1 1 ? *)"


def incremental(s: Schedules) -> str:
    """Every `incremental_every`, aligned so that one run falls on the daily slot."""
    hours = int(s.incremental_every / HOUR)
    t = s.full_backup_at_utc
    return f"cron({t.minute} {t.hour % hours}/{hours} * * ? *)"


def restore_test(s: Schedules) -> str:
    """The weekly restore test, after the weekly backup (past midnight: the next day)."""
    return weekly_at(s.weekly_restore_test)


def for_class(s: Schedules, gfs: GfsClass) -> str:
    return {GfsClass.DAILY: daily, GfsClass.WEEKLY: weekly, GfsClass.MONTHLY: monthly, GfsClass.YEARLY: yearly}[gfs](s)


def testing(every: timedelta, s: Schedules) -> str:
    """One of the plan's testing periods (drplan.schedules: restore test, DR drill, activation test,
    plan review) as cron: weekly is the weekly restore test's slot; every n months (n dividing a
    year) and yearly fall on `testing_day_of_month` at `testing_at`, counted from January."""
    period = calendar_period(every)
    if period.unit is Unit.WEEKS and period.count == 1:
        return restore_test(s)
    if period.unit is Unit.MONTHS and 12 % period.count == 0:
        months = "*" if period.count == 1 else f"1/{period.count}"
    elif period.unit is Unit.YEARS and period.count == 1:
        months = "1"
    else:
        raise ValueError(f"a testing period of {period} has no cron rendering (weekly, n months dividing 12, yearly)")
    return f"cron({_at(s.testing_at)} {s.testing_day_of_month} {months} ? *)"
