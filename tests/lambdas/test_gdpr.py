"""GDPR on backups against a real PostgreSQL 15, on moto's S3 and on Azurite's Blob Storage (the
whole module runs once per store): the erasure ledger survives a restore,
its re-application removes erased users again, and the export of one user from a backup holds
exactly that user's rows as of that backup. No mock of the data path.

One module-scoped world (a copy of the platform database, one backup, one erasure) keeps the
file fast; tests that change state work on their own restored copies.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest

from drplan.handover import BackupPolicy
from drplan.retention import RETENTION, Tier
from lambdas import gdpr as gdpr_cli
from lambdas.core import gdpr
from lambdas.core.audit import Actor
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, load_request
from lambdas.core.errors import DataPlaneError, InvalidRequest
from lambdas.core.pg import DbConn
from lambdas.core.telemetry import Telemetry
from lambdas.core.verify import load_manifest, restored

from .conftest import DATABASE, REGION
from .stores import AzureHarness, S3Harness

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
BACKUPS = "pouc-gdpr-backups"
LEDGER = "pouc-gdpr-ledger"
EXPORTS = "pouc-gdpr-exports"
TABLES = ("public.users", "public.posts", "public.comments", "public.media")

# Written independently of lambdas/core/gdpr.py: what "user U's own rows" means for this schema.
OWN_ROWS = {
    "public.users": "SELECT to_jsonb(t) FROM users t WHERE id = %(u)s ORDER BY id",
    "public.posts": "SELECT to_jsonb(t) FROM posts t WHERE user_id = %(u)s ORDER BY id",
    # ... except their comments on the posts of users erased since (X, Z): erasing those users
    # deletes their posts and, ON DELETE CASCADE, every comment on them; the export re-applies
    # the ledger to the restored copy first, as every restore does.
    "public.comments": "SELECT to_jsonb(t) FROM comments t WHERE user_id = %(u)s"
                       " AND post_id NOT IN (SELECT id FROM posts WHERE user_id = ANY(%(erased)s)) ORDER BY id",
    "public.media": "SELECT to_jsonb(t) FROM media t WHERE post_id IN (SELECT id FROM posts WHERE user_id = %(u)s)"
                    " ORDER BY id",
}
# The platform's deletion rules: a user's posts and comments, and a post's comments and media,
# go with them (the erasure is the database's own DELETE, so the schema says what goes).
CASCADES = """
ALTER TABLE posts DROP CONSTRAINT posts_user_id_fkey,
    ADD CONSTRAINT posts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE comments DROP CONSTRAINT comments_user_id_fkey,
    ADD CONSTRAINT comments_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE media DROP CONSTRAINT media_post_id_fkey,
    ADD CONSTRAINT media_post_id_fkey FOREIGN KEY (post_id) REFERENCES posts(id) ON DELETE CASCADE;
"""
# Everything that references user U at all (what an erasure must remove).
ANY_ROWS = {
    "public.users": "SELECT count(*) FROM users WHERE id = %(u)s",
    "public.posts": "SELECT count(*) FROM posts WHERE user_id = %(u)s",
    "public.comments": "SELECT count(*) FROM comments WHERE user_id = %(u)s"
                       " OR post_id IN (SELECT id FROM posts WHERE user_id = %(u)s)",
    "public.media": "SELECT count(*) FROM media WHERE post_id IN (SELECT id FROM posts WHERE user_id = %(u)s)",
}

PROD_POLICY = BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json()


def fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and md5 of every row's JSON in id order (the whole content)."""
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*), md5(coalesce(string_agg(to_jsonb(x)::text, '|' ORDER BY id), ''))"
                                f" FROM {t} x").fetchone() for t in TABLES}


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def query(dsn: str, q: str, **params):
    with psycopg.connect(dsn) as conn:
        return conn.execute(q, params).fetchall()


