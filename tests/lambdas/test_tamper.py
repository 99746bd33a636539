"""Backups that cannot be tampered with or shadowed (issue 16, points 4-5), on PostgreSQL 15, on
moto's S3 and on Azurite's Blob Storage.

The backup role may PutObject under manifests/: everything it can do there (a new version over
a manifest, a delete marker, a manifest whose fields disagree with its key, a future date) must
make verify fail loudly, never pass for the wrong backup or silently pick another one.

Azurite keeps no versions (measured): a write over a manifest replaces it and a delete removes
it. What verify still catches there is what the manifest's own content and the store's time
give away; what it cannot, it says (`tamper_evidence: none`, lambdas/README.md). The immutable
case without versions is in test_azure_blob.py (through the REST-documented fake).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.errors import InvalidRequest, VerifyFailed
from lambdas.core.pg import DbConn
from lambdas.core.verify import run_verify

from .conftest import LOCKED_BUCKET

pytestmark = pytest.mark.postgres

RECORDS = "postgres/postoucancer/verifications/"


def _at(days: int) -> str:
    return f"{(datetime.now(UTC) - timedelta(days=days)).date().isoformat()}T02:00:00Z"


def _a_daily_at_least(days: int) -> int:
    """`days` or the next older day that is a daily (not a Sunday, nor a 1st: their weeklies and
    monthlies are kept longer), so that the test does not depend on today's date."""
    from drplan.retention import RETENTION, GfsClass, Tier, gfs_class

    while gfs_class((datetime.now(UTC) - timedelta(days=days)).date(), RETENTION[Tier.PROD]) != GfsClass.DAILY:
        days += 1
    return days


def _backup(pg, store, env, tel, actor, **event):
    return run_backup(load_request(BackupRequest, event, env), store.store(), DbConn.resolve(dsn=pg.dsn()),
                      actor=actor, telemetry=tel)


def _verify(pg, store, env, tel, actor, **event):
    return run_verify(load_request(VerifyRequest, event, env), store.store(), DbConn.resolve(dsn=pg.dsn()),
                      actor=actor, telemetry=tel)


def _records(store) -> list[dict]:
    return [json.loads(store.read(LOCKED_BUCKET, k)) for k in sorted(store.keys(prefix=RECORDS))]


def test_a_new_manifest_version_pointing_at_another_backup_fails_verify(pg, store, env, tel, actor, scratch_dbs):
    from lambdas.core.verify import load_manifest

    a = _backup(pg, store, env, tel, actor, at=_at(2))
    b = _backup(pg, store, env, tel, actor, at=_at(1))
    # What the backup role can write: slot A's manifest, now vouching for B's object.
    forged = {**a.manifest, **{k: b.manifest[k] for k in ("object_key", "version_id", "stored_bytes", "raw_bytes",
                                                          "sha256", "row_counts", "run_id")}}
    store.overwrite(LOCKED_BUCKET, a.manifest_key, json.dumps(forged).encode(), encrypted=True)
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, manifest_key=a.manifest_key)
    # Versions: the write over the first one is the tampering. Azurite: the forgery replaced the
    # manifest, but B's object is not where slot A's key puts it: it cannot vouch for it.
    cause = "manifest_tampered" if store.versioned else "manifest_mismatch"
    assert e.value.cause == cause
    if store.versioned:
        assert len(e.value.details["later_versions"]) == 1
    if store.versioned:  # the failure is recorded under the first version's slot
        record = _records(store)[-1]
        assert (record["status"], record["cause"], record["manifest_key"]) == ("failed", cause, a.manifest_key)
    else:  # a manifest that disagrees with its key names no slot to record under (as on S3)
        assert _records(store) == []
    assert scratch_dbs() == []
    if store.versioned:  # a restore reads the first version: A's own backup, not B's object
        assert load_manifest(store.store(), a.manifest_key).object_key == a.object_key
    else:  # the first version is gone: a restore refuses the forgery rather than restore B as A
        with pytest.raises(VerifyFailed) as e:
            load_manifest(store.store(), a.manifest_key)
        assert e.value.cause == "manifest_mismatch"


