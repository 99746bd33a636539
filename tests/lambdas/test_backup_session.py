"""The snapshot session of a backup (issue 16, point 6), on PostgreSQL 15 and moto.

The session that exports the snapshot sits idle in its transaction while pg_dump streams. A
server's idle_in_transaction_session_timeout used to end it mid-backup: the upload completed
(a full object under COMPLIANCE lock for the whole retention) and only then did the row
counts fail, with no manifest. Now the session turns the timeouts off, and the counts are
taken before the upload is completed, so any failure there still aborts it.
"""

from __future__ import annotations

import psycopg
import pytest

from drill.local import PG_BIN
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, load_request
from lambdas.core.errors import DataPlaneError
from lambdas.core.pg import SNAPSHOT_APPLICATION_NAME, DbConn

# About PostgreSQL (the snapshot session, what the dump holds, who owns a row): the S3 store is enough.
pytestmark = [pytest.mark.postgres, pytest.mark.s3_only]

DATA_PREFIX = "postgres/postoucancer/data/"
MANIFESTS = "postgres/postoucancer/manifests/"


def _slow_pg_dump(pg_bin_dir, seconds: float, after: str = "") -> None:
    """pg_dump whose output reaches us `seconds` late (a dump that takes longer), then `after`."""
    wrapper = pg_bin_dir / "pg_dump"
    wrapper.unlink()
    wrapper.write_text(f"#!/bin/bash\nset -o pipefail\n\"{PG_BIN / 'pg_dump'}\" \"$@\" | (sleep {seconds}; cat)\n"
                       f"rc=$?\n{after}\nexit $rc\n")
    wrapper.chmod(0o755)


@pytest.fixture
def idle_timeout(pg):
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("ALTER DATABASE postoucancer SET idle_in_transaction_session_timeout = '1s'")
        conn.execute("ALTER DATABASE postoucancer SET statement_timeout = '1s'")
    try:
        yield
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("ALTER DATABASE postoucancer RESET idle_in_transaction_session_timeout")
            conn.execute("ALTER DATABASE postoucancer RESET statement_timeout")


def test_a_dump_longer_than_the_servers_idle_timeout_still_backs_up(pg, aws, env, tel, actor, pg_bin_dir,
                                                                    idle_timeout):
    _slow_pg_dump(pg_bin_dir, 2.5)
    result = run_backup(load_request(BackupRequest, {}, env), aws.store(), DbConn.resolve(dsn=pg.dsn()),
                        actor=actor, telemetry=tel)
    assert result.status == "created"
    assert result.manifest["row_counts"]["public.comments"] == 20000
    assert aws.keys(prefix=MANIFESTS) == [result.manifest_key] and aws.open_uploads() == []


def test_a_lost_snapshot_session_aborts_the_upload(pg, aws, env, tel, actor, pg_bin_dir):
    # The session is ended (an administrator, a failover) after pg_dump finished: the counts
    # cannot be taken, so nothing may be completed.
    kill = (f"\"{PG_BIN / 'psql'}\" -qAt -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE application_name = '{SNAPSHOT_APPLICATION_NAME}'\" >/dev/null")
    _slow_pg_dump(pg_bin_dir, 0, after=kill)
    with pytest.raises(DataPlaneError) as e:
        run_backup(load_request(BackupRequest, {}, env), aws.store(), DbConn.resolve(dsn=pg.dsn()),
                   actor=actor, telemetry=tel)
    assert e.value.cause == "database_connection_lost"
    assert aws.keys(prefix=MANIFESTS) == [], "no manifest"
    assert aws.keys(prefix=DATA_PREFIX) == [], "no completed (and locked) object"
    assert aws.open_uploads() == [], "the multipart upload is aborted"
    assert aws.audit[-1]["outcome"] == "failure" and aws.audit[-1]["reason"] == e.value.cause
