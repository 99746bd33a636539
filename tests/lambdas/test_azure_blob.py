"""What only the Azure Blob adapter has: staged blocks, the store chosen by the environment, and
the version-level immutability path.

Azurite does not emulate immutability: a container never reports it and a policy sent on a
write is ignored. The lock tests therefore run the real adapter against Azurite through a
`ServiceFake` that adds the response headers the Blob REST API documents (Get Container
Properties `x-ms-immutable-storage-with-versioning-enabled`, Get Blob Properties
`x-ms-immutability-policy-until-date` / `-mode`), and check the request headers the adapter
sends. Without the fake reporting the policy, the adapter must refuse to call the write locked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from drplan.handover import ENV_VAR as POLICY_ENV
from drplan.handover import BackupPolicy
from drplan.retention import RETENTION, GfsClass, Tier
from lambdas.adapters.azure_blob import AzureBlobStore
from lambdas.adapters.select import open_store
from lambdas.core import gdpr
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, load_request
from lambdas.core.errors import AlreadyExists, BackupFailed, InvalidRequest, NotFound, StorageError
from lambdas.core.pg import DbConn
from lambdas.core.storage import WriteOptions

from .stores import AZURE_SCOPE, LOCKED_BUCKET, ServiceFake

MANIFESTS = "postgres/postoucancer/manifests/"


def _days_ago(days: int) -> str:
    """A logical run time `days` ago (the backup refuses future ones and ones past their retention)."""
    return f"{(datetime.now(UTC) - timedelta(days=days)).date().isoformat()}T02:00:00Z"
DATA = "postgres/postoucancer/data/"


@pytest.fixture
def env(pg, azure):  # this module is Azure-only: the conftest's env without the store parameter
    return {"BACKUP_DATABASE": "postoucancer", "BACKUP_BUCKET": LOCKED_BUCKET, "BACKUP_PART_SIZE_MB": "5",
            "BACKUP_COMPRESSION_THREADS": "2", "DB_DSN": pg.dsn(), **azure.env,
            POLICY_ENV: BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json()}


@pytest.fixture
def tel(azure):
    import logging

    from lambdas.core.telemetry import Telemetry

    return Telemetry(logger=logging.getLogger("tests.azure"), metrics=None, audit_sink=azure.audit.append)


def test_staged_blocks_are_invisible_until_the_commit(azure):
    store = azure.store()
    upload = store.start_upload("x/obj", WriteOptions(encryption_key=AZURE_SCOPE, tags={"gfs-class": "daily"}))
    upload.upload_part(1, b"a" * 1000)
    upload.upload_part(2, b"b" * 10)
    assert store.list_keys("x/") == []
    with pytest.raises(NotFound):
        store.head("x/obj")
    assert azure.staged_only() == ["x/obj"] and azure.open_uploads() == []
    obj = upload.complete()
    assert (obj.size, obj.encryption_key, obj.version_id) == (1010, AZURE_SCOPE, None)
    assert store.read("x/obj") == b"a" * 1000 + b"b" * 10
    assert azure.tags(LOCKED_BUCKET, "x/obj") == {"gfs-class": "daily"}


def test_a_missing_block_is_never_committed(azure):
    store = azure.store()
    upload = store.start_upload("x/gap", WriteOptions(encryption_key=AZURE_SCOPE))
    upload.upload_part(1, b"a")
    upload.upload_part(3, b"c")
    with pytest.raises(StorageError) as e:
        upload.complete()
    assert e.value.cause == "missing_parts" and azure.keys(prefix="x/") == []


def test_conditional_create_refuses_an_existing_blob(azure):
    store = azure.store()
    store.put_if_absent("m.json", b"{}", WriteOptions(encryption_key=AZURE_SCOPE))
    with pytest.raises(AlreadyExists):
        store.put_if_absent("m.json", b'{"other": 1}', WriteOptions(encryption_key=AZURE_SCOPE))
    assert store.read("m.json") == b"{}"


def test_object_lock_on_without_container_immutability_writes_nothing(pg, azure, env, tel, actor):
    req = load_request(BackupRequest, {"object_lock": "on"}, env)
    with pytest.raises(BackupFailed) as e:
        run_backup(req, azure.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)
    assert e.value.cause == "object_lock_unavailable"
    assert azure.keys() == [] and azure.staged_only() == []


def test_immutable_container_locks_data_and_manifest(pg, azure, env, tel, actor):
    """A container with version-level immutability (as a real service reports it): every write
    carries a locked policy until start + retention, and the adapter reads it back."""
    fake = ServiceFake(container_immutable=True, report_policies=True)
    started = datetime.now(UTC)
    r = run_backup(load_request(BackupRequest, {}, env), azure.store(fake=fake), DbConn.resolve(dsn=pg.dsn()),
                   actor=actor, telemetry=tel)
    assert r.status == "created"
    m = r.manifest
    keep = RETENTION[Tier.PROD].for_class(GfsClass(m["gfs_class"])).delta
    assert m["lock_mode"] == "COMPLIANCE"
    assert abs(datetime.fromisoformat(m["retain_until"]) - (started + keep)) < timedelta(minutes=5)
    sent = {path.split(f"/{LOCKED_BUCKET}/", 1)[1]: policy for path, policy in fake.policies.items()}
    assert set(sent) == {m["object_key"], r.manifest_key}
    for until, mode in sent.values():
        assert mode == "Locked"
        assert abs(datetime.strptime(until, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
                   - (started + keep)) < timedelta(minutes=5)
    # the manifest went last, with If-None-Match: * and the scope; the data with the scope
    assert fake.writes[-1].get("If-None-Match") == "*"
    assert {w.get("x-ms-encryption-scope") for w in fake.writes} == {AZURE_SCOPE}


def test_an_immutable_manifest_is_its_own_first_version_while_the_lock_holds(pg, azure, env, tel, actor):
    """No versioning (Azurite): the manifest listed is its current content. Verify takes it for
    the first write only while a locked policy in force forbids replacing it; after the lock or
    without one it passes but says tampering could not be detected."""
    from lambdas.core.config import VerifyRequest
    from lambdas.core.verify import manifest_history, run_verify

    fake = ServiceFake(container_immutable=True, report_policies=True)
    locked = azure.store(fake=fake)
    r = run_backup(load_request(BackupRequest, {}, env), locked, DbConn.resolve(dsn=pg.dsn()), actor=actor,
                   telemetry=tel)
    (listed,) = locked.list_versions(r.manifest_key)
    assert (listed.key, listed.version_id, listed.delete_marker) == (r.manifest_key, None, False)
    v = run_verify(load_request(VerifyRequest, {"record": False}, env), locked, DbConn.resolve(dsn=pg.dsn()),
                   actor=actor, telemetry=tel)
    assert (v.status, v.manifest_key, v.tamper_evidence) == ("passed", r.manifest_key, "immutable")
    assert azure.audit[-1]["details"]["tamper_evidence"] == "immutable"
    # the day after the lock ends anyone may have replaced it
    after = datetime.fromisoformat(r.manifest["retain_until"]) + timedelta(days=1)
    assert manifest_history(locked, r.manifest_key, now=after).evidence == "none"
    # a store that reports no lock on it (what Azurite alone answers) proves nothing either
    assert manifest_history(azure.store(), r.manifest_key).evidence == "none"


def test_a_versioned_accounts_listing_is_read_oldest_first_with_deletions_as_markers():
    """Blob versioning (Azurite has none): the List Blobs answer with include=versions, as the
    SDK deserializes it, becomes the ObjectStore history verify judges a manifest by."""
    from azure.storage.blob import BlobProperties

    from lambdas.adapters.azure_blob import versions_oldest_first
    from lambdas.core.verify import ManifestHistory

    def blob(name, vid, current, minute):
        return BlobProperties(**{"name": name, "x-ms-version-id": vid, "x-ms-is-current-version": current,
                                 "Last-Modified": datetime(2026, 12, 1, 2, minute, tzinfo=UTC)})

    m, d = "db/manifests/2026-12-01T0200Z.json", "db/manifests/2026-11-30T0200Z.json"
    listing = [blob(m, "2026-12-01T02:30:00.0000000Z", True, 30), blob(m, "2026-12-01T02:10:00.0000000Z", None, 10),
               blob(d, "2026-11-30T02:10:00.0000000Z", None, 10)]  # d: deleted, no current version
    out = versions_oldest_first(listing)
    assert [(v.key, v.version_id, v.delete_marker) for v in out] == [
        (m, "2026-12-01T02:10:00.0000000Z", False), (m, "2026-12-01T02:30:00.0000000Z", False),
        (d, "2026-11-30T02:10:00.0000000Z", False), (d, None, True)]
    # what verify makes of it: the first version is read, the later one and the deletion are tampering
    first = next(v for v in out if v.key == m)
    history = ManifestHistory(m, first, tuple(v for v in out if v.key == m and v is not first))
    assert history.first.version_id == "2026-12-01T02:10:00.0000000Z" and len(history.later) == 1


def test_a_lock_the_service_does_not_report_fails_the_backup(pg, azure, env, tel, actor):
    """Azurite drops the policy (and answers 'not implemented' to Set Immutability Policy): the
    adapter must not call that backup locked, and nothing is marked good."""
    fake = ServiceFake(container_immutable=True, report_policies=False)
    with pytest.raises(StorageError) as e:
        run_backup(load_request(BackupRequest, {}, env), azure.store(fake=fake), DbConn.resolve(dsn=pg.dsn()),
                   actor=actor, telemetry=tel)
    assert e.value.cause == "lock_not_applied"
    assert azure.keys(prefix=MANIFESTS) == []
    assert azure.audit[-1]["outcome"] == "failure"


def test_ledger_entry_on_an_immutable_container_is_locked_past_every_backup(azure):
    fake = ServiceFake(container_immutable=True, report_policies=True)
    req = load_request(gdpr.RecordErasureRequest, {"user_id": 7, "database": "postoucancer",
                                                   "ledger_bucket": LOCKED_BUCKET, "kms_key_id": AZURE_SCOPE},
                       {POLICY_ENV: BackupPolicy(Tier.PROD, RETENTION[Tier.PROD]).to_json()})
    from lambdas.core.audit import Actor

    now = datetime.now(UTC)
    res = gdpr.record_erasure(req, azure.store(fake=fake), None, actor=Actor("dpo", "cli"), now=now)
    assert res["status"] == "recorded"
    until = now + RETENTION[Tier.PROD].longest.delta + gdpr.LEDGER_MARGIN
    assert res["retain_until"] == until.isoformat()
    assert [p[1] for p in fake.policies.values()] == ["Locked"]
    again = gdpr.record_erasure(req, azure.store(fake=fake), None, actor=Actor("dpo", "cli"))
    assert again["status"] == "already_recorded"
    assert json.loads(azure.read(LOCKED_BUCKET, res["ledger_key"]))["user_id"] == "7"


# --- the store chosen by the environment --------------------------------------------------


@pytest.mark.parametrize(("environ", "field"), [
    ({"BACKUP_STORE": "gcs"}, "BACKUP_STORE"),
    ({"BACKUP_STORE": "azure"}, "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_URL"),
    ({"BACKUP_STORE": "azure", "AZURE_STORAGE_ACCOUNT_URL": "https://a.blob.core.windows.net",
      "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
     "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_URL"),
    ({"BACKUP_STORE": "azure", "AZURE_STORAGE_ACCOUNT_URL": "a.blob.core.windows.net"}, "AZURE_STORAGE_ACCOUNT_URL"),
    ({"BACKUP_STORE": "azure", "AZURE_STORAGE_ACCOUNT_URL": "http://a.blob.core.windows.net"},
     "AZURE_STORAGE_ACCOUNT_URL"),
    ({"BACKUP_STORE": "azure", "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=c2VjcmV0LXZhbHVl"},
     "AZURE_STORAGE_CONNECTION_STRING"),
])
def test_bad_store_settings_name_the_variable(environ, field):
    with pytest.raises(InvalidRequest) as e:
        open_store("pouc-backups", environ)
    assert field in [p["field"] for p in e.value.problems]
    assert all(p["fix"] for p in e.value.problems)
    assert "c2VjcmV0LXZhbHVl" not in str(e.value)  # a connection string's key is never echoed


def test_a_bucket_name_azure_cannot_hold_is_refused():
    with pytest.raises(InvalidRequest) as e:
        open_store("pouc.backups", {"BACKUP_STORE": "azure", "AZURE_STORAGE_ACCOUNT_URL": "https://a.blob.core.windows.net"})
    assert e.value.problems[0]["field"] == "bucket"


def test_account_url_authenticates_with_the_managed_identity_chain():
    from azure.identity import DefaultAzureCredential

    store = open_store("pouc-backups", {"BACKUP_STORE": "azure",
                                        "AZURE_STORAGE_ACCOUNT_URL": "https://pouc.blob.core.windows.net"})
    assert isinstance(store, AzureBlobStore)
    assert isinstance(store.service.credential, DefaultAzureCredential)
    assert store.service.url.startswith("https://pouc.blob.core.windows.net")


def test_service_backup_uses_the_configured_store(pg, azure, env):
    from lambdas import service
    from lambdas.core.audit import Actor

    out = service.backup({"at": _days_ago(2)}, env, actor=Actor("tests", "cli"))
    assert out["status"] == "created"
    assert azure.keys(prefix=MANIFESTS) == [out["manifest_key"]]
    assert azure.keys(prefix=DATA) == [out["object_key"]]


# --- the Azure Container Apps Job entry point -----------------------------------------------


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_container_apps_job_backs_up_and_verifies(pg, azure, env, monkeypatch, capsys):
    from lambdas import azure_job

    for k, v in {**env, "CONTAINER_APP_JOB_NAME": "pouc-backup", "CONTAINER_APP_JOB_EXECUTION_NAME": "pouc-backup-x1",
                 "JOB_EVENT": json.dumps({"at": _days_ago(3)})}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AUDIT_ACTOR", raising=False)
    monkeypatch.delenv("BACKUP_STORE")  # the job's default is azure
    assert azure_job.main(["backup"]) == 0
    out = capsys.readouterr().out.splitlines()
    res = json.loads(out[-1])
    assert res["status"] == "created" and azure.keys(prefix=MANIFESTS) == [res["manifest_key"]]
    audit = [json.loads(line) for line in out if '"audit_event"' in line]
    assert audit[-1]["audit_event"]["actor"] == {"principal": "aca:pouc-backup/pouc-backup-x1", "via": "job"}
    monkeypatch.setenv("JOB_OPERATION", "verify")
    monkeypatch.setenv("JOB_EVENT", '{"record": false}')
    assert azure_job.main([]) == 0
    assert _last_json(capsys)["manifest_key"] == res["manifest_key"]


@pytest.mark.parametrize(("argv", "event", "field"), [
    ([], "{}", "JOB_OPERATION"),
    (["restore"], "{}", "JOB_OPERATION"),
    (["backup"], "{not json", "JOB_EVENT"),
    (["backup"], "[1]", "JOB_EVENT"),
    (["gdpr-export"], "{}", "JOB_EVENT.user_id"),
    (["backup"], '{"tier": "production"}', "tier"),
])
def test_container_apps_job_bad_input_exits_2_naming_the_field(azure, env, monkeypatch, capsys, argv, event, field):
    from lambdas import azure_job

    for k, v in {**env, "JOB_EVENT": event}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("JOB_OPERATION", raising=False)
    assert azure_job.main(argv) == 2
    res = _last_json(capsys)
    assert res["status"] == "invalid" and field in [p["field"] for p in res["details"]["problems"]]
    assert azure.keys() == []


def test_read_ahead_keeps_order_and_raises_where_the_consumer_reads():
    """The verify download fetches ranges ahead of the restore; a failed range must surface at
    its place in the stream (nothing after it is handed out), and a consumer that stops early
    must not leave the fetching thread blocked."""
    import threading
    import time

    from lambdas.adapters.azure_blob import _read_ahead

    def failing():
        yield b"a"
        yield b"b"
        raise OSError("range 3 failed")

    got = []
    with pytest.raises(OSError, match="range 3 failed"):
        for chunk in _read_ahead(failing(), depth=4):
            got.append(chunk)
    assert got == [b"a", b"b"]

    endless = (bytes([i % 256]) for i in range(10**9))
    stream = _read_ahead(endless, depth=2)
    assert [next(stream), next(stream)] == [b"\x00", b"\x01"]
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 2
    assert not any(t.name == "blob-read-ahead" and t.is_alive() for t in threading.enumerate())
