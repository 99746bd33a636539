"""When things happen: backup slots and the plan's testing schedule, as times and periods.

Rendering them for a scheduler (EventBridge/AWS Backup cron, Kubernetes cron, RDS windows)
is the consumer's business: components/aws/cron.py, components/k8s/cron.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .periods import DAY, HOUR, MINUTE, WEEK, months, years

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class WeeklyTime:
    """A moment of the week: date.weekday() numbering (0 = Monday) and a UTC time."""

    weekday: int
    at: time


@dataclass(frozen=True)
class Schedules:
    full_backup_at_utc: time = time(2, 0)  # plan: full backups daily at 2:00 AM UTC
    incremental_every: timedelta = 6 * HOUR  # plan: incremental every 6 hours
    # "Real-time WAL archiving": the longest a finished WAL segment may wait before it is
    # shipped. RDS ships transaction logs every 5 minutes; PostgreSQL's archive_timeout
    # is set to the same value in the Kubernetes/drill realisations.
    wal_archive_every: timedelta = 5 * MINUTE
    weekly_on: int = 6  # date.weekday(): Sunday holds the weekly (GFS "son to father") backup
    # Plan, "Backup Testing and Validation / Testing Schedule".
    restore_test_every: timedelta = WEEK  # weekly automated restore verification
    dr_drill_every: timedelta = months(1).delta  # monthly full DR drill
    activation_test_every: timedelta = months(3).delta  # quarterly DR site activation test
    plan_review_every: timedelta = years(1).delta  # yearly review of the plan ("regular review")
    # The weekly restore test starts this long after the weekly backup's slot, so that the
    # backup has landed.
    restore_test_after_backup: timedelta = 4 * HOUR

    @property
    def weekly_backup(self) -> WeeklyTime:
        return WeeklyTime(self.weekly_on, self.full_backup_at_utc)

    @property
    def weekly_restore_test(self) -> WeeklyTime:
        """The weekly backup's moment plus the delay, rolling over midnight into the next day."""
        start = datetime.combine(_a_monday(), self.full_backup_at_utc) + timedelta(days=self.weekly_on)
        when = start + self.restore_test_after_backup
        return WeeklyTime(when.weekday(), when.time())


def _a_monday() -> date:
    return date(2024, 1, 1)  # a Monday: weekday arithmetic on real dates


SCHEDULES = Schedules()


def schedule_slot(at: datetime, schedules: Schedules = SCHEDULES) -> datetime:
    """The daily backup slot that a run started at `at` belongs to (idempotency key).

    A run at 02:07 or a retry at 05:00 belongs to today's 02:00 slot; a run at 01:00
    belongs to yesterday's.
    """
    slot = datetime.combine(at.date(), schedules.full_backup_at_utc, tzinfo=at.tzinfo)
    return slot if at >= slot else slot - DAY
