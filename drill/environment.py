"""The drill's site: a primary with continuous WAL archiving and base backups to a locked
object store (barman-cloud; `drill.backup_store`), a streaming standby, and side clusters
restored from the store. Everything lives under one work directory and is torn down by `close()`, which the
drill reaches on success, failure and Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

from drill.backup_store import BackupStore, StoreService, service
from drill.load import Ledger, LoadWriter, seed
from drill.local import PG_BIN, PgCluster, _as_postgres
from drplan.schedules import SCHEDULES

DBNAME = "postoucancer"
STANDBY_NAME = "dr_standby"


def _seconds(setting) -> str:
    return f"{int(setting.total_seconds())}s"


def primary_settings(store: BackupStore) -> dict[str, str]:
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": store.archive_command,
        # The model's "real-time WAL archiving" bound: a segment ships at the latest this
        # long after it was started, however quiet the database is.
        "archive_timeout": _seconds(SCHEDULES.wal_archive_every),
        # The ledger and recovery_target_time both speak in server commit timestamps.
        "track_commit_timestamp": "on",
        "max_wal_senders": "5",
        "wal_keep_size": "'256MB'",
        # Switched to the standby's name once it streams (`enable_synchronous_standby`):
        # set now, every commit (the seed, the backup's) would wait for a standby not yet there.
        "synchronous_standby_names": "''",
        "synchronous_commit": "on",
        "log_min_messages": "warning",
    }


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def query(cluster: PgCluster, sql: str, params=None, dbname: str = DBNAME):
    with psycopg.connect(cluster.dsn(dbname), autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


@dataclass
class DrillEnvironment:
    services: StoreService
    workdir: Path
    name: str
    seed_rows: int
    rate: float
    synchronous_standby: bool = True
    with_standby: bool = True
    base_backup: bool = True  # only restores need one; a failover-only drill skips it
    progress: Callable[[str], None] = print
    ledger: Ledger = field(default_factory=Ledger)
    store: BackupStore | None = None
    primary: PgCluster | None = None
    standby: PgCluster | None = None
    backup_id: str | None = None
    restore_timings: dict[str, dict[str, float]] = field(default_factory=dict)
    _side: list[PgCluster] = field(default_factory=list)
    _writers: list[LoadWriter] = field(default_factory=list)

    def build(self) -> DrillEnvironment:
        root = self.workdir / self.name
        self.store = self.services.new_store(self.name, hooks_dir=root / "hooks").create()
        # Assigned before it starts, so that close() finds it whatever fails next.
        self.primary = PgCluster.create(settings=primary_settings(self.store), root=root / "primary")
        self.primary.start()
        query(self.primary, f"CREATE DATABASE {DBNAME}", dbname="postgres")
        self.ledger.seeded_at = seed(self.primary.dsn(DBNAME), self.seed_rows)
        self.ledger.seed_rows = self.seed_rows
        if self.base_backup:
            started = time.monotonic()
            self.backup_id = self.store.base_backup(self.primary)
            self.progress(f"  base backup {self.backup_id} in the store "
                          f"({time.monotonic() - started:.1f}s)")
        if self.with_standby:
            self.standby = self._make_standby(root / "standby")
        return self

    def _make_standby(self, root: Path) -> PgCluster:
        standby = PgCluster.empty(root=root)
        # --checkpoint=fast: a spread checkpoint of freshly seeded data takes minutes.
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                          "-U", "postgres", "-D", str(standby.data_dir), "-X", "stream", "--no-sync",
                          "--checkpoint=fast"]),
            check=True, capture_output=True,
        )
        standby.write_settings({
            "primary_conninfo": f"'host=127.0.0.1 port={self.primary.port} user=postgres "
                                f"application_name={STANDBY_NAME}'",
            "hot_standby": "on",
            "track_commit_timestamp": "on",
            # Once promoted it must not wait for a standby of its own that does not exist.
            "synchronous_standby_names": "''",
            "archive_mode": "off",
            # After the primary vanishes the startup process sleeps this long between WAL
            # source retries, and a promotion request waits it out: 5 s by default.
            "wal_retrieve_retry_interval": "'100ms'",
        })
        _touch_as_postgres(standby.data_dir / "standby.signal")
        self.standby = standby
        standby.start()
        if self.synchronous_standby:
            # An acknowledged commit is then flushed on the standby too: zero loss while it
            # is healthy (the writer waits instead when it is not).
            self.primary.write_settings({"synchronous_standby_names": f"'{STANDBY_NAME}'"})
            query(self.primary, "SELECT pg_reload_conf()", dbname="postgres")
        wait_until(self.standby_streaming, 30, "the standby to stream")
        return standby

    def standby_streaming(self) -> bool:
        rows = query(self.primary, "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                     (STANDBY_NAME,), dbname="postgres")
        want = "sync" if self.synchronous_standby else "async"
        return bool(rows) and rows[0][0] == want

    def writer(self, dsn: str | None = None) -> LoadWriter:
        w = LoadWriter(dsn or self.primary.dsn(DBNAME), self.ledger, self.rate, seed=len(self._writers))
        self._writers.append(w)
        return w.start()

    def archive_now(self, timeout: float = 60) -> None:
        """Ship the current WAL segment now instead of waiting for archive_timeout, and wait
        until the archiver confirms it (what an operator does before a point-in-time restore)."""
        segment = query(self.primary, "SELECT pg_walfile_name(pg_current_wal_lsn())", dbname="postgres")[0][0]
        query(self.primary, "SELECT pg_switch_wal()", dbname="postgres")

        def archived() -> bool:
            last = query(self.primary, "SELECT last_archived_wal FROM pg_stat_archiver", dbname="postgres")[0][0]
            return last is not None and last[:24] >= segment

        wait_until(archived, timeout, f"WAL segment {segment} to be archived")

    def restore(self, label: str, target_time: datetime | None, source: BackupStore | None = None) -> PgCluster:
        """A fresh cluster from the base backup plus archived WAL of `source` (default: the
        site's own store): to just before `target_time` (exclusive), or to the end of the
        archive when it is None."""
        source = source or self.store
        cluster = PgCluster.empty(root=self.workdir / self.name / label)
        self._side.append(cluster)
        started = time.monotonic()
        source.restore(self.backup_id, cluster)
        downloaded = time.monotonic()
        settings = {
            "restore_command": source.restore_command,
            "recovery_target_action": "'promote'",
            # Each site archives one timeline; 'latest' would probe the store for history
            # files, one barman-cloud process start-up each.
            "recovery_target_timeline": "'current'",
            "archive_mode": "off",  # a restored copy must never write into the original's archive
            "track_commit_timestamp": "on",
            "hot_standby": "on",
        }
        if target_time is not None:
            settings["recovery_target_time"] = f"'{target_time.isoformat()}'"
            settings["recovery_target_inclusive"] = "off"
        cluster.write_settings(settings)
        (cluster.data_dir / "standby.signal").unlink(missing_ok=True)
        _touch_as_postgres(cluster.data_dir / "recovery.signal")
        cluster.start(timeout=120)
        # pg_ctl returns once hot standby accepts connections; service is back at promotion.
        wait_until(lambda: not query(cluster, "SELECT pg_is_in_recovery()", dbname="postgres")[0][0],
                    120, f"{label} to finish recovery")
        self.restore_timings[label] = {"download_seconds": round(downloaded - started, 2),
                                       "replay_seconds": round(time.monotonic() - downloaded, 2)}
        return cluster

    def close(self) -> None:
        for w in self._writers:
            # Teardown must reach the clusters below whatever a writer's stop raises.
            with contextlib.suppress(Exception):
                w.stop()
        for c in [*self._side, self.standby, self.primary]:
            if c is not None:
                with contextlib.suppress(Exception):
                    # Throwaway clusters: SIGKILL everything at once and delete. A shutdown
                    # would wait for stragglers (up to 5 s), and waiting for the killed
                    # postmaster's exit means waiting for PID 1 to reap it.
                    c.crash()
                    shutil.rmtree(c.root, ignore_errors=True)


def _touch_as_postgres(path: Path) -> None:
    subprocess.run(_as_postgres(["touch", str(path)]), check=True)


@contextlib.contextmanager
def drill_workspace(workdir: Path | None = None, store: str = "s3"):
    """The store emulator (`--store`) and the work directory shared by the drill's sites."""
    own = workdir is None
    root = Path(workdir or tempfile.mkdtemp(prefix="drill-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    # PostgreSQL runs as `postgres`: every parent directory must let it through.
    for parent in root.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise SystemExit(f"drill: {parent} is not searchable by the postgres user; choose another --workdir")
    services = service(store)
    try:
        try:
            services.start(root)
        except RuntimeError as exc:  # an emulator missing or not starting: say which, and the fix
            raise SystemExit(f"drill: --store {store}: {exc}") from exc
        yield services, root
    finally:
        services.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
