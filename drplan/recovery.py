"""Recovery sources and the RPO/RTO estimator: what a topology achieves per scenario."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .objectives import SCENARIO_OBJECTIVES, Objective, Scenario
from .periods import DAY, HOUR, MINUTE
from .periods import format_duration as _fmt
from .retention import Tier
from .schedules import SCHEDULES, Schedules


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
    # Copy a recovery point out of the backup-only account into a clean recovery account.
    cross_account_copy: timedelta = 30 * MINUTE


ASSUMPTIONS = Assumptions()

# Azure Database for PostgreSQL flexible server, "Backup and restore" (geo-redundant backup and
# restore): data and logs reach the paired region asynchronously, "up to one hour of delay ...
# you can expect up to one hour of RPO"; only the last copied data can be restored (no
# point-in-time restore of geo-backups). Snapshots are daily, so up to a day of WAL replays.
GEO_BACKUP_REPLICATION_DELAY = 1 * HOUR
GEO_RESTORE_REPLAY_WINDOW = 1 * DAY

# The recovery source the monthly DR drill rehearses (drplan.drills).
DR_VAULT_COPY = "restore locked snapshot copy (DR vault)"


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
    # Every GFS recovery point (and the continuous backups' daily snapshot) is copied into a
    # locked vault of a backup-only account, and the dumps replicate there (infra/vault).
    vault_account: bool = False
    schedules: Schedules = SCHEDULES
    geo_backup: bool = False  # the provider copies the server's own backups to the paired region (Azure)


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
    # Held in another account: neither deletable nor made unreadable (keys, replication) by
    # an attacker holding the production account's administrator rights.
    survives_account_compromise: bool = False


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
                DR_VAULT_COPY,
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
    if topology.geo_backup:
        sources.append(
            RecoverySource(
                "geo-restore (paired region)",
                rpo=GEO_BACKUP_REPLICATION_DELAY,
                rto=_restore_time(topology, GEO_RESTORE_REPLAY_WINDOW, a) + a.scale_application + a.dns_switch,
                point_in_time=False,
                survives_region_loss=True,
                immutable=False,
                derivation=(
                    f"RPO = geo-backup copy delay {fmt(GEO_BACKUP_REPLICATION_DELAY)} (Azure documents up to one "
                    f"hour); RTO = detect + provision + load {topology.database_size_gb:g} GB + replay "
                    f"≤{fmt(GEO_RESTORE_REPLAY_WINDOW)} of WAL + verify + scale app + DNS"
                ),
            )
        )
    if topology.vault_account:
        # The copies are daily (the GFS rules and the continuous backups' daily snapshot); RDS
        # snapshots are copied either across accounts or across regions, never both at once
        # (AWS Backup developer guide, "Copy a backup"), so the vault copies of prod's snapshots
        # live in prod's region: this source does not also survive the loss of that region.
        sources.append(
            RecoverySource(
                "restore from the vault account (backup-only account)",
                rpo=DAY,
                rto=snapshot_rto + a.cross_account_copy + a.scale_application + a.dns_switch,
                point_in_time=True,
                survives_region_loss=False,
                immutable=True,
                survives_account_compromise=True,
                derivation=(
                    f"RPO = one copy a day ({fmt(DAY)}); RTO = copy out to a recovery account "
                    f"{fmt(a.cross_account_copy)} + detect + provision + load {topology.database_size_gb:g} GB"
                    " + verify + scale app + DNS"
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
