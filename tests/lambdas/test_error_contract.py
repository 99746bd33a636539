"""One error contract (issue 16, point 7): every failure of backup, verify and the GDPR commands
ends with the documented JSON line and a documented cause (exit 1), never a traceback; the
Lambda handlers raise a DataPlaneError with the same cause. Real PostgreSQL 15, on moto's S3; the
store failures and the GDPR ledger also on Azurite's Blob Storage.
"""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import psycopg
import pytest

from lambdas import aws_lambda
from lambdas import gdpr as gdpr_cli
from lambdas.cli import main as cli_main
from lambdas.core.errors import DataPlaneError

from .conftest import LOCKED_BUCKET

pytestmark = pytest.mark.postgres

LEDGER = "pouc-contract-ledger"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run(tel, monkeypatch, capsys):
    """Run a CLI's main with `environ`: (exit status, the JSON result line); never a traceback."""
    from lambdas import service

    test_telemetry = type("T", (), {"default": staticmethod(lambda: tel)})
    monkeypatch.setattr(service, "Telemetry", test_telemetry)
    monkeypatch.setattr(gdpr_cli, "Telemetry", test_telemetry)

    def go(main, argv, environ):
        return _run(main, argv, environ, monkeypatch, capsys)

    return go


def _run(main, argv, environ, monkeypatch, capsys):
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out.strip().splitlines()[-1])


@pytest.fixture
def gdpr_env(store, env):
    store.create(LEDGER)
    return {**env, "GDPR_LEDGER_BUCKET": LEDGER, "GDPR_LEDGER_KMS_KEY_ID": store.key_id}


@pytest.fixture
def weak_role(pg):
    """A login role without CREATEDB (what a verify pointed at the wrong server has)."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("DO $$ BEGIN CREATE ROLE weak LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    return pg.dsn().replace("user=postgres", "user=weak")


@pytest.mark.s3_only  # refused before the store is touched
def test_unreachable_server_and_unknown_database(pg, store, env, run):
    refused = f"host=127.0.0.1 port={_free_port()} user=postgres connect_timeout=3"
    code, out = run(cli_main, ["backup"], {**env, "DB_DSN": refused})
    assert (code, out["status"], out["cause"]) == (1, "failed", "database_unreachable")
    assert "fix:" in out["message"]
    code, out = run(cli_main, ["backup", "--database", "no_such_db"], env)
    assert (code, out["cause"]) == (1, "database_missing")
    assert store.keys() == [] and store.open_uploads() == []
    assert store.audit == [] or store.audit[-1]["reason"] in ("database_unreachable", "database_missing")


@pytest.mark.s3_only  # the Lambda runtime is AWS's
def test_lambda_handler_raises_the_same_cause(pg, aws, env, tel, monkeypatch):
    for k, v in {**env, "DB_DSN": f"host=127.0.0.1 port={_free_port()} connect_timeout=3"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(aws_lambda, "_tel", lambda: _WithKeys(tel))
    ctx = SimpleNamespace(invoked_function_arn="arn:aws:lambda:eu-west-3:123456789012:function:backup",
                          aws_request_id="r1")
    with pytest.raises(DataPlaneError) as e:
        aws_lambda.backup_handler({}, ctx)
    assert e.value.cause == "database_unreachable"
    assert aws.audit[-1]["reason"] == "database_unreachable"


class _WithKeys:
    """The test telemetry, with the powertools Logger method the handlers call."""

    def __init__(self, tel):
        self._tel = tel
        self.logger = SimpleNamespace(append_keys=lambda **_k: None)

    def __getattr__(self, name):
        return getattr(self._tel, name)


@pytest.mark.s3_only  # a PostgreSQL privilege (Azure's failed records: test_faults.py)
def test_verify_without_createdb_names_the_cause_and_the_manifest(pg, store, env, weak_role, run):
    code, backup = run(cli_main, ["backup"], env)
    assert code == 0
    code, out = run(cli_main, ["verify"], {**env, "DB_DSN": weak_role})
    assert (code, out["cause"]) == (1, "permission_denied")
    assert "CREATEDB" in out["message"]
    records = store.keys(prefix="postgres/postoucancer/verifications/")
    record = json.loads(store.read(LOCKED_BUCKET, records[-1]))
    assert (record["status"], record["cause"]) == ("failed", "permission_denied")
    assert record["manifest_key"] == backup["manifest_key"]


def test_gdpr_commands_follow_the_contract(pg, store, gdpr_env, run):
    code, out = run(gdpr_cli.main, ["reapply", "--target-database", "restored_copy_missing"], gdpr_env)
    assert (code, out["status"], out["cause"]) == (1, "failed", "database_missing")
    refused = f"host=127.0.0.1 port={_free_port()} user=postgres connect_timeout=3"
    code, out = run(gdpr_cli.main, ["record-erasure", "--user-id", "7", "--apply"], {**gdpr_env, "DB_DSN": refused})
    assert (code, out["cause"]) == (1, "database_unreachable")
    assert store.keys(LEDGER) == [], "nothing recorded when the database cannot be reached"
    code, out = run(gdpr_cli.main, ["export", "--user-id", "7"], {**gdpr_env, "DB_DSN": refused})
    assert (code, out["cause"]) == (1, "no_backup")


def test_fix_hints_match_the_failure(env, run):
    code, out = run(cli_main, ["verify", "--manifest-key", "postgres/otherdb/manifests/2026-01-01T0200Z.json"],
                     env)
    assert code == 2
    problem = out["details"]["problems"][0]
    assert problem["field"] == "manifest_key"
    assert "DB_SECRET_ARN" not in problem["fix"] and "manifest" in problem["fix"]


def test_a_missing_bucket_or_container_follows_the_contract(pg, store, env, run):
    """A store failure is a documented cause too (S3: no such bucket; Azure: no such container)."""
    code, out = run(cli_main, ["backup"], {**env, "BACKUP_BUCKET": "pouc-no-such-bucket"})
    assert (code, out["status"], out["cause"]) == (1, "failed", "storage_error")
    assert "pouc-no-such-bucket" in out["message"]
    assert store.audit[-1]["reason"] == "storage_error"