def test_a_first_version_that_disagrees_with_its_key_fails_verify(pg, store, env, tel, actor):
    a = _backup(pg, store, env, tel, actor, at=_at(2))
    b = _backup(pg, store, env, tel, actor, at=_at(1))
    # A manifest for a free slot, created once (as the tool would), claiming B's object.
    free_slot = (datetime.now(UTC) - timedelta(days=3)).replace(hour=2, minute=0, second=0, microsecond=0)
    key = a.manifest_key.rsplit("/", 1)[0] + f"/{free_slot:%Y-%m-%dT%H%MZ}.json"
    from lambdas.core.storage import WriteOptions

    store.store().put_if_absent(key, json.dumps({**b.manifest}).encode(), WriteOptions(store.key_id))
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, manifest_key=key)
    assert e.value.cause == "manifest_mismatch"
    assert any("slot" in p for p in e.value.details["problems"])
    other_db = {**a.manifest, "database": "otherdb"}
    key2 = a.manifest_key.rsplit("/", 1)[0] + f"/{free_slot - timedelta(days=1):%Y-%m-%dT%H%MZ}.json"
    store.overwrite(LOCKED_BUCKET, key2, json.dumps(other_db).encode())
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, manifest_key=key2)
    assert e.value.cause == "manifest_mismatch" and any("database" in p for p in e.value.details["problems"])


def test_a_delete_marker_does_not_make_verify_choose_an_older_backup(pg, store, env, tel, actor):
    older = _backup(pg, store, env, tel, actor, at=_at(2))
    newest = _backup(pg, store, env, tel, actor, at=_at(1))
    store.delete(LOCKED_BUCKET, newest.manifest_key)  # S3: allowed, only adds a marker
    if not store.versioned:
        # Azurite: the manifest is gone and nothing records that it was there. Verify can only
        # take the newest one left, and says it could not have detected the deletion.
        result = _verify(pg, store, env, tel, actor, record=False)
        assert (result.manifest_key, result.tamper_evidence) == (older.manifest_key, "none")
        return
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor)  # "newest"
    assert e.value.cause == "manifest_tampered" and e.value.details["manifest_key"] == newest.manifest_key
    assert e.value.details["later_versions"][0]["delete_marker"] is True


def test_future_dated_backups_are_refused_and_cannot_shadow(pg, store, env, tel, actor):
    with pytest.raises(InvalidRequest) as e:
        _backup(pg, store, env, tel, actor, at="2099-01-01T02:00:00Z")
    assert e.value.problems[0]["field"] == "at" and "future" in e.value.problems[0]["problem"]
    with pytest.raises(InvalidRequest) as e:  # older than its generation's retention (a daily: 30 d)
        _backup(pg, store, env, tel, actor, at=_at(_a_daily_at_least(45)))
    assert e.value.problems[0]["field"] == "at" and "retention" in e.value.problems[0]["problem"]
    assert store.keys() == [] and store.open_uploads() == []

    # A future-dated manifest written by an older tool (or by hand): the newest backup is the one
    # that really finished last, and the future one fails verify on its own.
    # two days back: before 02:00 UTC "now" is still yesterday's slot, which must stay free for `real`
    old = _backup(pg, store, env, tel, actor, at=_at(2))
    future = {**old.manifest, "slot": "2099-01-01T02:00:00Z", "finished_at": "2099-01-01T02:10:00Z",
              "object_key": f"postgres/postoucancer/data/2099-01-01T0200Z/{old.manifest['run_id']}.pgdump.zst"}
    fkey = old.manifest_key.rsplit("/", 1)[0] + "/2099-01-01T0200Z.json"
    store.overwrite(LOCKED_BUCKET, fkey, json.dumps(future).encode())
    real = _backup(pg, store, env, tel, actor)  # now
    assert _verify(pg, store, env, tel, actor, record=False).manifest_key == real.manifest_key
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, manifest_key=fkey, record=False)
    assert e.value.cause == "manifest_future_dated"


def test_backup_age_is_measured_from_when_the_store_wrote_the_manifest(pg, store, env, tel, actor):
    r = _backup(pg, store, env, tel, actor)
    assert _verify(pg, store, env, tel, actor, record=False, max_age_hours=1).backup_age_seconds < 3600
    # a first version claiming to have finished in the future cannot look fresh
    body = {**r.manifest, "finished_at": (datetime.now(UTC) + timedelta(days=365)).isoformat()}
    key = r.manifest_key
    from .test_faults import _overwrite_manifest

    _overwrite_manifest(store, key, json.dumps(body).encode())
    with pytest.raises(VerifyFailed) as e:
        _verify(pg, store, env, tel, actor, record=False, max_age_hours=1)
    assert e.value.cause == "manifest_future_dated" and e.value.details["field"] == "finished_at"