@dataclass
class World:
    pg: object
    h: S3Harness | AzureHarness  # the store, seen from outside the adapter
    live: str  # the live database's name
    env: dict[str, str]  # the functions' environment (as the components would set it)
    x: int  # the erased user
    z: int  # a second erased user
    y: int  # the exported user
    manifest_key: str
    y_at_backup: dict[str, list]  # Y's own rows, by direct query, when the backup was taken
    others_on_y_posts: int  # other users' comments on Y's posts (must not be exported)
    at_backup: dict  # fingerprint of the live database when the backup was taken
    live_after_erasure: dict
    erasure: dict  # record_erasure(..., apply=True) result on the live database
    erasure_z: dict = field(default_factory=dict)
    referencing: dict = field(default_factory=dict)  # rows referencing X or Z before the erasure (independent SQL)
    audit: list = field(default_factory=list)

    @property
    def key_id(self) -> str:
        return self.h.key_id

    def dsn(self, dbname: str | None = None) -> str:
        return self.pg.dsn(dbname or self.live)

    def tel(self) -> Telemetry:
        return Telemetry(logger=logging.getLogger("tests.gdpr"), metrics=None, audit_sink=self.audit.append)

    def scratch_dbs(self) -> list[str]:
        return [r[0] for r in query(self.pg.dsn(), "SELECT datname FROM pg_database"
                                    " WHERE datname LIKE 'gdpr\\_export%%' OR datname LIKE 'verify\\_%%'")]

    def deleted_live(self) -> dict[str, int]:
        """Rows the two live erasures deleted, per table."""
        return {t: self.erasure["deleted"][t] + self.erasure_z["deleted"][t] for t in TABLES}

    def actions(self, action: str) -> list[dict]:
        return [e for e in self.audit if e["action"] == action]


def _harness(kind: str, request, mp) -> S3Harness | AzureHarness:
    if kind == "azure":
        h = AzureHarness(request.getfixturevalue("azurite_server"))
        h.server.reset()
        h.create(BACKUPS, LEDGER, EXPORTS)  # Azurite: no immutability, all three are plain
        return h
    moto_server = request.getfixturevalue("moto_server")
    moto_server.reset()
    for k, v in moto_server.client_env(REGION).items():
        mp.setenv(k, v)
    session = boto3.session.Session()
    s3, kms = session.client("s3"), session.client("kms")
    key_arn = kms.create_key(Description="backups and ledger")["KeyMetadata"]["Arn"]
    for bucket in (BACKUPS, LEDGER):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION},
                         ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket=EXPORTS, CreateBucketConfiguration={"LocationConstraint": REGION})
    return S3Harness(moto_server, s3, kms, key_arn, key_arn)


