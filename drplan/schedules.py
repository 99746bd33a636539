"""When things happen: backup slots and the plan's testing schedule, as times and periods.

Rendering them for a scheduler (EventBridge/AWS Backup cron, Kubernetes cron, RDS windows)
is the consumer's business: components/aws/cron.py, components/k8s/cron.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .periods import DAY, HOUR, MINUTE, WEEK, Period, Unit, months, years

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
    # The monthly drill, the quarterly activation test and the yearly review start on this day
    # of their month, at the weekly restore test's time of day: a week after the monthly backup
    # (the 1st) has landed and been copied, and clear of month ends.
    testing_day_of_month: int = 8
    # An activation test is overdue (alarm) this long after its quarter is up: room to find a
    # window in the following weeks without paging on the first morning.
    activation_test_grace: timedelta = 2 * WEEK

    @property
    def weekly_backup(self) -> WeeklyTime:
        return WeeklyTime(self.weekly_on, self.full_backup_at_utc)

    @property
    def weekly_restore_test(self) -> WeeklyTime:
        """The weekly backup's moment plus the delay, rolling over midnight into the next day."""
        start = datetime.combine(_a_monday(), self.full_backup_at_utc) + timedelta(days=self.weekly_on)
        when = start + self.restore_test_after_backup
        return WeeklyTime(when.weekday(), when.time())

    @property
    def testing_at(self) -> time:
        """The time of day (UTC) the plan's periodic tests start."""
        return self.weekly_restore_test.at

    @property
    def activation_test_overdue_after(self) -> timedelta:
        return self.activation_test_every + self.activation_test_grace


def calendar_period(every: timedelta) -> Period:
    """The calendar period ("1w", "1mo", "3mo", "1y") whose whole days are `every`: how a scheduler
    repeats one of the testing periods (months and years in drplan.periods are rounded up, so
    `months(3).delta` is 92 days and maps back to "3mo"). ValueError for any other length."""
    for unit in (Unit.YEARS, Unit.MONTHS, Unit.WEEKS):  # 12mo and 1y are both 366 d: a year
        for count in range(1, 13):
            if Period(count, unit).delta == every:
                return Period(count, unit)
    raise ValueError(f"{every.days} d is no whole number of weeks, months or years: a scheduler cannot repeat it")


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
