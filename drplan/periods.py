"""Durations and retention periods as the plan states them ("12 weeks", "7 years")."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


class Unit(enum.Enum):
    DAYS = "d"
    WEEKS = "w"
    MONTHS = "mo"
    YEARS = "y"


# Calendar units are rounded *up* so that "kept N months/years" is never shorter than
# the plan asks, whatever month or leap year it falls on.
_DAYS_PER_UNIT = {Unit.DAYS: 1.0, Unit.WEEKS: 7.0, Unit.MONTHS: 30.44, Unit.YEARS: 365.25}


@dataclass(frozen=True, order=True)
class Period:
    """A retention period as the plan states it ("12 weeks"), convertible to whole days."""

    count: int
    unit: Unit

    @property
    def days(self) -> int:
        return math.ceil(self.count * _DAYS_PER_UNIT[self.unit])

    @property
    def delta(self) -> timedelta:
        return timedelta(days=self.days)

    def __str__(self) -> str:
        return f"{self.count}{self.unit.value}"


def days(n: int) -> Period:
    return Period(n, Unit.DAYS)


def weeks(n: int) -> Period:
    return Period(n, Unit.WEEKS)


def months(n: int) -> Period:
    return Period(n, Unit.MONTHS)


def years(n: int) -> Period:
    return Period(n, Unit.YEARS)


_PERIOD = re.compile(r"^(\d+)(d|w|mo|y)$")


def parse_period(value: Any) -> Period:
    """"30d", "12w", "12mo", "7y" -> Period; ValueError says what is expected."""
    if isinstance(value, Period):
        return value
    m = _PERIOD.match(str(value).strip())
    if not m:
        raise ValueError("a retention like 30d, 12w, 12mo or 7y")
    return Period(int(m.group(1)), Unit(m.group(2)))


_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: Any) -> timedelta:
    """"4h", "30m", "1h30m", "7d", "2w" -> timedelta; ValueError says what is expected."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        raise ValueError("a duration like 4h, 30m, 1h30m, 7d or 2w")
    w, d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def format_duration(d: timedelta) -> str:
    """The shortest exact spelling: 1h, 4h30m, 7d, 5m, 30s."""
    secs = int(d.total_seconds())
    if secs % 86400 == 0 and secs:
        return f"{secs // 86400}d"
    if secs >= 3600:
        h, rem = divmod(secs, 3600)
        return f"{h}h{rem // 60:02d}m" if rem else f"{h}h"
    if secs >= 60:
        m, s = divmod(secs, 60)
        return f"{m}m{s:02d}s" if s else f"{m}m"
    return f"{secs}s"
