"""The model's schedules as Kubernetes CronJob schedules (five fields; the jobs set
`timeZone: Etc/UTC`, https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/)."""

from __future__ import annotations

from drplan.schedules import Schedules, WeeklyTime

# Kubernetes (like cron(8)) numbers days of the week 0-6 from Sunday; date.weekday() from Monday.
_DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def daily(s: Schedules) -> str:
    t = s.full_backup_at_utc
    return f"{t.minute} {t.hour} * * *"


def weekly_at(w: WeeklyTime) -> str:
    return f"{w.at.minute} {w.at.hour} * * {_DAY_NAMES[w.weekday]}"


def restore_test(s: Schedules) -> str:
    return weekly_at(s.weekly_restore_test)