@pytest.fixture(scope="module", params=["s3", "azure"])
def world(pg, request):
    live = f"gdpr_live_{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        h = _harness(request.param, request, mp)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {live} TEMPLATE {DATABASE}")
        with psycopg.connect(pg.dsn(live), autocommit=True) as conn:
            conn.execute(CASCADES)
        try:
            env = {"BACKUP_DATABASE": live, "BACKUP_BUCKET": BACKUPS, "BACKUP_PART_SIZE_MB": "5",
                   "BACKUP_COMPRESSION_THREADS": "2", "DB_DSN": pg.dsn(), **h.env,
                   "GDPR_LEDGER_BUCKET": LEDGER, "GDPR_LEDGER_KMS_KEY_ID": h.key_id,
                   "BACKUP_POLICY": PROD_POLICY}
            dsn = pg.dsn(live)
            # X and Y: the two users with the most media; X also comments on others' posts and
            # others comment on X's posts, so every path of the erasure is exercised.
            x, y, z = [r[0] for r in query(dsn, "SELECT p.user_id FROM posts p JOIN media m ON m.post_id = p.id"
                                                 " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 3")]
            y_rows = {t: [r[0] for r in query(dsn, q, u=y, erased=[x, z])] for t, q in OWN_ROWS.items()}
            others = query(dsn, "SELECT count(*) FROM comments WHERE user_id <> %(u)s AND post_id IN"
                                " (SELECT id FROM posts WHERE user_id = %(u)s)", u=y)[0][0]
            w = World(pg, h, live, env, x, z, y, "", y_rows, others, fingerprint(dsn), {}, {})
            result = run_backup(load_request(BackupRequest, {}, env), gdpr_cli._s3(BACKUPS, env),
                                DbConn.resolve(dsn=pg.dsn()), actor=Actor("tests", "cli"), telemetry=w.tel())
            w.manifest_key = result.manifest_key
            w.referencing = {t: query(dsn, q.replace("= %(u)s", "= ANY(%(u)s)"), u=[x, z])[0][0]
                             for t, q in ANY_ROWS.items()}
            # The user asks to be forgotten: recorded in the ledger, deleted in the live database.
            w.erasure = gdpr_cli.record({"user_id": x, "apply": True, "reference": "DPO-2026-0042"}, env,
                                        actor=Actor("dpo@example.org", "cli"), telemetry=w.tel())
            w.erasure_z = gdpr_cli.record({"user_id": z, "apply": True}, env, actor=Actor("app", "lambda"),
                                          telemetry=w.tel())
            w.live_after_erasure = fingerprint(dsn)
            # Y edits their profile after the backup: the export must show the backup's state.
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("UPDATE users SET bio = 'changed after the backup' WHERE id = %s", (y,))
            yield w
        finally:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {live} WITH (FORCE)")


def _restored_copy(w: World):
    """The backup restored into a new database by the verify path (the runbook's restore)."""
    store = gdpr_cli._s3(BACKUPS, w.env)
    return restored(store, DbConn.resolve(dsn=w.pg.dsn()), load_manifest(store, w.manifest_key),
                    name_prefix="gdpr_restore")


def test_world_preconditions(world):
    x = world.x
    before = query(world.pg.dsn(DATABASE), "SELECT count(*) FROM comments WHERE user_id <> %(u)s AND post_id IN"
                   " (SELECT id FROM posts WHERE user_id = %(u)s)", u=x)[0][0]
    assert before > 0, "someone commented on X's posts"
    assert query(world.pg.dsn(DATABASE), ANY_ROWS["public.media"], u=x)[0][0] > 0
    assert world.others_on_y_posts > 0
    assert all(world.y_at_backup[t] for t in TABLES), "Y has rows in every table"


def test_erasure_in_live_database_and_ledger_entry(world):
    x, h = world.x, world.h
    for t, q in ANY_ROWS.items():
        for u in (x, world.z):
            assert query(world.dsn(), q, u=u)[0][0] == 0, f"{t} still references {u} in the live database"
    assert world.erasure["status"] == "recorded"
    deleted = world.erasure["deleted"]
    assert deleted["public.users"] == 1 and deleted["public.posts"] > 0 and deleted["public.media"] > 0
    # exactly the rows that referenced X or Z went (counted independently), nothing else
    assert world.deleted_live() == world.referencing
    for t in TABLES:
        assert world.live_after_erasure[t][0] == world.at_backup[t][0] - world.referencing[t]

    key = world.erasure["ledger_key"]
    assert key == f"gdpr/erasures/{world.live}/{x}.json"
    assert set(h.keys(LEDGER)) == {key, world.erasure_z["ledger_key"]}
    assert h.encryption(LEDGER, key) == (world.key_id if h.reports_encryption else None)
    assert h.tags(LEDGER, key) == gdpr.LEDGER_TAG
    mode, until = h.lock(LEDGER, key)
    if h.locks:
        assert mode == "COMPLIANCE"
        keep = RETENTION[Tier.PROD].longest.delta + gdpr.LEDGER_MARGIN
        assert abs(until - (datetime.now(UTC) + keep)) < timedelta(minutes=10)
    else:  # Azurite: no immutability; object_lock=auto records the entry unlocked (lambdas/README.md)
        assert (mode, until, world.erasure["retain_until"]) == (None, None, None)
    entry = json.loads(h.read(LEDGER, key))
    assert entry["user_id"] == str(x) and entry["database"] == world.live
    assert entry["recorded_by"] == {"principal": "dpo@example.org", "via": "cli"}
    assert entry["reference"] == "DPO-2026-0042"
    assert set(entry) == {"format", "database", "user_id", "erased_at", "recorded_at", "recorded_by", "reference"}
    if h.locks:  # append-only: a locked entry cannot be deleted
        version = h.s3.head_object(Bucket=LEDGER, Key=key)["VersionId"]
        with pytest.raises(Exception, match=r"AccessDenied|locked|WORM|retention"):
            h.s3.delete_object(Bucket=LEDGER, Key=key, VersionId=version)
    assert [e["outcome"] for e in world.actions("gdpr.erasure.record")] == ["success", "success"]


