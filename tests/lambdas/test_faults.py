"""Faults: none may leave a backup marked good that isn't, or a half object visible as a backup."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.errors import BackupFailed, StorageError, VerifyFailed
from lambdas.core.pg import DbConn
from lambdas.core.verify import run_verify

from .conftest import LOCKED_BUCKET

pytestmark = pytest.mark.postgres

DATA_PREFIX = "postgres/postoucancer/data/"
MANIFESTS = "postgres/postoucancer/manifests/"


def _days_ago(days: int, hhmm: str = "02:00") -> str:
    """A logical run time `days` ago (the backup refuses future ones and ones past their retention)."""
    return f"{(datetime.now(UTC) - timedelta(days=days)).date().isoformat()}T{hhmm}:00Z"


def _backup(pg, store, env, tel, actor, via=None, **event):
    req = load_request(BackupRequest, event, env)
    return run_backup(req, via or store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)


def _verify(pg, store, env, tel, actor, **event):
    req = load_request(VerifyRequest, event, env)
    return run_verify(req, store.store(), DbConn.resolve(dsn=pg.dsn()), actor=actor, telemetry=tel)


def _assert_nothing_visible(store):
    assert store.keys(prefix=MANIFESTS) == [], "a failed backup must not have a manifest"
    assert store.keys(prefix=DATA_PREFIX) == [], "a failed upload must not complete an object"
    # S3: the multipart upload is aborted; Azure: staged blocks are no blob (404 to a read)
    assert store.open_uploads() == [], "no upload state may become or read as an object"


class _Wrapped:
    """An ObjectStore that delegates to the real S3 one, with a hook on upload_part."""

    def __init__(self, store, on_part=None, before_manifest=None):
        self._store, self._on_part, self._before_manifest = store, on_part, before_manifest

    def __getattr__(self, name):
        return getattr(self._store, name)

    def start_upload(self, key, options):
        upload = self._store.start_upload(key, options)
        on_part = self._on_part

        class U:
            def upload_part(self, number, data):
                if on_part:
                    on_part(number)
                upload.upload_part(number, data)

            complete = upload.complete
            abort = upload.abort

        return U()

    def put_if_absent(self, key, data, options):
        if self._before_manifest:
            self._before_manifest()
        return self._store.put_if_absent(key, data, options)


def _children(name: str) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ")
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if comm == name and ppid == os.getpid():
            pids.append(int(stat.parent.name))
    return pids


def test_pg_dump_killed_mid_stream(pg, store, env, tel, actor):
    killed = []

    def kill_pg_dump(number):
        if number == 1:  # the first 5 MiB part is out; most of the dump is still to come
            for pid in _children("pg_dump"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    with pytest.raises(BackupFailed) as e:
        # single-threaded zstd emits parts as it reads, so pg_dump is mid-stream at part 1
        _backup(pg, store, env, tel, actor, via=_Wrapped(store.store(), on_part=kill_pg_dump), compression_threads=0)
    assert killed, "pg_dump was still running at the first part"
    assert e.value.cause == "pg_dump_failed"
    assert e.value.details["returncode"] == -signal.SIGKILL
    _assert_nothing_visible(store)
    assert (store.audit[-1]["outcome"], store.audit[-1]["reason"]) == ("failure", "pg_dump_failed")
    assert tel.published[-1]["BackupSuccess"] == 0


def test_upload_fails_at_a_part(pg, store, env, tel, actor):
    """Part #2 fails (S3: the SDK's transport answers UploadPart with a 500; Azure: block 2 is
    damaged in transit and Azurite refuses its Content-MD5): the run fails, nothing is visible."""
    failing, seen, code = store.store_failing_part(2)
    with pytest.raises(StorageError) as e:
        _backup(pg, store, env, tel, actor, via=failing)
    assert 2 in seen
    assert "part 2" in str(e.value) and e.value.details["code"] == code
    _assert_nothing_visible(store)
    assert store.audit[-1]["reason"] == "storage_error"


@pytest.mark.parametrize("case", [0, 1], ids=["missing-or-not-a-key", "disabled-key-or-wrong-credential"])
def test_unusable_key_or_credential_writes_nothing(pg, store, env, tel, actor, case):
    """S3: a KMS key that does not exist, a disabled one. Azure: an AWS key id where an
    encryption scope is expected, the wrong account key (Azurite refuses every request)."""
    via, key_id, cause = store.unusable(case)
    with pytest.raises(StorageError) as e:
        _backup(pg, store, env, tel, actor, via=via, kms_key_id=key_id)
    assert e.value.cause == cause
    if cause == "kms_key_unusable":
        assert key_id in str(e.value)
    _assert_nothing_visible(store)


def _tamper_manifest(store, manifest_key, **changes):
    """The manifest's own (first) version altered in place inside the store: a manifest that was
    written wrong. (A new version on top, what a writer can do, is refused as tampering where the
    store keeps versions: tests/lambdas/test_tamper.py.)"""
    body = json.loads(store.read(LOCKED_BUCKET, manifest_key, store.first_version_id(LOCKED_BUCKET, manifest_key)))
    body.update(changes)
    _overwrite_manifest(store, manifest_key, json.dumps(body).encode())


def _overwrite_manifest(store, manifest_key, raw: bytes):
    """Replace the bytes of the manifest's first version (S3: inside moto; Azurite, which keeps
    no versions: the blob itself, with its tags)."""
    store.replace_stored_bytes(LOCKED_BUCKET, manifest_key, store.first_version_id(LOCKED_BUCKET, manifest_key), raw)


def test_object_corrupted_in_storage(pg, store, env, tel, actor, scratch_dbs, monkeypatch, capsys):
    r = _backup(pg, store, env, tel, actor)
    data = bytearray(store.read(LOCKED_BUCKET, r.object_key, r.manifest["version_id"]))
    data[len(data) // 2] ^= 0x40  # one flipped bit, same size
    store.replace_stored_bytes(LOCKED_BUCKET, r.object_key, r.manifest["version_id"], bytes(data))
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "checksum_mismatch"
    assert e.value.details["expected"] == r.manifest["sha256"]
    assert scratch_dbs() == []
    assert (store.audit[-1]["action"], store.audit[-1]["outcome"], store.audit[-1]["reason"]) == (
        "backup.verify", "failure", "checksum_mismatch")
    records = store.keys(prefix="postgres/postoucancer/verifications/")
    assert json.loads(store.read(LOCKED_BUCKET, records[0]))["status"] == "failed"

    # the CronJob's view: exit status 1 and the cause in the JSON result
    from lambdas.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["verify", "--no-record"]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["status"], out["cause"]) == ("failed", "checksum_mismatch")
    assert scratch_dbs() == []


def test_object_truncated_in_storage(pg, store, env, tel, actor, scratch_dbs):
    r = _backup(pg, store, env, tel, actor)
    data = store.read(LOCKED_BUCKET, r.object_key, r.manifest["version_id"])
    store.replace_stored_bytes(LOCKED_BUCKET, r.object_key, r.manifest["version_id"],
                               data[: r.manifest["stored_bytes"] // 2])
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "object_size_mismatch"
    assert "truncated" in str(e.value)
    assert e.value.details == {"expected": r.manifest["stored_bytes"], "actual": r.manifest["stored_bytes"] // 2,
                               "object_key": r.object_key}
    assert scratch_dbs() == []


def test_checksum_mismatch_fails_even_when_restore_succeeded(pg, store, env, tel, actor, scratch_dbs):
    r = _backup(pg, store, env, tel, actor)
    _tamper_manifest(store, r.manifest_key, sha256="0" * 64)
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "checksum_mismatch"
    assert e.value.details["restore_returncode"] == 0  # pg_restore had applied the data
    assert e.value.details["actual"] == r.manifest["sha256"]
    assert scratch_dbs() == []


@pytest.mark.s3_only  # counts compared in PostgreSQL (the in-place manifest edit is in the checksum test)
def test_row_count_mismatch_names_the_table(pg, store, env, tel, actor, scratch_dbs):
    r = _backup(pg, store, env, tel, actor)
    counts = dict(r.manifest["row_counts"])
    counts["public.comments"] += 1
    _tamper_manifest(store, r.manifest_key, row_counts=counts)
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "row_count_mismatch"
    assert e.value.details["tables"] == {"public.comments": {"expected": counts["public.comments"],
                                                             "actual": counts["public.comments"] - 1}}
    assert scratch_dbs() == []


def test_object_encrypted_with_another_key(pg, store, env, tel, actor):
    r = _backup(pg, store, env, tel, actor)
    _tamper_manifest(store, r.manifest_key, encryption_key=store.other_key_id)
    if not store.reports_encryption:
        # Azurite does not report a blob's encryption scope: a real service does
        # (x-ms-encryption-scope), which the fake adds to Azurite's answers.
        from .stores import ServiceFake

        verifier = store.store(fake=ServiceFake(scope=store.key_id))
        with pytest.raises(VerifyFailed) as e:
            run_verify(load_request(VerifyRequest, {}, env), verifier, DbConn.resolve(dsn=pg.dsn()), actor=actor,
                       telemetry=tel)
    else:
        with pytest.raises(VerifyFailed) as e:
            _verify(pg, store, env, tel, actor)
    assert e.value.cause == "encryption_key_mismatch"
    assert e.value.details == {"expected": store.other_key_id, "actual": store.key_id}


@pytest.mark.s3_only  # probes run in PostgreSQL: the store plays no part
def test_probe_failure_is_reported(pg, store, env, tel, actor, scratch_dbs):
    _backup(pg, store, env, tel, actor)
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor,
                probes=[{"name": "posts", "sql": "SELECT count(*) FROM posts", "equals": 1}])
    assert e.value.cause == "probe_failed" and e.value.details["probe"] == "posts"
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, probes=[{"name": "gone", "sql": "SELECT count(*) FROM no_such_table"}])
    assert e.value.cause == "probe_failed" and "no_such_table" in str(e.value)
    with pytest.raises(VerifyFailed) as e:  # probes run read-only
        _verify(pg, store, env, tel, actor, probes=[{"name": "w", "sql": "DELETE FROM comments RETURNING 1"}])
    assert e.value.cause == "probe_failed" and "read-only" in str(e.value)
    assert scratch_dbs() == []


def test_manifest_missing_or_malformed(pg, store, env, tel, actor):
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "no_backup"
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, manifest_key=MANIFESTS + "2026-01-01T0200Z.json")
    assert e.value.cause == "manifest_missing"
    assert e.value.details["manifest_key"] == MANIFESTS + "2026-01-01T0200Z.json"

    r = _backup(pg, store, env, tel, actor, at=_days_ago(3))
    _overwrite_manifest(store, r.manifest_key, b'{"format": 1, "database": ')
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "manifest_malformed" and "not valid JSON" in str(e.value)

    good = r.manifest | {"stored_bytes": "many"}
    del good["sha256"]
    _overwrite_manifest(store, r.manifest_key, json.dumps(good).encode())
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)
    assert e.value.cause == "manifest_malformed"
    assert {f.split(":")[0] for f in e.value.details["fields"]} == {"sha256", "stored_bytes"}


def test_newest_manifest_is_verified(pg, store, env, tel, actor):
    old = _backup(pg, store, env, tel, actor, at=_days_ago(3))
    new = _backup(pg, store, env, tel, actor, at=_days_ago(2))
    assert old.status == new.status == "created"
    assert _verify(pg, store, env, tel, actor, record=False).manifest_key == new.manifest_key
    assert _verify(pg, store, env, tel, actor, record=False, manifest_key=old.manifest_key).object_key == old.object_key


def test_two_concurrent_runs_of_a_slot(pg, store, env, tel, actor, scratch_dbs):
    """Both pass the 'slot free?' check and both upload; exactly one manifest wins."""
    barrier = threading.Barrier(2, timeout=60)
    racing = _Wrapped(store.store(), before_manifest=barrier.wait)
    results, errors = [], []
    at = _days_ago(4, "02:05")

    def run():
        try:
            results.append(_backup(pg, store, env, tel, actor, via=racing, at=at))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(r.status for r in results) == ["created", "lost_race"]
    winner = next(r for r in results if r.status == "created")
    loser = next(r for r in results if r.status == "lost_race")
    assert store.keys(prefix=MANIFESTS) == [winner.manifest_key]
    assert sorted(store.keys(prefix=DATA_PREFIX)) == sorted([winner.object_key, loser.object_key])
    manifest = json.loads(store.read(LOCKED_BUCKET, winner.manifest_key))
    assert manifest["object_key"] == winner.object_key and manifest["run_id"] == winner.manifest["run_id"]
    assert _verify(pg, store, env, tel, actor, record=False).object_key == winner.object_key
    assert scratch_dbs() == []
