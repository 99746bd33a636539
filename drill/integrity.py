"""How a recovered database is judged against the ledger of acknowledged writes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta

from drill.environment import DBNAME, query
from drill.load import Ack, Ledger
from drill.local import PG_BIN, PgCluster

TABLES = ("posts", "comments")


def present_keys(cluster: PgCluster) -> dict[str, set[str]]:
    """The idempotency keys of the writer's rows present in a database, per table."""
    return {t: {str(r[0]) for r in query(cluster, f"SELECT request_id FROM {t} WHERE request_id IS NOT NULL")}
            for t in TABLES}


@dataclass
class Loss:
    lost: list[Ack]
    recovered_to: datetime  # newest acknowledged commit from before the incident that survived

    @property
    def rows(self) -> int:
        return len(self.lost)

    @property
    def span(self) -> timedelta:
        """From the recovery point to the last acknowledged write that did not survive."""
        if not self.lost:
            return timedelta(0)
        return max(timedelta(0), max(a.acked_at for a in self.lost) - self.recovered_to)


def loss(ledger: Ledger, present: dict[str, set[str]], incident: datetime) -> Loss:
    lost = [a for a in ledger.acks if a.key not in present[a.table]]
    survived = [a.commit_ts for a in ledger.acks if a.acked_at <= incident and a.key in present[a.table]]
    recovered_to = max([ledger.seeded_at, *survived])
    return Loss(lost, recovered_to)


@dataclass
class Exactness:
    """A point-in-time restore to just before `target` (exclusive), judged row by row."""

    missing_before: list[Ack]  # committed before the target, acknowledged, absent: data loss
    present_after: list[Ack]  # committed at/after the target, present: the restore overshot

    @property
    def exact(self) -> bool:
        return not self.missing_before and not self.present_after

    def detail(self) -> str:
        return (f"{len(self.missing_before)} acknowledged rows before the target missing, "
                f"{len(self.present_after)} rows from after the target present")


def exactness(ledger: Ledger, present: dict[str, set[str]], target: datetime) -> Exactness:
    return Exactness(
        missing_before=[a for a in ledger.acks if a.commit_ts < target and a.key not in present[a.table]],
        present_after=[a for a in ledger.acks if a.commit_ts >= target and a.key in present[a.table]],
    )


def prefix_gaps(ledger: Ledger, present: dict[str, set[str]]) -> list[Ack]:
    """Replaying WAL to its end recovers a prefix of history: no acknowledged row may be
    missing from before the newest one that came back."""
    survived = [a.commit_ts for a in ledger.acks if a.key in present[a.table]]
    if not survived:
        return []
    newest = max(survived)
    return [a for a in ledger.acks if a.commit_ts < newest and a.key not in present[a.table]]


def seed_rows_present(cluster: PgCluster, rows: int) -> tuple[bool, str]:
    counts = [query(cluster, f"SELECT count(*) FROM {t} WHERE id <= %s", (rows,))[0][0] for t in TABLES]
    return all(c == rows for c in counts), f"posts {counts[0]}/{rows}, comments {counts[1]}/{rows}"


def amcheck(cluster: PgCluster) -> tuple[bool, str]:
    """Physical consistency of heap and B-tree indexes (PostgreSQL's own verifier)."""
    done = subprocess.run(
        [str(PG_BIN / "pg_amcheck"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "--install-missing", "--heapallindexed", "-d", DBNAME],
        capture_output=True, text=True,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-500:] or "heap and indexes verified"
