"""Erasure and export decide ownership as PostgreSQL's own DELETE does (issue 16, points 1-3).

A schema the project did not write: several paths to users, every delete action, a
self-referencing table (comment replies). The reference is always the database itself:
`DELETE FROM users WHERE id = 7` on a copy made with CREATE DATABASE ... TEMPLATE, compared
row for row with what `record-erasure --apply`, `reapply` after a real backup and restore, and
`export` do. Real PostgreSQL 15, moto's S3/KMS server.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

import psycopg
import pytest

from lambdas import gdpr as gdpr_cli
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, load_request
from lambdas.core.errors import DataPlaneError
from lambdas.core.pg import DbConn
from lambdas.core.verify import load_manifest, restored

from .conftest import LOCKED_BUCKET, REGION

# About PostgreSQL (the snapshot session, what the dump holds, who owns a row): the S3 store is enough.
pytestmark = [pytest.mark.postgres, pytest.mark.s3_only]

LEDGER = "pouc-ownership-ledger"

SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE posts (id int PRIMARY KEY,
                    author_id int NOT NULL REFERENCES users ON DELETE CASCADE,
                    editor_id int REFERENCES users ON DELETE SET NULL,
                    body text NOT NULL);
CREATE TABLE comments (id int PRIMARY KEY,
                       post_id int NOT NULL REFERENCES posts ON DELETE CASCADE,
                       user_id int NOT NULL REFERENCES users ON DELETE CASCADE,
                       parent_id int REFERENCES comments ON DELETE CASCADE,
                       body text NOT NULL);
CREATE TABLE likes (post_id int REFERENCES posts ON DELETE CASCADE,
                    user_id int REFERENCES users ON DELETE CASCADE, PRIMARY KEY (post_id, user_id));
CREATE TABLE reviews (id int PRIMARY KEY,
                      post_id int NOT NULL REFERENCES posts ON DELETE CASCADE,
                      reviewer_id int NOT NULL DEFAULT 0 REFERENCES users ON DELETE SET DEFAULT,
                      verdict text NOT NULL);
CREATE TABLE messages (id int PRIMARY KEY,
                       sender_id int NOT NULL REFERENCES users ON DELETE CASCADE,
                       recipient_id int NOT NULL REFERENCES users ON DELETE CASCADE,
                       body text NOT NULL);
INSERT INTO users VALUES (0, 'deleted user'), (3, 'Three'), (5, 'Five'), (7, 'Seven'), (9, 'Nine');
INSERT INTO posts VALUES (1, 7, 3, 'by 7, edited by 3'), (2, 3, 7, 'by 3, edited by 7'),
                         (3, 5, 7, 'by 5, edited by 7'), (4, 7, NULL, 'by 7'), (5, 3, NULL, 'by 3'),
                         (6, 9, 5, 'by 9, edited by 5');
INSERT INTO comments VALUES (10, 1, 3, NULL, '3 on 7''s post'), (11, 1, 5, NULL, '5 on 7''s post'),
                            (12, 1, 7, 11, '7 replies to 5'), (13, 3, 5, NULL, '5 on own post'),
                            (14, 3, 7, 13, '7 replies to 5'), (15, 3, 3, 14, '3 replies to 7'),
                            (16, 5, 3, NULL, '3 on own post'), (17, 5, 9, 16, '9 replies to 3'),
                            (18, 6, 3, NULL, '3 on 9''s post');
INSERT INTO likes VALUES (1, 3), (1, 5), (3, 7), (5, 7), (2, 5), (6, 3);
INSERT INTO reviews VALUES (1, 3, 7, 'ok'), (2, 1, 5, 'meh'), (3, 5, 3, 'good'), (4, 2, 9, 'fine');
INSERT INTO messages VALUES (1, 3, 7, '3 to 7'), (2, 7, 5, '7 to 5'), (3, 3, 5, '3 to 5'), (4, 9, 3, '9 to 3');
"""
TABLES = ("users", "posts", "comments", "likes", "reviews", "messages")


def rows(dsn: str) -> dict[str, list[str]]:
    """Every row of every table, as JSON text, in a stable order: the whole content."""
    with psycopg.connect(dsn) as conn:
        return {t: [r[0] for r in conn.execute(f"SELECT to_jsonb(x)::text AS j FROM {t} x ORDER BY 1")]
                for t in TABLES}