def test_recording_again_is_idempotent(world):
    key = world.erasure["ledger_key"]
    again = gdpr_cli.record({"user_id": str(world.x), "reference": "duplicate"}, world.env,
                            actor=Actor("someone-else", "cli"), telemetry=world.tel())
    assert again["status"] == "already_recorded"
    assert again["entry"] == world.erasure["entry"]  # the first record stands, unchanged
    if world.h.versioned:
        assert len(world.h.s3.list_object_versions(Bucket=LEDGER, Prefix=key).get("Versions", [])) == 1
    # the conditional create refused the second write: the stored entry is the first one
    assert json.loads(world.h.read(LEDGER, key)) == world.erasure["entry"]
    assert world.actions("gdpr.erasure.record")[-1]["outcome"] == "skipped"


def test_restore_then_reapply_removes_erased_users_and_is_idempotent(world):
    x = world.x
    with _restored_copy(world) as (target, _seconds):
        restored_db = target.dbname
        dsn = world.dsn(restored_db)
        assert query(dsn, ANY_ROWS["public.users"], u=x)[0][0] == 1, "the restore brought X back"
        assert counts(dsn) == {t: n for t, (n, _md5) in world.at_backup.items()}

        # The runbook's command, as an operator runs it after the restore.
        env = {**os.environ, **world.env, "DB_DSN": world.pg.dsn(), "AUDIT_ACTOR": "oncall@example.org"}
        proc = subprocess.run([sys.executable, "-m", "lambdas.gdpr", "reapply", "--database", world.live,
                               "--target-database", restored_db], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["status"] == "applied" and result["ledger_entries"] == 2
        assert result["users_deleted"] == 2
        assert result["deleted"] == world.deleted_live()  # the same rows as the two live erasures
        for t, q in ANY_ROWS.items():
            for u in (x, world.z):
                assert query(dsn, q, u=u)[0][0] == 0, f"{t} still references {u} after the re-application"
        # everyone else intact: the restored copy now equals the live database after the erasure
        assert fingerprint(dsn) == world.live_after_erasure

        second = gdpr_cli.reapply({"database": world.live, "target_database": restored_db}, world.env,
                                  actor=Actor("tests", "cli"), telemetry=world.tel())
        assert second["rows_deleted"] == 0 and second["ledger_entries"] == 2
        assert counts(dsn) == {t: n for t, (n, _md5) in world.live_after_erasure.items()}
        event = world.actions("gdpr.erasure.reapply")[-1]
        assert event["outcome"] == "success" and event["resource"]["target_database"] == restored_db
        assert event["details"]["rows_deleted"] == 0


def test_reapply_on_the_live_database_is_a_no_op(world):
    res = gdpr_cli.reapply({}, world.env, actor=Actor("tests", "cli"), telemetry=world.tel())
    assert res["rows_deleted"] == 0 and res["ledger_entries"] == 2


def test_export_one_user_from_the_backup(world, tmp_path):
    out = tmp_path / "y.json"
    code = _cli(world, ["export", "--user-id", str(world.y), "--manifest-key", world.manifest_key,
                        "--output", str(out)])
    assert code == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(out.read_text())
    assert doc["user_id"] == str(world.y) and doc["found"] is True
    assert doc["backup"]["manifest_key"] == world.manifest_key
    # exactly Y's rows as of the backup: equal to the direct query taken when the backup was made
    assert doc["tables"] == world.y_at_backup
    assert doc["tables"]["public.users"][0]["bio"] != "changed after the backup"
    assert doc["row_counts"] == {t: len(rows) for t, rows in world.y_at_backup.items()}
    # nobody else's: every user reference in the export is Y (other people's comments on Y's posts stay out)
    y_posts = {p["id"] for p in doc["tables"]["public.posts"]}
    assert all(r["user_id"] == world.y for t in ("public.posts", "public.comments") for r in doc["tables"][t])
    assert all(m["post_id"] in y_posts for m in doc["tables"]["public.media"])
    assert world.others_on_y_posts > 0
    assert world.scratch_dbs() == []
    event = world.actions("gdpr.export")[-1]
    assert event["outcome"] == "success" and event["resource"]["user_id"] == str(world.y)
    assert event["resource"]["manifest_key"] == world.manifest_key


def test_export_via_lambda_handler_writes_an_encrypted_object(world, monkeypatch):
    for k, v in {**world.env, "GDPR_EXPORT_BUCKET": EXPORTS, "GDPR_EXPORT_KMS_KEY_ID": world.key_id}.items():
        monkeypatch.setenv(k, v)
    # The handler's process-wide telemetry, with the test's audit sink (the default powertools
    # loggers would bind to this test's captured stdout for the rest of the session).
    monkeypatch.setattr(gdpr_cli, "_telemetry", world.tel())
    ctx = type("Ctx", (), {"invoked_function_arn": "arn:aws:lambda:eu-west-3:123456789012:function:gdpr-export",
                           "aws_request_id": "req-1"})()
    res = gdpr_cli.export_handler({"user_id": world.y}, ctx)  # newest backup
    assert res["status"] == "exported" and "export" not in res
    assert world.h.encryption(EXPORTS, res["export_key"]) == (world.key_id if world.h.reports_encryption else None)
    doc = json.loads(world.h.read(EXPORTS, res["export_key"]))
    assert doc["tables"] == world.y_at_backup and doc["backup"]["manifest_key"] == world.manifest_key
    assert world.scratch_dbs() == []
    event = world.actions("gdpr.export")[-1]
    assert event["actor"] == {"principal": ctx.invoked_function_arn, "via": "lambda"}


def test_export_of_an_erased_user_is_refused_before_any_restore(world, caplog):
    with pytest.raises(DataPlaneError) as e:
        gdpr_cli.export({"user_id": world.x}, world.env, actor=Actor("tests", "cli"), telemetry=world.tel())
    assert e.value.cause == "user_erased" and e.value.details["field"] == "user_id"
    assert "scratch database dropped" not in caplog.text
    assert world.actions("gdpr.export")[-1]["outcome"] == "failure"
    assert world.scratch_dbs() == []


def test_export_failing_midway_drops_the_scratch_database(world, caplog):
    caplog.set_level(logging.INFO, logger="tests.gdpr")
    # a well-formed id of the wrong type for users.id (bigint): found out after the restore
    with pytest.raises(DataPlaneError) as e:
        gdpr_cli.export({"user_id": "not-a-number"}, world.env, actor=Actor("tests", "cli"), telemetry=world.tel())
    assert e.value.cause == "invalid_user_id" and "user_id" in str(e.value) and "bigint" in str(e.value)
    assert "scratch database dropped" in caplog.text
    assert world.scratch_dbs() == []
    assert world.actions("gdpr.export")[-1]["reason"] == "invalid_user_id"


def test_export_of_a_corrupted_backup_fails_and_drops_the_scratch_database(world, caplog):
    caplog.set_level(logging.INFO, logger="tests.gdpr")
    h = world.h
    m = load_manifest(gdpr_cli._s3(BACKUPS, world.env), world.manifest_key)
    data = bytearray(h.read(BACKUPS, m.object_key, m.version_id))
    data[len(data) * 2 // 3] ^= 0xFF  # late in the stream: the restore is under way when it is read
    slot = m.slot.strftime("%Y-%m-%dT%H%MZ")  # a backup of the same layout under another prefix
    bad_key = f"corrupt/{world.live}/data/{slot}/{m.run_id}.pgdump.zst"
    bad = m.model_copy(update={"object_key": bad_key, "version_id": h.overwrite(BACKUPS, bad_key, bytes(data), True)})
    bad_manifest = f"corrupt/{world.live}/manifests/{slot}.json"
    h.overwrite(BACKUPS, bad_manifest, bad.to_bytes(), True)
    with pytest.raises(DataPlaneError) as e:
        gdpr_cli.export({"user_id": world.y, "prefix": "corrupt", "manifest_key": bad_manifest}, world.env,
                        actor=Actor("tests", "cli"), telemetry=world.tel())
    assert e.value.cause in ("checksum_mismatch", "decompression_failed", "restore_failed")
    assert "scratch database dropped" in caplog.text
    assert world.scratch_dbs() == []
    assert world.actions("gdpr.export")[-1]["outcome"] == "failure"


def _cli(world: World, argv: list[str]) -> int:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in world.env.items():
            mp.setenv(k, v)
        mp.setattr(gdpr_cli, "Telemetry", type("T", (), {"default": staticmethod(world.tel)}))
        return gdpr_cli.main(argv)


@pytest.mark.parametrize(("argv", "field"), [
    (["export", "--user-id", "1; DROP TABLE users"], "user_id"),
    (["export", "--user-id", ""], "user_id"),
    (["export", "--user-id", "7", "--manifest-key", "postgres/otherdb/manifests/2026-01-01T0200Z.json"],
     "manifest_key"),
    (["export", "--user-id", "7", "--ledger-bucket", BACKUPS], "ledger_bucket"),
    (["record-erasure", "--user-id", "7", "--erased-at", "yesterday"], "erased_at"),
    (["reapply", "--users-table", "users; --"], "users_table"),
])
def test_invalid_input_names_the_field_and_does_nothing(world, capsys, argv, field):
    assert _cli(world, argv) == 2
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["status"] == "invalid"
    assert field in [p["field"] for p in out["details"]["problems"]]
    assert world.scratch_dbs() == []


def test_request_models_reject_bad_types():
    with pytest.raises(InvalidRequest, match="user_id"):
        load_request(gdpr.ExportRequest, {"user_id": True, "database": "db", "bucket": "b-bucket",
                                          "ledger_bucket": "l-bucket"}, {})
    req = load_request(gdpr.ExportRequest, {"user_id": 42, "database": "db", "bucket": "b-bucket",
                                            "ledger_bucket": "l-bucket"}, {})
    assert req.user_id == "42"


FK_SCHEMA = """
CREATE TABLE accounts (uid uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE notes (id int PRIMARY KEY, owner uuid NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE, body text);
CREATE TABLE attachments (id int PRIMARY KEY, note_id int REFERENCES notes(id) ON DELETE CASCADE, blob bytea);
CREATE TABLE likes (id int PRIMARY KEY, note_id int NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
                    liker uuid NOT NULL REFERENCES accounts(uid) ON DELETE CASCADE);
CREATE TABLE unrelated (id int PRIMARY KEY, x text);
INSERT INTO accounts VALUES ('{a}', 'A'), ('{b}', 'B');
INSERT INTO notes VALUES (1, '{a}', 'a1'), (2, '{b}', 'b2');
INSERT INTO attachments VALUES (10, 1, '\\x01'), (20, 2, '\\x02');
INSERT INTO likes VALUES (100, 1, '{b}'), (200, 2, '{a}');  -- B likes A's note, A likes B's note
INSERT INTO unrelated VALUES (1, 'kept');
"""
A = "00000000-0000-0000-0000-00000000000a"
B = "00000000-0000-0000-0000-00000000000b"


@pytest.fixture
def fk_db(pg):
    name = f"gdpr_fk_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
            conn.execute(FK_SCHEMA.format(a=A, b=B))
        yield DbConn.resolve(dsn=pg.dsn(name))
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_ownership_follows_the_foreign_keys_of_any_schema(fk_db):
    """Another schema (uuid keys, other names, a table the code never heard of): found by its FKs."""
    with fk_db.connect(autocommit=True) as conn:
        own = gdpr.ownership(conn, "public.accounts")
        assert own.key == "uid" and own.key_type == "uuid"
        assert own.order[0] == "public.accounts" and "public.unrelated" not in own.order
        assert own.order.index("public.notes") < own.order.index("public.attachments")
        rows = gdpr.user_rows(conn, "public.accounts", A)
    assert [r["uid"] for r in rows["public.accounts"]] == [A]
    assert [r["id"] for r in rows["public.notes"]] == [1]
    assert [r["id"] for r in rows["public.attachments"]] == [10]
    assert [r["id"] for r in rows["public.likes"]] == [200]  # A's own like, not B's like on A's note

    deleted = gdpr.apply_erasures(fk_db, "public.accounts", [A])
    assert deleted == {"public.accounts": 1, "public.notes": 1, "public.attachments": 1, "public.likes": 2}
    assert gdpr.apply_erasures(fk_db, "public.accounts", [A]) == dict.fromkeys(deleted, 0)
    with fk_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM unrelated").fetchone()[0] == 1
        assert conn.execute("SELECT array_agg(id ORDER BY id) FROM attachments").fetchone()[0] == [20]

    with pytest.raises(gdpr.GdprError) as e:
        gdpr.apply_erasures(fk_db, "public.accounts", ["42"])
    assert e.value.cause == "invalid_user_id" and "uuid" in str(e.value)


def test_unsupported_users_table_fails_loudly_and_deletes_nothing(fk_db):
    with pytest.raises(gdpr.GdprError) as e:
        gdpr.apply_erasures(fk_db, "public.members", [A])
    assert e.value.cause == "users_table_missing"
    with fk_db.connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE unrelated ADD COLUMN y int NOT NULL DEFAULT 0, DROP CONSTRAINT unrelated_pkey,"
                     " ADD PRIMARY KEY (id, y)")
    with pytest.raises(gdpr.GdprError) as e:
        gdpr.apply_erasures(fk_db, "public.unrelated", ["1"])
    assert e.value.cause == "unsupported_schema" and "one-column primary key" in str(e.value)
    with fk_db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM unrelated").fetchone()[0] == 1


def _documented_commands() -> list[list[str]]:
    import shlex

    text = (REPO / "docs" / "gdpr.md").read_text().replace("\\\n", " ")
    return [shlex.split(line, comments=True)[3:] for line in text.splitlines()
            if line.startswith("python -m lambdas.gdpr ")]


def test_the_documented_commands_are_valid():
    """Every `python -m lambdas.gdpr ...` line of docs/gdpr.md parses and validates (no I/O)."""
    commands = _documented_commands()
    assert {c[0] for c in commands} == {"record-erasure", "reapply", "export"}
    models = {"record-erasure": gdpr.RecordErasureRequest, "reapply": gdpr.ReapplyRequest,
              "export": gdpr.ExportRequest}
    env = {"BACKUP_BUCKET": "pouc-backups", "GDPR_LEDGER_BUCKET": "pouc-gdpr-ledger",
           "GDPR_LEDGER_KMS_KEY_ID": "alias/pouc-ledger", "BACKUP_POLICY": PROD_POLICY}
    for argv in commands:
        event = gdpr_cli._event(gdpr_cli._parser().parse_args(argv))
        load_request(models[argv[0]], event, env)
