"""The model's schedules as EventBridge / AWS Backup cron expressions (UTC).

AWS cron has six fields, `cron(minutes hours day-of-month month day-of-week year)`, and one
of day-of-month / day-of-week must be `?`
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
"""

from __future__ import annotations

from datetime import time

from drplan.periods import HOUR
from drplan.retention import GfsClass
from drplan.schedules import Schedules, WeeklyTime

DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _at(t: time) -> str:
    return f"{t.minute} {t.hour}"


def daily(s: Schedules) -> str:
    return f"cron({_at(s.full_backup_at_utc)} * * ? *)"


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