class Databases:
    def __init__(self, pg):
        self.pg, self.names = pg, []

    def create(self, template: str | None = None, sql: str | None = None) -> str:
        name = f"own_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        self.names.append(name)
        if sql:
            with psycopg.connect(self.pg.dsn(name), autocommit=True) as conn:
                conn.execute(sql)
        return name

    def drop_all(self):
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            for name in self.names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def dbs(pg):
    d = Databases(pg)
    try:
        yield d
    finally:
        d.drop_all()


@pytest.fixture
def gdpr_env(pg, aws, env):
    aws.s3.create_bucket(Bucket=LEDGER, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.s3.put_bucket_versioning(Bucket=LEDGER, VersioningConfiguration={"Status": "Enabled"})
    return {**env, "GDPR_LEDGER_BUCKET": LEDGER, "GDPR_LEDGER_KMS_KEY_ID": aws.key_arn}


def the_databases_own_delete(dbs, source: str, user: int) -> str:
    copy = dbs.create(template=source)
    with psycopg.connect(dbs.pg.dsn(copy), autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (user,))
    return copy


@contextmanager
def backed_up_and_restored(pg, aws, env, tel, actor, database: str):
    req = load_request(BackupRequest, {"database": database}, env)
    result = run_backup(req, aws.store(LOCKED_BUCKET), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    manifest = load_manifest(aws.store(LOCKED_BUCKET), result.manifest_key)
    with restored(aws.store(LOCKED_BUCKET), DbConn.resolve(dsn=pg.dsn()), manifest, name_prefix="own_restore") as (
            target, _seconds):
        yield target.dbname, result.manifest_key


def test_erasure_and_reapply_give_exactly_the_databases_own_delete(pg, aws, gdpr_env, tel, actor, dbs):
    source = dbs.create(sql=SCHEMA)
    before = rows(pg.dsn(source))
    reference = rows(pg.dsn(the_databases_own_delete(dbs, source, 7)))
    # what the database itself does: 7's own rows go, 7's edits and reviews stay without 7, and
    # the replies under 7's comments go with them (the self-reference's own CASCADE)
    with psycopg.connect(pg.dsn(dbs.names[-1])) as conn:
        assert conn.execute("SELECT id, editor_id FROM posts ORDER BY id").fetchall() == [
            (2, None), (3, None), (5, None), (6, 5)]
        assert conn.execute("SELECT array_agg(id ORDER BY id) FROM comments").fetchone()[0] == [13, 16, 17, 18]
        assert conn.execute("SELECT reviewer_id FROM reviews WHERE id = 1").fetchone()[0] == 0

    with backed_up_and_restored(pg, aws, gdpr_env, tel, actor, source) as (restored_db, _mkey):
        live = dbs.create(template=source)
        erased = gdpr_cli.record({"database": source, "target_database": live, "user_id": 7, "apply": True},
                                 gdpr_env, actor=actor, telemetry=tel)
        assert erased["status"] == "recorded"
        assert rows(pg.dsn(live)) == reference  # row for row
        assert erased["deleted"] == {f"public.{t}": len(before[t]) - len(reference[t]) for t in TABLES
                                     if f"public.{t}" in erased["deleted"]}
        assert erased["updated"] == {"public.posts": 2, "public.reviews": 1}  # SET NULL, SET DEFAULT

        # the runbook's step after a restore: the restored copy ends up exactly the same
        applied = gdpr_cli.reapply({"database": source, "target_database": restored_db}, gdpr_env, actor=actor,
                                   telemetry=tel)
        assert applied["users_deleted"] == 1 and applied["deleted"] == erased["deleted"]
        assert rows(pg.dsn(restored_db)) == reference
        again = gdpr_cli.reapply({"database": source, "target_database": restored_db}, gdpr_env, actor=actor,
                                 telemetry=tel)
        assert again["rows_deleted"] == 0 and again["updated"] == {}


def test_export_holds_only_the_users_own_rows_and_nothing_of_an_erased_user(pg, aws, gdpr_env, tel, actor, dbs):
    source = dbs.create(sql=SCHEMA)
    with backed_up_and_restored(pg, aws, gdpr_env, tel, actor, source) as (_restored, mkey):
        gdpr_cli.record({"database": source, "user_id": 7}, gdpr_env, actor=actor, telemetry=tel)  # 7 is erased
    result = gdpr_cli.export({"database": source, "user_id": 3, "manifest_key": mkey}, gdpr_env, actor=actor,
                             telemetry=tel)
    tables = result["export"]["tables"]
    # Independently: on the database's own deletion of 7, the rows that 3's own DELETE would
    # remove, minus other users' rows that only hang off 3's (9's reply, 5's like of 3's post).
    after_7 = the_databases_own_delete(dbs, source, 7)
    with psycopg.connect(pg.dsn(after_7)) as conn:
        def q(sql: str) -> list[dict]:
            return [r[0] for r in conn.execute(sql)]

        expected = {
            "public.users": q("SELECT to_jsonb(t) FROM users t WHERE id = 3"),
            "public.posts": q("SELECT to_jsonb(t) FROM posts t WHERE author_id = 3 ORDER BY id"),
            "public.comments": q("SELECT to_jsonb(t) FROM comments t WHERE user_id = 3 ORDER BY id"),
            "public.likes": q("SELECT to_jsonb(t) FROM likes t WHERE user_id = 3 ORDER BY post_id, user_id"),
            "public.reviews": q("SELECT to_jsonb(t) FROM reviews t WHERE post_id IN"
                                " (SELECT id FROM posts WHERE author_id = 3) ORDER BY id"),
            "public.messages": q("SELECT to_jsonb(t) FROM messages t WHERE 3 IN (sender_id, recipient_id)"
                                 " ORDER BY id"),
        }
    assert tables == expected
    assert [p["id"] for p in tables["public.posts"]] == [2, 5]  # not post 1: 7 wrote it, 3 only edited it
    assert tables["public.posts"][0]["editor_id"] is None  # 7's id is not in the export either
    assert [m["id"] for m in tables["public.messages"]] == [3, 4]  # not the message to 7
    people = ("id", "author_id", "editor_id", "user_id", "reviewer_id", "sender_id", "recipient_id")
    assert all(r.get(k) != 7 for t, rs in tables.items() if t != "public.posts" for r in rs for k in people[1:])
    assert all(r["author_id"] != 7 and r["editor_id"] != 7 for r in tables["public.posts"])


@pytest.mark.parametrize("action", ["RESTRICT", "NO ACTION"])
def test_a_restricting_key_refuses_before_anything_is_recorded(pg, aws, gdpr_env, tel, actor, dbs, action, capsys):
    source = dbs.create(sql=SCHEMA + f"""
        CREATE TABLE invoices (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users ON DELETE {action});
        INSERT INTO invoices VALUES (1, 7), (2, 3);""")
    before = rows(pg.dsn(source))
    with pytest.raises(DataPlaneError) as e:
        gdpr_cli.record({"database": source, "user_id": 7, "apply": True}, gdpr_env, actor=actor, telemetry=tel)
    assert e.value.cause == "erasure_restricted"
    assert e.value.details["table"] == "public.invoices" and e.value.details["on_delete"] == action
    assert "invoices.user_id" in str(e.value) and "Nothing was recorded" in str(e.value)
    assert aws.keys(LEDGER) == [], "no ledger entry for an erasure the database refused"
    assert rows(pg.dsn(source)) == before
    assert aws.audit[-1]["outcome"] == "failure" and aws.audit[-1]["reason"] == "erasure_restricted"

    # the command line: the documented JSON line with the cause, exit 1
    with pytest.MonkeyPatch.context() as mp:
        for k, v in gdpr_env.items():
            mp.setenv(k, v)
        code = gdpr_cli.main(["record-erasure", "--database", source, "--user-id", "7", "--apply"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (code, out["status"], out["cause"]) == (1, "failed", "erasure_restricted")
    assert aws.keys(LEDGER) == []


def test_a_set_null_on_a_not_null_column_refuses_before_anything_is_recorded(pg, aws, gdpr_env, tel, actor, dbs):
    source = dbs.create(sql=SCHEMA + """
        CREATE TABLE badges (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users ON DELETE SET NULL);
        INSERT INTO badges VALUES (1, 7);""")
    with pytest.raises(DataPlaneError) as e:
        gdpr_cli.record({"database": source, "user_id": 7, "apply": True}, gdpr_env, actor=actor, telemetry=tel)
    assert e.value.cause == "erasure_refused" and "badges" in str(e.value)
    assert aws.keys(LEDGER) == []
    with psycopg.connect(pg.dsn(source)) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE id = 7").fetchone()[0] == 1
