"""Tiers, GFS classes and how long each generation is kept (plan, "Backup Retention Policy")."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from .periods import Period, days, months, weeks, years
from .schedules import SCHEDULES, Schedules


class Tier(enum.Enum):
    PROD = "prod"
    STAGING = "staging"


class GfsClass(enum.Enum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


@dataclass(frozen=True)
class Retention:
    """How long each generation is kept. None: the tier has no such generation."""

    daily: Period
    weekly: Period
    monthly: Period | None = None
    yearly: Period | None = None
    incremental: Period = field(default_factory=lambda: days(7))  # plan: incremental 7 days
    wal: Period = field(default_factory=lambda: days(7))  # plan: WAL archives 7 days
    redis: Period = field(default_factory=lambda: days(7))  # plan: Redis snapshots 7 days
    deleted_files: Period = field(default_factory=lambda: days(90))  # plan: deleted files 90 d
    audit_logs: Period = field(default_factory=lambda: years(7))  # plan: audit logs 7 years

    def for_class(self, gfs: GfsClass) -> Period:
        period = getattr(self, gfs.value)
        if period is None:
            raise ValueError(f"tier keeps no {gfs.value} generation")
        return period

    @property
    def classes(self) -> tuple[GfsClass, ...]:
        return tuple(c for c in GfsClass if getattr(self, c.value) is not None)

    @property
    def longest(self) -> Period:
        return max((self.for_class(c) for c in self.classes), key=lambda p: p.days)

    @property
    def shortest(self) -> Period:
        return min((self.for_class(c) for c in self.classes), key=lambda p: p.days)

    def with_overrides(self, overrides: Mapping[str, Period | None]) -> Retention:
        """Longer generations where a stack says so; `check_overrides` says which are allowed."""
        given = {gen: p for gen, p in overrides.items() if p is not None}
        return replace(self, **given)


RETENTION: dict[Tier, Retention] = {
    # Plan, "Backup Retention Policy / Production"
    Tier.PROD: Retention(daily=days(30), weekly=weeks(12), monthly=months(12), yearly=years(7)),
    # Plan, "Backup Retention Policy / Development/Staging"
    Tier.STAGING: Retention(daily=days(7), weekly=weeks(4)),
}


def override_problems(tier: Tier, overrides: Mapping[str, Period | None]) -> dict[str, str]:
    """Per generation, why a stack's override is not allowed (empty: all fine).

    An override may only lengthen a generation the tier keeps: the plan's numbers are floors.
    """
    base = RETENTION[tier]
    problems = {}
    for gen, period in overrides.items():
        if period is None:
            continue
        if gen not in {c.value for c in GfsClass}:
            problems[gen] = f"is not a GFS generation ({', '.join(c.value for c in GfsClass)})"
            continue
        minimum = getattr(base, gen)
        if minimum is None:
            problems[gen] = f"names a generation the {tier.value} tier does not keep"
        elif period.days < minimum.days:
            problems[gen] = f"is shorter than the plan's minimum of {minimum} for the {tier.value} tier"
    return problems


def effective_retention(tier: Tier, overrides: Mapping[str, Period | None] | None = None) -> Retention:
    """The tier's retention with a stack's (valid) overrides: what every realisation keeps."""
    overrides = dict(overrides or {})
    problems = override_problems(tier, overrides)
    if problems:
        gen, why = next(iter(problems.items()))
        raise ValueError(f"retention.{gen} = {overrides[gen]} {why}")
    return RETENTION[tier].with_overrides(overrides)


# Not from the plan, but fixed here once: incomplete multipart uploads are garbage after a
# week (a backup run lasts minutes), and yearly backups move to cold storage after this.
MULTIPART_ABORT = days(7)
COLD_STORAGE_AFTER = days(90)
# AWS Backup refuses a lifecycle whose delete_after is not at least 90 days past cold storage.
COLD_STORAGE_MIN_STAY = days(90)


def gfs_class(day: date, retention: Retention, schedules: Schedules = SCHEDULES) -> GfsClass:
    """The generation a backup taken on `day` belongs to (the longest-kept one that applies).

    Jan 1 → yearly, the 1st of a month → monthly, the weekly weekday → weekly, else daily;
    a tier without a generation falls back to the next shorter one.
    """
    candidates = []
    if day.month == 1 and day.day == 1:
        candidates.append(GfsClass.YEARLY)
    if day.day == 1:
        candidates.append(GfsClass.MONTHLY)
    if day.weekday() == schedules.weekly_on:
        candidates.append(GfsClass.WEEKLY)
    candidates.append(GfsClass.DAILY)
    for c in candidates:
        if c in retention.classes:
            return c
    return GfsClass.DAILY
