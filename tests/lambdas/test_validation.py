"""Input validation: a bad event or environment names the field and the fix; nothing runs."""

from __future__ import annotations

import json

import pytest

from drplan.handover import BackupPolicy
from drplan.retention import RETENTION, Tier
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.errors import InvalidRequest
from lambdas.core.pg import DbConn

ENV = {"BACKUP_DATABASE": "postoucancer", "BACKUP_BUCKET": "pouc-backups", "BACKUP_KMS_KEY_ID": "alias/backups",
       "BACKUP_POLICY": BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json()}


def _problems(model, event, environ=ENV):
    with pytest.raises(InvalidRequest) as e:
        load_request(model, event, environ)
    return {p["field"]: p for p in e.value.problems}, str(e.value)


def test_environment_gives_defaults_event_overrides():
    req = load_request(BackupRequest, {"database": "other_db", "at": "2026-01-01T02:00:00+01:00"}, ENV)
    assert (req.database, req.bucket, req.kms_key_id) == ("other_db", "pouc-backups", "alias/backups")
    assert req.at.utcoffset().total_seconds() == 3600
    assert req.part_size_mb == 8 and req.object_lock == "auto"


def test_missing_required_fields_name_event_field_and_env_var():
    problems, text = _problems(BackupRequest, {}, {})
    assert set(problems) == {"database", "bucket", "kms_key_id", "policy"}
    assert "BACKUP_KMS_KEY_ID" in problems["kms_key_id"]["problem"]
    assert "BACKUP_KMS_KEY_ID" in problems["kms_key_id"]["fix"]
    assert text.startswith("invalid backup request: ")


@pytest.mark.parametrize(
    ("event", "field", "fix_mentions"),
    [
        ({"tier": "production"}, "tier", "prod, staging"),
        ({"at": "2026-01-01T02:00:00"}, "at", "zone"),
        ({"at": "yesterday"}, "at", "ISO 8601"),
        ({"part_size_mb": 2}, "part_size_mb", "5 to 512"),
        ({"compression_level": 30}, "compression_level", "1 to 19"),
        ({"bucket": "Bad_Bucket"}, "bucket", "lowercase"),
        ({"database": "posts; DROP TABLE users"}, "database", "PostgreSQL database name"),
        ({"databse": "x"}, "databse", "known fields"),
        ({"object_lock": "maybe"}, "object_lock", "auto"),
        ({"db_secret_arn": "not-an-arn"}, "db_secret_arn", "arn:aws:secretsmanager"),
    ],
)
def test_bad_backup_fields(event, field, fix_mentions):
    problems, _ = _problems(BackupRequest, event)
    assert list(problems) == [field]
    assert fix_mentions in problems[field]["fix"]


def test_env_value_errors_say_where_the_value_came_from():
    problems, _ = _problems(BackupRequest, {}, {**ENV, "BACKUP_TIER": "prd"})
    assert "env BACKUP_TIER" in problems["tier"]["problem"]


def test_two_credential_sources_are_refused():
    problems, text = _problems(BackupRequest, {"db_dsn": "host=db", "db_secret_arn":
                                              "arn:aws:secretsmanager:eu-west-3:123456789012:secret:db-AbC"})
    assert "exclusive" in text and "DB_SECRET_ARN" in problems["request"]["fix"]
    assert "host=db" not in text  # the DSN (it may carry a password) is never echoed


def test_event_must_be_an_object():
    problems, _ = _problems(BackupRequest, ["database"])
    assert "JSON object" in problems["event"]["problem"]


def test_verify_probes_from_env_json_and_errors():
    env = {**ENV, "VERIFY_PROBES": json.dumps([{"name": "posts", "sql": "SELECT count(*) FROM posts;", "min": 1}])}
    req = load_request(VerifyRequest, {}, env)
    assert req.probes[0].sql == "SELECT count(*) FROM posts" and req.probes[0].min == 1
    problems, _ = _problems(VerifyRequest, {}, {**ENV, "VERIFY_PROBES": "[{"})
    assert "not valid JSON" in problems["probes"]["problem"] and "JSON list" in problems["probes"]["fix"]
    problems, _ = _problems(VerifyRequest, {"probes": [{"name": "x", "sql": "SELECT 1; DROP TABLE posts"}]})
    assert "probes.0.sql" in problems
    problems, _ = _problems(VerifyRequest, {"probes": [{"name": "x"}]})
    assert "probes.0.sql" in problems


def test_verify_manifest_key_must_belong_to_the_database():
    _, text = _problems(VerifyRequest, {"manifest_key": "postgres/otherdb/manifests/2026-01-01T0200Z.json"})
    assert "not a manifest of database 'postoucancer'" in text
    ok = load_request(VerifyRequest, {"manifest_key": "postgres/postoucancer/manifests/2026-01-01T0200Z.json"}, ENV)
    assert ok.manifest_key.endswith("0200Z.json")


def test_dsn_is_secret_in_repr_and_errors():
    req = load_request(BackupRequest, {"db_dsn": "host=db password=hunter2"}, ENV)
    assert "hunter2" not in repr(req)
    db = DbConn.resolve(dsn=req.db_dsn.get_secret_value())
    assert "hunter2" not in repr(db) and db.env({})["PGPASSWORD"] == "hunter2"
    with pytest.raises(InvalidRequest) as e:
        DbConn.resolve(dsn="host=db password=hunter2 =broken")
    assert "hunter2" not in str(e.value) and e.value.problems[0]["field"] == "db_dsn"


def test_cli_invalid_input_exits_2_and_writes_nothing(capsys, monkeypatch):
    from lambdas.cli import main

    for k in ("BACKUP_DATABASE", "BACKUP_BUCKET", "BACKUP_KMS_KEY_ID", "BACKUP_POLICY"):
        monkeypatch.delenv(k, raising=False)
    assert main(["backup", "--database", "postoucancer"]) == 2
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fields = {p["field"] for p in out["details"]["problems"]}
    assert out["status"] == "invalid" and fields == {"bucket", "kms_key_id", "policy"}
    assert main(["verify", "--event", "[1]"]) == 2
    assert main(["verify", "--probe", "nosql"]) == 2


def test_secret_credentials_with_the_sites_own_host():
    """A DR site reads the primary's replicated secret; PGHOST names its own instance."""
    from lambdas.core.pg import DbConn

    secret = {"host": "primary.eu-west-3.rds.amazonaws.com", "port": 5432, "username": "admin",
              "password": "pw", "dbname": "postoucancer"}
    conn = DbConn.resolve(secret_arn="arn:x", secret_resolver=lambda arn: secret,
                          environ={"PGHOST": "dr.eu-central-1.rds.amazonaws.com"})
    env = conn.env({})
    assert env["PGHOST"] == "dr.eu-central-1.rds.amazonaws.com"
    assert env["PGUSER"] == "admin" and env["PGPASSWORD"] == "pw" and env["PGPORT"] == "5432"
    alone = DbConn.resolve(secret_arn="arn:x", secret_resolver=lambda arn: secret, environ={})
    assert alone.env({})["PGHOST"] == secret["host"]
