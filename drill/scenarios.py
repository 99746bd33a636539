"""The plan's four scenarios, each rehearsed on a `DrillEnvironment` and measured.

Each scenario starts its clock at the incident (the drill detects instantly; the cloud
realisation adds alarm and decision time, see docs/drill.md) and stops it when service is
back and checked. Losses are counted against the writer's ledger.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from drill.environment import DBNAME, STANDBY_NAME, DrillEnvironment, query, wait_until
from drill.integrity import amcheck, exactness, loss, prefix_gaps, present_keys, seed_rows_present
from drill.ransomware import attack_the_backups
from drill.report import ScenarioResult
from drplan.objectives import Scenario
from drplan.schedules import SCHEDULES

DELETED_AUTHOR = 7  # the author whose posts an operator deletes by mistake
CORRUPTION_MARK = "CORRUPTED "

# Faults the drill can inject into itself, to prove it notices a missed objective.
FAULTS = ("standby-stall",)


@dataclass
class Options:
    load_seconds: float = 8.0
    fault: str | None = None


Progress = Callable[[str], None]


def _now() -> datetime:
    return datetime.now(UTC)


def incident(env: DrillEnvironment, sql: str, params=None) -> tuple[datetime, list]:
    """Run one harmful transaction on the primary; returns its commit timestamp (the
    recovery target: restore to just before it) and the rows it returned."""
    with psycopg.connect(env.primary.dsn(DBNAME), autocommit=True) as conn:
        with conn.transaction():
            # Recovery stops at the first commit record, in WAL order, stamped at/after the
            # target; two commits microseconds apart can be stamped in the other order. The
            # lock (as a migration or a bulk DELETE would take) orders every writer commit
            # strictly before or after this one, so the ledger's verdict is exact.
            conn.execute("LOCK TABLE posts IN SHARE ROW EXCLUSIVE MODE")
            rows = conn.execute(sql, params).fetchall()
            xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        commit_ts = conn.execute("SELECT pg_xact_commit_timestamp(%s::xid)", (xid,)).fetchone()[0]
    return commit_ts, rows


def _finish(result: ScenarioResult, ledger, present, at: datetime) -> None:
    lost = loss(ledger, present, at)
    result.rows_lost = lost.rows
    result.rpo = lost.span


def _back_in_service(result: ScenarioResult, env: DrillEnvironment, restored, present, t0: datetime) -> None:
    """The end of a full restore: pre-backup rows present and pg_amcheck clean, then the RTO
    (from t0 to now) and what was lost after t0."""
    ok, detail = seed_rows_present(restored, env.ledger.seed_rows)
    result.check("pre-backup rows all present", ok, detail)
    ok, detail = amcheck(restored)
    result.check("pg_amcheck clean", ok, detail)
    result.rto = _now() - t0
    _finish(result, env.ledger, present, t0)


# --- 4. accidental deletion ----------------------------------------------------------


def accidental_deletion(env: DrillEnvironment, opt: Options, progress: Progress) -> ScenarioResult:
    result = ScenarioResult(Scenario.ACCIDENTAL_DELETION)
    writer = env.writer()
    time.sleep(opt.load_seconds)
    target, deleted = incident(env, "DELETE FROM posts WHERE author_id = %s RETURNING id", (DELETED_AUTHOR,))
    t0 = target  # the clock starts when the harm is committed
    deleted_ids = [r[0] for r in deleted]
    progress(f"  {len(deleted_ids)} posts of author {DELETED_AUTHOR} deleted at {target:%H:%M:%S.%f}; "
             "the application keeps writing")
    # The live database stays in service: only the deleted rows are brought back.
    env.archive_now()
    side = env.restore("side-deletion", target)
    result.facts.update(env.restore_timings["side-deletion"])
    progress("  side cluster restored to just before the DELETE")
    copied = copy_back(side, env, deleted_ids)
    t_back = _now()
    result.rto = t_back - t0
    progress(f"  {copied['posts']} posts and {copied['comments']} comments copied back to the live database")
    time.sleep(min(1.0, opt.load_seconds))  # the application carries on after the repair
    writer.stop()
    if writer.error:
        raise writer.error

    side_present = present_keys(side)
    ex = exactness(env.ledger, side_present, target)
    result.check("side restore exact at the target", ex.exact, ex.detail())
    side_comments = {r[0] for r in query(side, "SELECT id FROM comments WHERE post_id = ANY(%s)", (deleted_ids,))}
    live_posts = {r[0] for r in query(env.primary, "SELECT id FROM posts WHERE id = ANY(%s)", (deleted_ids,))}
    live_comments = {r[0] for r in query(env.primary, "SELECT id FROM comments WHERE id = ANY(%s)",
                                         (list(side_comments),))}
    result.check("every deleted post is back", set(deleted_ids) == live_posts,
                 f"{len(set(deleted_ids) - live_posts)} of {len(deleted_ids)} missing")
    result.check("every cascaded comment is back", side_comments == live_comments,
                 f"{len(side_comments - live_comments)} of {len(side_comments)} missing")
    live_present = present_keys(env.primary)
    same = [_digest(c, deleted_ids) for c in (side, env.primary)]
    result.check("restored rows identical to before the DELETE", same[0] == same[1], f"md5 {same[0]} vs {same[1]}")
    ok, detail = seed_rows_present(env.primary, env.ledger.seed_rows)
    result.check("pre-backup rows all present", ok, detail)
    after = len(env.ledger.keys("posts", lambda a: a.commit_ts >= target))
    result.check("writes after the DELETE kept (no rollback)", after > 0 and not [
        a for a in env.ledger.acks if a.commit_ts >= target and a.key not in live_present[a.table]],
        f"{after} posts written after the DELETE")
    _finish(result, env.ledger, live_present, t_back)
    result.check("no acknowledged row lost", result.rows_lost == 0, f"{result.rows_lost} lost")
    result.facts.update(deleted_posts=len(deleted_ids), deleted_comments=len(side_comments),
                        writes_refused_meanwhile=writer.rejected, target=target.isoformat())
    return result


def copy_back(side, env: DrillEnvironment, post_ids: list[int]) -> dict[str, int]:
    """Copy the deleted posts and their comments from the side cluster into the live one,
    skipping anything the live database already has again."""
    selects = {
        "posts": "SELECT * FROM posts WHERE id = ANY(%s)",
        "comments": "SELECT * FROM comments WHERE post_id = ANY(%s)",
    }
    copied = {}
    with (
        psycopg.connect(side.dsn(DBNAME)) as src,
        psycopg.connect(env.primary.dsn(DBNAME)) as dst,
        dst.transaction(),
    ):
        for table, select in selects.items():  # posts first: comments reference them
            dst.execute(f"CREATE TEMP TABLE incoming_{table} (LIKE {table}) ON COMMIT DROP")
            with (
                src.cursor().copy(f"COPY ({select}) TO STDOUT", (post_ids,)) as out,
                dst.cursor().copy(f"COPY incoming_{table} FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            copied[table] = dst.execute(
                f"INSERT INTO {table} SELECT * FROM incoming_{table} ON CONFLICT (id) DO NOTHING"
            ).rowcount
    return copied


def _digest(cluster, post_ids: list[int]) -> str:
    return query(
        cluster,
        "SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY p.id), '')) FROM posts p WHERE id = ANY(%s)",
        (post_ids,),
    )[0][0]


# --- 1. database corruption ----------------------------------------------------------


def database_corruption(env: DrillEnvironment, opt: Options, progress: Progress) -> ScenarioResult:
    result = ScenarioResult(Scenario.DATABASE_CORRUPTION)
    writer = env.writer()
    time.sleep(opt.load_seconds)
    # A faulty migration scrambles every tenth post; it replicates to the standby at once,
    # which is why only going back in time helps.
    target, _ = incident(env, "UPDATE posts SET body = %s || md5(body) WHERE id %% 10 = 3 RETURNING id",
                         (CORRUPTION_MARK,))
    t0 = target  # the clock starts when the harm is committed
    writer.stop()  # plan step 2: stop application writes
    if writer.error:
        raise writer.error
    progress(f"  posts corrupted at {target:%H:%M:%S.%f}; writes stopped; restoring to just before")
    env.archive_now()
    restored = env.restore("pitr-corruption", target)
    result.facts.update(env.restore_timings["pitr-corruption"])
    present = present_keys(restored)
    ex = exactness(env.ledger, present, target)
    result.check("point-in-time restore exact at the target", ex.exact, ex.detail())
    corrupted = query(restored, "SELECT count(*) FROM posts WHERE body LIKE %s", (CORRUPTION_MARK + "%",))[0][0]
    result.check("no corrupted row in the restored database", corrupted == 0, f"{corrupted} corrupted rows")
    _back_in_service(result, env, restored, present, t0)
    result.facts.update(target=target.isoformat(),
                        rows_after_target_discarded=len(ex.present_after) + result.rows_lost)
    return result


# --- 2. data-centre loss ---------------------------------------------------------------


def datacentre_loss(env: DrillEnvironment, opt: Options, progress: Progress) -> ScenarioResult:
    result = ScenarioResult(Scenario.DATACENTRE_LOSS)
    writer = env.writer()
    stalled_pid = None
    if opt.fault == "standby-stall":
        # Injected fault: replication to the (async) standby stalls while the primary keeps
        # acknowledging commits; the failover must then lose rows and the drill must say so.
        # The primary's walsender is the one stopped: a stalled receiver would still find the
        # stream waiting in its socket buffer.
        time.sleep(opt.load_seconds / 2)
        stalled_pid = query(env.primary, "SELECT pid FROM pg_stat_replication WHERE application_name = %s",
                            (STANDBY_NAME,), dbname="postgres")[0][0]
        os.kill(stalled_pid, signal.SIGSTOP)
        progress(f"  FAULT INJECTED: replication to the standby stalled (walsender pid {stalled_pid})")
        time.sleep(opt.load_seconds / 2)
    else:
        time.sleep(opt.load_seconds)
    sync_state = "stalled" if stalled_pid else ("sync" if env.standby_streaming() else "not streaming")
    t0 = _now()
    env.primary.crash()
    progress("  primary site lost (postmaster and all its processes SIGKILLed)")
    t_promote = time.monotonic()
    query(env.standby, "SELECT pg_promote(wait => true)", dbname="postgres")
    result.facts["promote_seconds"] = round(time.monotonic() - t_promote, 3)
    new_primary = env.standby.dsn(DBNAME)
    writer.redirect(new_primary)
    wait_until(lambda: env.ledger.first_ack_after(t0, new_primary) is not None, 60,
                "the first write on the new primary")
    first = env.ledger.first_ack_after(t0, new_primary)
    result.rto = first.acked_at - t0
    progress(f"  standby promoted; first write acknowledged {result.rto.total_seconds():.2f}s after the loss")
    time.sleep(min(1.0, opt.load_seconds))
    writer.stop()
    if writer.error:
        raise writer.error
    present = present_keys(env.standby)
    _finish(result, env.ledger, present, t0)
    result.check("zero acknowledged rows lost (synchronous standby)", result.rows_lost == 0,
                 f"{result.rows_lost} acknowledged rows missing after failover")
    result.check("writes resumed on the promoted standby",
                 not query(env.standby, "SELECT pg_is_in_recovery()", dbname="postgres")[0][0])
    ok, detail = seed_rows_present(env.standby, env.ledger.seed_rows)
    result.check("pre-backup rows all present", ok, detail)
    seen: dict[tuple[str, int], int] = {}
    for a in env.ledger.acks:
        seen[(a.table, a.id)] = seen.get((a.table, a.id), 0) + 1
    # After a lossy failover the new primary's sequences reissue ids the old one had given out.
    result.facts.update(standby_state_at_loss=sync_state, writes_failed_during_failover=writer.rejected,
                        acknowledged_ids_reissued=sum(n - 1 for n in seen.values()))
    # The old primary is gone; the promoted standby is the site from now on.
    env.primary, env.standby = env.standby, None
    return result


# --- 3. ransomware ---------------------------------------------------------------------


def ransomware(env: DrillEnvironment, opt: Options, progress: Progress) -> ScenarioResult:
    result = ScenarioResult(Scenario.RANSOMWARE)
    writer = env.writer()
    time.sleep(opt.load_seconds)
    t0 = _now()
    env.primary.crash()
    shutil.rmtree(env.primary.data_dir)  # "encrypted": the data directory is gone
    writer.stop()
    if writer.error:
        raise writer.error
    # The attacker goes for the backups next; what the store refuses is the store's own.
    source = attack_the_backups(env, result, progress)
    restored = env.restore("ransomware-recovery", None, source=source)
    result.facts.update(env.restore_timings["ransomware-recovery"])
    present = present_keys(restored)
    gaps = prefix_gaps(env.ledger, present)
    result.check("restored history has no holes", not gaps, f"{len(gaps)} acknowledged rows missing mid-history")
    _back_in_service(result, env, restored, present, t0)
    # What the unarchived tail can cost is bounded by archive_timeout (the model's WAL cadence).
    result.check("loss within the WAL archiving bound", result.rpo <= SCHEDULES.wal_archive_every,
                 f"{result.rpo.total_seconds():.1f}s lost, bound {SCHEDULES.wal_archive_every}")
    result.facts.update(acknowledged_rows_in_unarchived_wal=result.rows_lost)
    return result


RUNNERS: dict[Scenario, Callable[[DrillEnvironment, Options, Progress], ScenarioResult]] = {
    Scenario.ACCIDENTAL_DELETION: accidental_deletion,
    Scenario.DATABASE_CORRUPTION: database_corruption,
    Scenario.DATACENTRE_LOSS: datacentre_loss,
    Scenario.RANSOMWARE: ransomware,
}
