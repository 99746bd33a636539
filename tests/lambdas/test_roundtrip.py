"""Backup -> verify on a real PostgreSQL 15, on moto's S3 (KMS, Secrets Manager) and on Azurite's Blob Storage."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from drplan import layout
from drplan.handover import BackupPolicy
from drplan.retention import RETENTION, GfsClass, Tier, gfs_class
from drplan.schedules import schedule_slot
from lambdas import service
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.pg import DbConn
from lambdas.core.verify import run_verify

from .conftest import DATABASE, LOCKED_BUCKET, PLAIN_BUCKET

pytestmark = pytest.mark.postgres

# `at` must lie within its generation's retention and not in the future (the backup refuses
# otherwise): the tests' logical times are relative to today.
TODAY = datetime.now(UTC).date()
# the latest 1st of a month that is not a 1st of January (that one is yearly)
LAST_FIRST_OF_MONTH = TODAY.replace(day=1) if TODAY.month > 1 else date(TODAY.year - 1, 12, 1)


def _day_at(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00Z"


def _source_value(pg, query: str):
    with psycopg.connect(pg.dsn(DATABASE)) as conn:
        return conn.execute(query).fetchone()[0]


CONTENT = {
    "posts_md5": "SELECT md5(string_agg(id || ':' || title || body || array_to_string(tags, ','), '|' ORDER BY id))"
                 " FROM posts",
    "media_md5": "SELECT md5(string_agg(encode(data, 'hex'), '' ORDER BY id)) FROM media",
    "comments_md5": "SELECT md5(string_agg(id || body || coalesce(meta::text, '-'), '|' ORDER BY id)) FROM comments",
}


def test_backup_then_verify_round_trip(pg, store, env, tel, actor, scratch_dbs):
    now = datetime.now(UTC)
    result = run_backup(load_request(BackupRequest, {}, env), store.store(), DbConn.resolve(dsn=pg.dsn()),
                        actor=actor, telemetry=tel)
    assert result.status == "created"
    m = result.manifest
    slot = schedule_slot(now)
    assert m["slot"] == slot.isoformat().replace("+00:00", "Z")
    assert m["gfs_class"] == gfs_class(slot.date(), RETENTION[Tier.PROD]).value
    expected_counts = {f"public.{t}": _source_value(pg, f"SELECT count(*) FROM {t}")
                       for t in ("users", "posts", "comments", "media")}
    assert m["row_counts"] == expected_counts
    assert m["raw_bytes"] > 10 * (1 << 20)
    assert 0 < m["stored_bytes"] < m["raw_bytes"]
    assert m["server_version"].startswith("PostgreSQL 15")
    assert "15." in m["pg_dump_version"]

    # the object as stored: encrypted with the key, tagged with its generation, locked
    assert len(store.read(LOCKED_BUCKET, m["object_key"], m["version_id"])) == m["stored_bytes"]
    assert (m["version_id"] is not None) == store.versioned  # Azurite: no blob versioning
    assert m["encryption_key"] == store.key_id
    assert store.encryption(LOCKED_BUCKET, m["object_key"], m["version_id"]) == (
        store.key_id if store.reports_encryption else None)  # Azurite does not report the scope
    mode, until = store.lock(LOCKED_BUCKET, m["object_key"], m["version_id"])
    if store.locks:
        assert mode == "COMPLIANCE" and m["lock_mode"] == "COMPLIANCE"
        keep = RETENTION[Tier.PROD].for_class(GfsClass(m["gfs_class"])).delta
        assert abs(until - (now + keep)) < timedelta(minutes=5)
    else:  # Azurite: no immutability on the container, so object_lock=auto writes unlocked
        assert (mode, until, m["lock_mode"], m["retain_until"]) == (None, None, None, None)
    assert store.tags(LOCKED_BUCKET, m["object_key"], m["version_id"])[layout.GFS_TAG_KEY] == m["gfs_class"]
    # the manifest is the last write and is itself tagged and locked like its backup
    assert store.tags(LOCKED_BUCKET, result.manifest_key)[layout.GFS_TAG_KEY] == m["gfs_class"]
    assert store.lock(LOCKED_BUCKET, result.manifest_key)[0] == ("COMPLIANCE" if store.locks else None)
    if store.reports_encryption:
        assert store.encryption(LOCKED_BUCKET, result.manifest_key) == store.key_id
    assert store.open_uploads() == []

    probes = [{"name": k, "sql": q, "equals": _source_value(pg, q)} for k, q in CONTENT.items()]
    probes.append({"name": "posts", "sql": "SELECT count(*) FROM posts", "min": 1})
    vreq = load_request(VerifyRequest, {"probes": probes}, env)
    v = run_verify(vreq, store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert v.status == "passed"
    # what proved the manifest the backup's own: its versions (S3); nothing on Azurite (lambdas/README.md)
    assert v.tamper_evidence == ("versions" if store.versioned else "none")
    assert v.manifest_key == result.manifest_key
    assert v.row_counts == expected_counts
    assert v.probes["posts"] == expected_counts["public.posts"]
    assert v.restore_seconds > 0
    assert scratch_dbs() == []
    record = json.loads(store.read(LOCKED_BUCKET, v.record_key))
    assert record["status"] == "passed" and record["restore_seconds"] > 0

    actions = [(a["action"], a["outcome"]) for a in store.audit]
    assert actions == [("backup.create", "success"), ("backup.verify", "success")]
    assert store.audit[0]["resource"]["object_key"] == m["object_key"]
    assert store.audit[1]["resource"]["manifest_key"] == result.manifest_key
    assert [p.get("BackupSuccess", p.get("VerifySuccess")) for p in tel.published] == [1, 1]


def test_same_slot_is_idempotent(pg, store, env, tel, actor):
    day = TODAY - timedelta(days=3)
    req = load_request(BackupRequest, {"at": _day_at(day, "02:30")}, env)
    first = run_backup(req, store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    # a retry later the same day belongs to the same 02:00 slot
    retry = load_request(BackupRequest, {"at": _day_at(day, "23:59")}, env)
    second = run_backup(retry, store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert (first.status, second.status) == ("created", "skipped")
    assert second.manifest_key == first.manifest_key
    assert len(store.keys(prefix="postgres/postoucancer/data/")) == 1
    assert store.audit[-1]["outcome"] == "skipped"
    # before 02:00 it is the previous day's slot: a new backup
    early = load_request(BackupRequest, {"at": _day_at(day, "01:00")}, env)
    third = run_backup(early, store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert third.status == "created" and f"{day - timedelta(days=1)}T0200Z" in third.manifest_key


@pytest.mark.parametrize(
    ("day", "tier", "bucket", "gfs", "locked_days"),
    [
        # Plan: yearly backups 7 years (2557 d), monthly 12 months (366 d); Jan 1 and the 1st of a
        # month win over an ordinary day; staging keeps weeks, not months (the last Sunday).
        # Relative to today: `at` may be neither in the future nor past its generation's retention.
        (TODAY.replace(month=1, day=1), Tier.PROD, LOCKED_BUCKET, "yearly", 2557),
        (LAST_FIRST_OF_MONTH, Tier.PROD, LOCKED_BUCKET, "monthly", 366),
        (TODAY - timedelta(days=(TODAY.weekday() + 1) % 7 or 7), Tier.STAGING, PLAIN_BUCKET, "weekly", None),
    ],
)
def test_gfs_class_tag_and_lock_follow_the_model(pg, store, env, tel, actor, day, tier, bucket, gfs, locked_days):
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    policy = BackupPolicy(tier, RETENTION[tier]).to_json()
    req = load_request(BackupRequest, {"at": at.isoformat(), "policy": policy, "bucket": bucket}, env)
    started = datetime.now(UTC)
    r = run_backup(req, store.store(bucket), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert r.manifest["gfs_class"] == gfs and r.manifest["tier"] == tier.value
    tags = store.tags(bucket, r.object_key)
    assert tags == {layout.GFS_TAG_KEY: gfs, layout.SLOT_TAG_KEY: layout.slot_id(at)}
    mode, until = store.lock(bucket, r.object_key)
    if locked_days is not None and store.locks:
        assert abs(until - (started + timedelta(days=locked_days))) < timedelta(minutes=5)
    else:
        assert mode is None and r.manifest["retain_until"] is None


@pytest.mark.parametrize("store", ["s3"], indirect=True)  # the AWS stack's function environment
def test_a_stack_retention_override_decides_the_lock_date(pg, aws, store, tel, actor):
    """Issue 11: a stack's `retention: {weekly: 16w}` reaches the object lock the function sets.

    The environment is the one the real prod stack gives its backup function under that override
    (recorded under mocks), not one written by hand: 112 days, not the image's 84.
    """
    from infra.mockrun import run_stack

    prod = run_stack("prod", overrides={"postoucancer-dr:retention": {"weekly": "16w"}})
    deployed = prod.one("aws:lambda/function:Function", "primary-pg-backup").inputs["environment"]["variables"]
    env = {"BACKUP_DATABASE": DATABASE, "BACKUP_BUCKET": LOCKED_BUCKET, "BACKUP_KMS_KEY_ID": aws.key_arn,
           "BACKUP_PART_SIZE_MB": "5", "BACKUP_COMPRESSION_THREADS": "2", "DB_DSN": pg.dsn(),
           "BACKUP_POLICY": deployed["BACKUP_POLICY"], "BACKUP_TIER": deployed["BACKUP_TIER"]}
    sunday = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    req = load_request(BackupRequest, {"at": sunday.isoformat()}, env)
    started = datetime.now(UTC)
    r = run_backup(req, aws.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert r.manifest["gfs_class"] == "weekly"
    until = aws.s3.head_object(Bucket=LOCKED_BUCKET, Key=r.object_key)["ObjectLockRetainUntilDate"]
    assert abs(until - (started + timedelta(days=112))) < timedelta(minutes=5)


@pytest.mark.parametrize("store", ["s3"], indirect=True)  # validation only: one store is enough
def test_a_backup_without_the_stacks_policy_is_refused_before_anything_is_written(pg, store, env, tel, actor):
    from lambdas.core.errors import InvalidRequest

    env = {k: v for k, v in env.items() if k != "BACKUP_POLICY"}
    with pytest.raises(InvalidRequest) as e:
        load_request(BackupRequest, {}, env)
    problem = next(p for p in e.value.problems if p["field"] == "policy")
    assert "BACKUP_POLICY" in problem["problem"] and "BACKUP_POLICY" in problem["fix"]
    with pytest.raises(InvalidRequest) as e:
        load_request(BackupRequest, {"policy": '{"tier": "prod", "slotUtc": "02:00", "weeklyOn": "sunday", '
                                               '"retention": {"daily": "7d", "weekly": "12w", "monthly": "12mo", '
                                               '"yearly": "7y"}}'}, env)
    assert "shorter than the plan's 30d" in e.value.problems[0]["problem"]


@pytest.mark.parametrize("store", ["s3"], indirect=True)  # Lambda + Secrets Manager: AWS only
def test_lambda_secret_path_and_no_password_in_output(pg, aws, store, env, capsys):
    """The Lambda path: credentials from a Secrets Manager secret; never in logs or results."""
    password = "s3cr3t-Pa55-never-logged"
    import boto3

    secret = boto3.session.Session().client("secretsmanager").create_secret(
        Name="pouc/db", SecretString=json.dumps({"host": "127.0.0.1", "port": pg.port, "username": "postgres",
                                                 "password": password, "dbname": "postgres"}))
    lambda_env = {k: v for k, v in env.items() if k != "DB_DSN"} | {"DB_SECRET_ARN": secret["ARN"]}

    class Ctx:
        invoked_function_arn = "arn:aws:lambda:eu-west-3:123456789012:function:pouc-backup"
        aws_request_id = "req-1"

    import os

    from lambdas import aws_lambda

    old = dict(os.environ)
    os.environ.update(lambda_env)
    try:
        out = aws_lambda.backup_handler({}, Ctx())
        ver = aws_lambda.verify_handler({"probes": [{"name": "users", "sql": "SELECT count(*) FROM users",
                                                     "min": 1}]}, Ctx())
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert out["status"] == "created" and ver["status"] == "passed"
    printed = capsys.readouterr()
    text = printed.out + printed.err + json.dumps(out) + json.dumps(ver)
    assert password not in text
    emf = [json.loads(line) for line in printed.out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for e in emf for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"BackupSuccess", "BackupBytes", "VerifySuccess", "RestoreDurationSeconds", "BackupAgeSeconds"} <= names
    audit = [json.loads(line) for line in printed.out.splitlines() if '"audit_event"' in line]
    assert [a["audit_event"]["actor"]["principal"] for a in audit] == [Ctx.invoked_function_arn] * 2


@pytest.mark.s3_only  # the CLI on Azure: test_azure_blob.py's Container Apps Job test
def test_cli_backup_and_verify(pg, store, env, monkeypatch, capsys):
    from lambdas.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["backup", "--at", _day_at(TODAY - timedelta(days=1), "03:00")]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["status"] == "created" and res["peak_rss_mb"] > 0
    assert main(["verify", "--probe", "posts=SELECT count(*) FROM posts", "--no-record"]) == 0
    ver = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ver["status"] == "passed" and ver["manifest_key"] == res["manifest_key"]
    assert ver["probes"]["posts"] == res["manifest"]["row_counts"]["public.posts"]
    assert not store.keys(prefix="postgres/postoucancer/verifications/")


def test_service_rejects_bad_event_before_any_io(store, env):
    from lambdas.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as e:
        service.backup({"tier": "production"}, env)
    assert e.value.problems[0]["field"] == "tier"
    assert store.keys() == [] and store.open_uploads() == []
