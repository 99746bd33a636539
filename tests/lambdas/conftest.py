"""Fixtures for the data-plane tests: one real PostgreSQL 15, one moto server and one Azurite per session.

The `store` fixture runs a test on both object stores (tests/lambdas/stores.py)."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest

from drill.azurite import AzuriteServer
from drill.local import PG_BIN, MotoServer, PgCluster
from drplan.handover import ENV_VAR as POLICY_ENV
from drplan.handover import BackupPolicy
from drplan.retention import RETENTION, Tier
from lambdas.core.audit import Actor
from lambdas.core.telemetry import Telemetry

from .stores import LOCKED_BUCKET, PLAIN_BUCKET, AzureHarness, S3Harness

REGION = "eu-west-3"
DATABASE = "postoucancer"

SCHEMA = """
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    display_name text NOT NULL,
    bio text,
    created_at timestamptz NOT NULL
);
CREATE TABLE posts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    title text NOT NULL,
    body text NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    published boolean NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX posts_user_idx ON posts(user_id, created_at);
CREATE TABLE comments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users(id),
    body text NOT NULL,
    meta jsonb,
    created_at timestamptz NOT NULL
);
CREATE TABLE media (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint REFERENCES posts(id),
    content_type text NOT NULL,
    data bytea NOT NULL,
    sha256 bytea NOT NULL
);
CREATE VIEW published_posts AS SELECT id, user_id, title FROM posts WHERE published;
"""

# ~13 MB of rows: text from random words (compressible like real prose), random bytea
# (incompressible like images), NULLs, unicode, arrays and JSON.
DATA = """
SELECT setseed(0.42);
INSERT INTO users (email, display_name, bio, created_at)
SELECT 'user' || g || '@example.org',
       (ARRAY['Zoé','Åsa','Jean-Luc','Мария','李','Nadia'])[1 + g % 6] || ' ' || g,
       CASE WHEN g % 7 = 0 THEN NULL ELSE repeat(md5(random()::text) || ' ', 1 + g % 5) END,
       timestamptz '2024-01-01' + g * interval '37 minutes'
FROM generate_series(1, 3000) g;
INSERT INTO posts (user_id, title, body, tags, published, created_at)
SELECT 1 + (random() * 2999)::int,
       'Post ' || g || ' ' || md5(g::text),
       (SELECT string_agg((ARRAY['soin','espoir','chimio','fatigue','famille','courage','merci','rendez-vous',
                                 'résultats','oncologue'])[1 + (random() * 9)::int] || ' ' || md5(random()::text),
                          ' ')
        FROM generate_series(1, 8 + g % 20) WHERE g > 0),
       ARRAY['tag' || g % 13, 'tag' || g % 7],
       g % 10 <> 0,
       timestamptz '2024-02-01' + g * interval '11 minutes'
FROM generate_series(1, 8000) g;
INSERT INTO comments (post_id, user_id, body, meta, created_at)
SELECT 1 + (g % 8000), 1 + (g * 7 % 3000), 'Comment ' || md5(random()::text) || ' ✓',
       CASE WHEN g % 3 = 0 THEN jsonb_build_object('likes', g % 50, 'edited', g % 2 = 0) END,
       timestamptz '2024-03-01' + g * interval '5 minutes'
FROM generate_series(1, 20000) g;
INSERT INTO media (post_id, content_type, data, sha256)
SELECT 1 + g * 13 % 8000, 'image/jpeg', b.data, sha256(b.data)
FROM generate_series(1, 250) g,
     LATERAL (SELECT decode(string_agg(md5(random()::text || g || s), ''), 'hex') AS data
              FROM generate_series(1, 2048) s) b;
ANALYZE;
"""


@pytest.fixture(scope="session")
def pg():
    cluster = PgCluster.create()
    try:
        cluster.start()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(cluster.dsn(DATABASE), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute(DATA)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite_server():
    server = AzuriteServer().start()
    try:
        yield server
    finally:
        server.stop()


Aws = S3Harness  # the S3 harness under its old name (S3-only tests)


@pytest.fixture
def aws(moto_server, monkeypatch):
    moto_server.reset()
    for k, v in moto_server.client_env(REGION).items():
        monkeypatch.setenv(k, v)
    session = boto3.session.Session()
    s3 = session.client("s3")
    kms = session.client("kms")
    key_arn = kms.create_key(Description="backups")["KeyMetadata"]["Arn"]
    other = kms.create_key(Description="other")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=LOCKED_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION},
                     ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket=PLAIN_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=PLAIN_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return S3Harness(moto_server, s3, kms, key_arn, other)


@pytest.fixture
def azure(azurite_server):
    azurite_server.reset()
    harness = AzureHarness(azurite_server)
    # Azurite has no version-level immutability: both containers are plain (lambdas/README.md).
    harness.create(LOCKED_BUCKET, PLAIN_BUCKET)
    return harness


STORES = ("s3", "azure")


def pytest_generate_tests(metafunc):
    """Every test that uses `store` (directly or through `env` / `tel`) runs on both stores,
    except those marked `s3_only` (about PostgreSQL or AWS alone) and those that name theirs."""
    if "store" not in metafunc.fixturenames:
        return
    if any(m.args and "store" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")):
        return
    kinds = ["s3"] if metafunc.definition.get_closest_marker("s3_only") else list(STORES)
    metafunc.parametrize("store", kinds, indirect=True)


@pytest.fixture
def store(request):
    """The data-plane suite's object store: moto's S3, then Azurite's Blob Storage."""
    return request.getfixturevalue("aws" if request.param == "s3" else "azure")


@pytest.fixture
def env(pg, store):
    """The function's environment as the Pulumi components would set it."""
    return {
        "BACKUP_DATABASE": DATABASE,
        "BACKUP_BUCKET": LOCKED_BUCKET,
        "BACKUP_PART_SIZE_MB": "5",
        "BACKUP_COMPRESSION_THREADS": "2",
        "DB_DSN": pg.dsn(),
        # What the stack hands over (drplan.handover): prod's plan, no override.
        POLICY_ENV: BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json(),
        **store.env,
    }


@pytest.fixture
def tel(store):
    return Telemetry(logger=logging.getLogger("tests.lambdas"), metrics=None, audit_sink=store.audit.append)


@pytest.fixture
def actor():
    return Actor("tests", "cli")


@pytest.fixture
def scratch_dbs(pg):
    """A function: the verify_* databases left on the cluster (must always be none)."""

    def left() -> list[str]:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'verify\\_%'")]

    return left


@pytest.fixture
def pg_bin_dir(tmp_path, monkeypatch):
    """A PG_BIN of our own, to wrap a client tool (fault injection)."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        os.symlink(PG_BIN / tool, d / tool)
    monkeypatch.setenv("PG_BIN", str(d))
    return d


def unique() -> str:
    return uuid.uuid4().hex[:8]


def which_pg_dump() -> Path:
    return Path(shutil.which("pg_dump") or PG_BIN / "pg_dump")
