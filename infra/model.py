"""The cloud-neutral DR model: every number of the backup/DR plan, once.

`../shared/seed/backup-dr-plan.md` is the source. Cloud realisations (components/aws,
components/k8s), the functions (lambdas/), the policy pack and the drill import these
values; none of them types a number of the plan again.

This module is plain Python on purpose (no Pulumi import): the backup functions'
container image and the policy pack load it too.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

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


# --- Objectives ------------------------------------------------------------------


class Scenario(enum.Enum):
    DATABASE_CORRUPTION = "database-corruption"
    DATACENTRE_LOSS = "datacentre-loss"
    RANSOMWARE = "ransomware"
    ACCIDENTAL_DELETION = "accidental-deletion"

    @property
    def title(self) -> str:
        return self.value.replace("-", " ").replace("datacentre", "data-centre")


@dataclass(frozen=True)
class Objective:
    rto: timedelta
    rpo: timedelta


# Plan, "Objectives": restore within 4 h, lose at most 1 h.
PLAN_OBJECTIVE = Objective(rto=4 * HOUR, rpo=1 * HOUR)

# Plan, "Disaster Recovery Scenarios": per-scenario objectives.
SCENARIO_OBJECTIVES: dict[Scenario, Objective] = {
    Scenario.DATABASE_CORRUPTION: Objective(rto=2 * HOUR, rpo=PLAN_OBJECTIVE.rpo),
    Scenario.DATACENTRE_LOSS: PLAN_OBJECTIVE,
    Scenario.RANSOMWARE: PLAN_OBJECTIVE,
    Scenario.ACCIDENTAL_DELETION: Objective(rto=1 * HOUR, rpo=PLAN_OBJECTIVE.rpo),
}


# --- Schedules ---------------------------------------------------------------------


@dataclass(frozen=True)
class Schedules:
    full_backup_at_utc: time = time(2, 0)  # plan: full backups daily at 2:00 AM UTC
    incremental_every: timedelta = 6 * HOUR  # plan: incremental every 6 hours
    # "Real-time WAL archiving": the longest a finished WAL segment may wait before it is
    # shipped. RDS ships transaction logs every 5 minutes; PostgreSQL's archive_timeout
    # is set to the same value in the Kubernetes/drill realisations.
    wal_archive_every: timedelta = 5 * MINUTE
    restore_test_every: timedelta = WEEK  # plan: weekly automated restore verification
    dr_drill_every: timedelta = 30 * DAY  # plan: monthly full DR drill
    weekly_on: int = 6  # date.weekday(): Sunday holds the weekly (GFS "son to father") backup

    @property
    def full_backup_cron(self) -> str:
        """The daily full backup as an EventBridge / AWS Backup cron expression (UTC)."""
        return f"cron({self.full_backup_at_utc.minute} {self.full_backup_at_utc.hour} * * ? *)"

    @property
    def weekly_cron(self) -> str:
        dow = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[self.weekly_on]
        t = self.full_backup_at_utc
        return f"cron({t.minute} {t.hour} ? * {dow} *)"

    @property
    def monthly_cron(self) -> str:
        t = self.full_backup_at_utc
        return f"cron({t.minute} {t.hour} 1 * ? *)"

    @property
    def yearly_cron(self) -> str:
        t = self.full_backup_at_utc
        return f"cron({t.minute} {t.hour} 1 1 ? *)"

    @property
    def incremental_cron(self) -> str:
        hours = int(self.incremental_every / HOUR)
        t = self.full_backup_at_utc
        return f"cron({t.minute} {t.hour % hours}/{hours} * * ? *)"

    @property
    def full_backup_k8s_cron(self) -> str:
        """The daily full backup as a Kubernetes CronJob schedule (timeZone: Etc/UTC)."""
        return f"{self.full_backup_at_utc.minute} {self.full_backup_at_utc.hour} * * *"

    @property
    def restore_test_cron(self) -> str:
        """Weekly verification, a few hours after the weekly backup has landed."""
        dow = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[self.weekly_on]
        t = self.full_backup_at_utc
        return f"cron({t.minute} {t.hour + RESTORE_TEST_DELAY_HOURS} ? * {dow} *)"


# The weekly restore test starts this long after the backup slot so the backup is done.
RESTORE_TEST_DELAY_HOURS = 4

SCHEDULES = Schedules()


# --- Retention (GFS tiers) ----------------------------------------------------------


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
        period = {
            GfsClass.DAILY: self.daily,
            GfsClass.WEEKLY: self.weekly,
            GfsClass.MONTHLY: self.monthly,
            GfsClass.YEARLY: self.yearly,
        }[gfs]
        if period is None:
            raise ValueError(f"tier keeps no {gfs.value} generation")
        return period

    @property
    def classes(self) -> tuple[GfsClass, ...]:
        return tuple(c for c in GfsClass if self._has(c))

    def _has(self, c: GfsClass) -> bool:
        return {
            GfsClass.DAILY: True,
            GfsClass.WEEKLY: True,
            GfsClass.MONTHLY: self.monthly is not None,
            GfsClass.YEARLY: self.yearly is not None,
        }[c]

    @property
    def longest(self) -> Period:
        return max((self.for_class(c) for c in self.classes), key=lambda p: p.days)

    @property
    def shortest(self) -> Period:
        return min((self.for_class(c) for c in self.classes), key=lambda p: p.days)


RETENTION: dict[Tier, Retention] = {
    # Plan, "Backup Retention Policy / Production"
    Tier.PROD: Retention(daily=days(30), weekly=weeks(12), monthly=months(12), yearly=years(7)),
    # Plan, "Backup Retention Policy / Development/Staging"
    Tier.STAGING: Retention(daily=days(7), weekly=weeks(4)),
}

# Not from the plan, but fixed here once: incomplete multipart uploads are garbage after a
# week (a backup run lasts minutes), and yearly backups move to cold storage after this.
MULTIPART_ABORT = days(7)
COLD_STORAGE_AFTER = days(90)
# AWS Backup refuses a lifecycle whose delete_after is not at least 90 days past cold storage.
COLD_STORAGE_MIN_STAY = days(90)
# Replication Time Control: S3 replicates 99.99 % of objects within 15 minutes.
REPLICATION_TIME_CONTROL = 15 * MINUTE
# A backup that has not completed within this long of its slot is missing (alarm).
BACKUP_OVERDUE_AFTER = 26 * HOUR
# DNS failover (issue 5): Route 53 probes the primary's health endpoint this often and
# fails over after this many consecutive failures (Route 53 accepts 10 s or 30 s only).
# Assumptions.dns_switch budgets for them plus the record TTL.
HEALTH_CHECK_INTERVAL = timedelta(seconds=10)
HEALTH_CHECK_FAILURES = 3
# Data tier (issue 3). AWS Backup restore testing: the restored copy stays this long for the
# validation function to check it before AWS Backup deletes it.
RESTORE_VALIDATION_WINDOW = 4 * HOUR
# AWS Backup / RDS snapshot jobs must not start within this long after RDS's own automated
# backup window ends (AWS recommends an hour between them).
BACKUP_WINDOW_GAP = 1 * HOUR


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


def schedule_slot(at: datetime, schedules: Schedules = SCHEDULES) -> datetime:
    """The daily backup slot that a run started at `at` belongs to (idempotency key).

    A run at 02:07 or a retry at 05:00 belongs to today's 02:00 slot; a run at 01:00
    belongs to yesterday's.
    """
    slot = datetime.combine(at.date(), schedules.full_backup_at_utc, tzinfo=at.tzinfo)
    return slot if at >= slot else slot - DAY


# --- Achieved objectives ------------------------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    """Durations the RTO estimate adds up. Each is a stated assumption, not a measurement;
    the drill (`python -m drill`) measures the same steps on real PostgreSQL."""

    detection: timedelta = 10 * MINUTE  # 1-minute alarms + paging + decision to act
    provision_database: timedelta = 20 * MINUTE  # a new RDS instance from a snapshot
    restore_mb_per_s: float = 90.0  # pg_restore throughput measured on 2 cores (NOTES.md)
    wal_replay_speedup: float = 24.0  # a day of the platform's WAL replays in an hour
    promote_replica: timedelta = 10 * MINUTE  # RDS read-replica promotion incl. reboot
    scale_application: timedelta = 10 * MINUTE  # pods from standby to production size
    dns_switch: timedelta = 5 * MINUTE  # health check 3 x 10 s + record TTL 60 s + margin
    verify_and_cutover: timedelta = 10 * MINUTE  # SQL probes, smoke test, reopen writes
    cross_region_log_delay: timedelta = 10 * MINUTE  # automated-backup replication lag
    standby_lag_budget: timedelta = 5 * MINUTE  # replica lag above this pages (alarm)


ASSUMPTIONS = Assumptions()


@dataclass(frozen=True)
class Topology:
    """What a site declares, in cloud-neutral terms; built from the stack configuration."""

    tier: Tier
    database_size_gb: float
    point_in_time_recovery: bool = True  # continuous WAL archiving
    cross_region_pitr: bool = True  # WAL/automated backups replicated to the DR region
    warm_standby: bool = True  # a streaming replica in the DR region
    dr_copies: bool = True  # every backup rule copies to the DR vault
    vault_locked: bool = True  # backup stores under compliance-mode lock
    schedules: Schedules = SCHEDULES


@dataclass(frozen=True)
class RecoverySource:
    """One way back, and what it achieves."""

    name: str
    rpo: timedelta
    rto: timedelta
    point_in_time: bool  # can go back to before a logical fault (a replica cannot)
    survives_region_loss: bool
    immutable: bool  # an attacker holding the account cannot delete or alter it
    derivation: str


def _restore_time(topology: Topology, replay_window: timedelta, a: Assumptions) -> timedelta:
    load = timedelta(seconds=topology.database_size_gb * 1024 / a.restore_mb_per_s)
    replay = replay_window / a.wal_replay_speedup
    return a.detection + a.provision_database + load + replay + a.verify_and_cutover


def recovery_sources(topology: Topology, a: Assumptions = ASSUMPTIONS) -> list[RecoverySource]:
    s = topology.schedules
    # A base backup at least every `incremental_every` bounds the WAL to replay.
    pitr_rto = _restore_time(topology, s.incremental_every, a)
    snapshot_rto = _restore_time(topology, timedelta(0), a)
    fmt = _fmt
    sources: list[RecoverySource] = []
    if topology.point_in_time_recovery:
        sources.append(
            RecoverySource(
                "point-in-time restore (same region)",
                rpo=s.wal_archive_every,
                rto=pitr_rto,
                point_in_time=True,
                survives_region_loss=False,
                immutable=topology.vault_locked,
                derivation=(
                    f"RPO = WAL shipped every {fmt(s.wal_archive_every)}; RTO = detect "
                    f"{fmt(a.detection)} + provision {fmt(a.provision_database)} + load "
                    f"{topology.database_size_gb:g} GB at {a.restore_mb_per_s:g} MB/s + replay "
                    f"≤{fmt(s.incremental_every)} of WAL at {a.wal_replay_speedup:g}x + verify "
                    f"{fmt(a.verify_and_cutover)}"
                ),
            )
        )
    if topology.point_in_time_recovery and topology.cross_region_pitr:
        sources.append(
            RecoverySource(
                "point-in-time restore (DR region)",
                rpo=s.wal_archive_every + a.cross_region_log_delay,
                rto=pitr_rto + a.scale_application + a.dns_switch,
                point_in_time=True,
                survives_region_loss=True,
                immutable=False,
                derivation=(
                    f"RPO = WAL every {fmt(s.wal_archive_every)} + cross-region copy "
                    f"{fmt(a.cross_region_log_delay)}; RTO = same-region PITR + scale app "
                    f"{fmt(a.scale_application)} + DNS {fmt(a.dns_switch)}"
                ),
            )
        )
    if topology.warm_standby:
        sources.append(
            RecoverySource(
                "promote warm standby (DR region)",
                rpo=a.standby_lag_budget,
                rto=a.detection + a.promote_replica + a.scale_application + a.dns_switch,
                point_in_time=False,
                survives_region_loss=True,
                immutable=False,
                derivation=(
                    f"RPO = replica lag budget {fmt(a.standby_lag_budget)} (alarmed); RTO = "
                    f"detect {fmt(a.detection)} + promote {fmt(a.promote_replica)} + scale app "
                    f"{fmt(a.scale_application)} + DNS {fmt(a.dns_switch)}"
                ),
            )
        )
    if topology.dr_copies:
        sources.append(
            RecoverySource(
                "restore locked snapshot copy (DR vault)",
                rpo=s.incremental_every,
                rto=snapshot_rto + a.scale_application + a.dns_switch,
                point_in_time=True,
                survives_region_loss=True,
                immutable=topology.vault_locked,
                derivation=(
                    f"RPO = snapshot every {fmt(s.incremental_every)}; RTO = detect + provision"
                    f" + load {topology.database_size_gb:g} GB + verify + scale app + DNS"
                ),
            )
        )
    return sources


def _eligible(scenario: Scenario, source: RecoverySource) -> bool:
    if scenario is Scenario.DATACENTRE_LOSS:
        return source.survives_region_loss
    if scenario is Scenario.RANSOMWARE:
        return source.immutable and source.point_in_time
    # Corruption and deletion replicate to a standby at once: only going back in time helps.
    return source.point_in_time


@dataclass(frozen=True)
class Achieved:
    scenario: Scenario
    objective: Objective
    source: RecoverySource | None

    @property
    def rpo(self) -> timedelta | None:
        return self.source.rpo if self.source else None

    @property
    def rto(self) -> timedelta | None:
        return self.source.rto if self.source else None

    @property
    def met(self) -> bool:
        return (
            self.source is not None and self.source.rpo <= self.objective.rpo and self.source.rto <= self.objective.rto
        )

    def shortfall(self) -> str:
        if self.source is None:
            return f"{self.scenario.title}: no recovery source of this topology survives it"
        parts = []
        if self.source.rpo > self.objective.rpo:
            parts.append(
                f"RPO {_fmt(self.source.rpo)} exceeds {_fmt(self.objective.rpo)} by "
                f"{_fmt(self.source.rpo - self.objective.rpo)}"
            )
        if self.source.rto > self.objective.rto:
            parts.append(
                f"RTO {_fmt(self.source.rto)} exceeds {_fmt(self.objective.rto)} by "
                f"{_fmt(self.source.rto - self.objective.rto)}"
            )
        return f"{self.scenario.title}: " + "; ".join(parts)


def achieved_objectives(
    topology: Topology,
    objectives: dict[Scenario, Objective] | None = None,
    a: Assumptions = ASSUMPTIONS,
) -> list[Achieved]:
    """Per scenario, the best recovery source the topology offers and what it achieves."""
    objectives = objectives or SCENARIO_OBJECTIVES
    sources = recovery_sources(topology, a)
    result = []
    for scenario in Scenario:
        eligible = [s for s in sources if _eligible(scenario, s)]
        # Prefer a source that meets the objective; among those, the fastest.
        objective = objectives[scenario]
        eligible.sort(key=lambda s: (not (s.rpo <= objective.rpo and s.rto <= objective.rto), s.rto, s.rpo))
        result.append(Achieved(scenario, objective, eligible[0] if eligible else None))
    return result


def _fmt(d: timedelta) -> str:
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


format_duration = _fmt
