"""Large objects and materialized views are counted in the manifest and checked by verify
(issue 16, point 8), on PostgreSQL 15 and moto: no hand-written probe needed."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.errors import VerifyFailed
from lambdas.core.pg import LARGE_OBJECTS_KEY, DbConn
from lambdas.core.verify import run_verify

# About PostgreSQL (the snapshot session, what the dump holds, who owns a row): the S3 store is enough.
pytestmark = [pytest.mark.postgres, pytest.mark.s3_only]


@pytest.fixture
def lo_db(pg):
    name = f"lo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE docs (id int PRIMARY KEY, blob oid);
            INSERT INTO docs SELECT g, lo_from_bytea(0, decode(repeat(md5(g::text), 100), 'hex'))
            FROM generate_series(1, 5) g;
            CREATE MATERIALIZED VIEW doc_ids AS SELECT id FROM docs;
            INSERT INTO docs VALUES (6, NULL);  -- the view is stale now: a restore refreshes it
            CREATE MATERIALIZED VIEW never_filled AS SELECT id FROM docs WITH NO DATA;
        """)
    try:
        yield name
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_large_objects_and_materialized_views_are_counted_and_verified(pg, aws, env, tel, actor, lo_db,
                                                                       scratch_dbs):
    environ = {**env, "BACKUP_DATABASE": lo_db}
    r = run_backup(load_request(BackupRequest, {}, environ), aws.store(), DbConn.resolve(dsn=pg.dsn()),
                   actor=actor, telemetry=tel)
    counts = r.manifest["row_counts"]
    assert counts[LARGE_OBJECTS_KEY] == 5
    assert counts["public.doc_ids"] == 6  # what the restore's REFRESH gives, not the stale 5
    assert "public.never_filled" not in counts  # not populated: pg_restore does not refresh it
    result = run_verify(load_request(VerifyRequest, {"record": False}, environ), aws.store(),
                        DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert result.row_counts[LARGE_OBJECTS_KEY] == 5 and result.row_counts["public.doc_ids"] == 6

    # A restore that lost the large objects is caught by the counts alone.
    from .test_faults import _tamper_manifest

    _tamper_manifest(aws, r.manifest_key, row_counts={**counts, LARGE_OBJECTS_KEY: 6})
    with pytest.raises(VerifyFailed) as e:
        run_verify(load_request(VerifyRequest, {"record": False}, environ), aws.store(),
                   DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert e.value.cause == "row_count_mismatch" and LARGE_OBJECTS_KEY in e.value.details["tables"]
    assert scratch_dbs() == []
