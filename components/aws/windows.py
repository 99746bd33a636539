"""Daily and weekly windows placed relative to the model's daily backup slot, in the syntax
RDS and ElastiCache share: `hh:mm-hh:mm` and `ddd:hh:mm-ddd:hh:mm` (UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from drplan.schedules import Schedules

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _slot(schedules: Schedules) -> datetime:
    return datetime.combine(date(2000, 1, 2), schedules.full_backup_at_utc)


def daily_window(schedules: Schedules, ends_before_slot: timedelta, length: timedelta) -> str:
    """`length` long, ending `ends_before_slot` before the daily backup slot."""
    end = _slot(schedules) - ends_before_slot
    start = end - length
    return f"{start:%H:%M}-{end:%H:%M}"


def weekly_window(schedules: Schedules, starts_after_slot: timedelta, length: timedelta, days_after_weekly: int) -> str:
    """`length` long, from `starts_after_slot` after the backup slot, `days_after_weekly` days
    after the weekly backup's day."""
    start = _slot(schedules) + starts_after_slot
    end = start + length
    day = _DAYS[(schedules.weekly_on + days_after_weekly) % 7]
    return f"{day}:{start:%H:%M}-{day}:{end:%H:%M}"
