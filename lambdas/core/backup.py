"""Backup: pg_dump streamed into object storage; the manifest, written last, makes it a backup."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from drplan import layout
from drplan.retention import gfs_class
from drplan.schedules import schedule_slot

from . import VERSION
from .audit import Actor, AuditEvent
from .config import BackupRequest
from .errors import AlreadyExists, BackupFailed, InvalidRequest, NotFound
from .failure import as_failure, reraise
from .manifest import Manifest
from .pg import DbConn, exported_snapshot, pg_bin, row_counts, server_version, tool_version
from .storage import ObjectStore, StoredObject, WriteOptions
from .stream import ALGORITHM, upload_stream
from .telemetry import Telemetry

MiB = 1 << 20
# How far `at` may lie ahead of this machine's clock (a scheduler firing a little early).
AT_SKEW = timedelta(minutes=5)


def _check_logical_time(at: datetime | None, now: datetime, retention: timedelta) -> None:
    """`at` picks the slot, the GFS class and the lock: bound it before anything is written.

    A future `at` would make a yearly backup that shadows every real one and is locked for
    years; one older than its generation's retention would be expired on arrival.
    """
    if at is None:
        return
    if at > now + AT_SKEW:
        raise InvalidRequest([{"field": "at", "problem": f"{at.isoformat()} is in the future (now {now.isoformat()},"
                               f" allowed skew {AT_SKEW})", "fix": "omit it (now), or give a past time"}],
                             "backup request")
    if at < now - retention:
        raise InvalidRequest([{"field": "at", "problem": f"{at.isoformat()} is older than the retention of its"
                               f" generation ({retention.days} d): such a backup would expire on arrival",
                               "fix": "give a time within the retention, or omit it (now)"}], "backup request")


@dataclass
class BackupResult:
    status: str  # created | skipped (slot already backed up) | lost_race (a concurrent run won)
    manifest_key: str
    manifest: dict[str, Any] | None = None
    object_key: str | None = None
    duration_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "manifest_key": self.manifest_key, "object_key": self.object_key,
                "duration_seconds": round(self.duration_seconds, 3), "manifest": self.manifest, **self.details}


def _tail(path: str, limit: int = 2000) -> str:
    with open(path, "rb") as f:
        data = f.read()
    return data[-limit:].decode(errors="replace").strip()


def run_backup(
    req: BackupRequest,
    store: ObjectStore,
    db: DbConn,
    *,
    actor: Actor,
    telemetry: Telemetry | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
) -> BackupResult:
    tel = telemetry or Telemetry()
    started = now or datetime.now(UTC)
    t0 = time.monotonic()
    run_id = run_id or f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
    plan = req.policy
    slot = schedule_slot((req.at or started).astimezone(UTC), plan.schedules)
    retention = plan.retention
    gfs = gfs_class(slot.date(), retention, plan.schedules)
    mkey = layout.manifest_key(req.prefix, req.database, slot)
    resource = {"database": req.database, "slot": layout.slot_id(slot), "gfs_class": gfs.value,
                "manifest_key": mkey, "run_id": run_id}
    log = tel.log
    _check_logical_time(req.at, started, retention.for_class(gfs).delta)

    def fail(exc: Exception, object_key: str | None = None) -> None:
        failure = as_failure(exc)
        cause = failure.cause
        tel.audit(AuditEvent("backup.create", "failure", actor, {**resource, "object_key": object_key},
                             reason=cause, details={"error": str(exc)[:1000]}))
        tel.publish(req.database, {"BackupSuccess": (0, "Count"),
                                   "BackupDurationSeconds": (time.monotonic() - t0, "Seconds")})
        log.error("backup failed", extra={"cause": cause, "error": str(exc)[:1000], **resource})
        reraise(failure, exc)

    # Idempotent per slot: a manifest for the slot means the slot is done.
    try:
        store.head(mkey)
    except NotFound:
        pass
    except Exception as exc:
        fail(exc)
    else:
        log.info("slot already backed up: nothing to do", extra=resource)
        tel.audit(AuditEvent("backup.create", "skipped", actor, resource, reason="slot_already_backed_up"))
        return BackupResult("skipped", mkey, duration_seconds=time.monotonic() - t0)

    try:
        # Fail before writing anything if the key is unusable.
        kms_key = store.resolve_encryption_key(req.kms_key_id)
        lock = {"on": True, "off": False}.get(req.object_lock)
        if lock is None:
            lock = store.object_lock_enabled()
        elif lock and not store.object_lock_enabled():
            raise BackupFailed("object_lock=on but the bucket has no Object Lock", cause="object_lock_unavailable")
    except Exception as exc:
        fail(exc)
    retain_until = started + retention.for_class(gfs).delta if lock else None
    options = WriteOptions(
        encryption_key=kms_key,
        tags={layout.GFS_TAG_KEY: gfs.value, layout.SLOT_TAG_KEY: layout.slot_id(slot)},
        retain_until=retain_until,
    )
    dkey = layout.data_key(req.prefix, req.database, slot, run_id)
    resource["object_key"] = dkey
    log.info("backup starting", extra={**resource, "object_lock": lock, "tier": plan.tier.value})

    try:
        obj, stats, counts, versions = _dump_and_upload(req, store, db, dkey, options)
    except Exception as exc:
        fail(exc, dkey)

    finished = datetime.now(UTC)
    manifest = Manifest(
        run_id=run_id, database=req.database, tier=plan.tier, slot=slot, gfs_class=gfs,
        object_key=dkey, version_id=obj.version_id, stored_bytes=stats.stored_bytes, raw_bytes=stats.raw_bytes,
        sha256=stats.sha256, compression=f"{ALGORITHM}-{req.compression_level}", dump_format="pg_dump -Fc -Z0",
        encryption_key=kms_key, lock_mode="COMPLIANCE" if lock else None, retain_until=retain_until,
        started_at=started, finished_at=finished, server_version=versions["server"],
        pg_dump_version=versions["pg_dump"], tool_version=VERSION, row_counts=counts,
    )
    try:
        mobj = store.put_if_absent(mkey, manifest.to_bytes(), options)
    except AlreadyExists:
        # A concurrent run of the same slot claimed it first: its backup stands, ours is an
        # unreferenced object that the lifecycle rule expires with its GFS tag.
        log.warning("a concurrent run claimed the slot first", extra=resource)
        tel.audit(AuditEvent("backup.create", "skipped", actor, resource, reason="concurrent_run_claimed_slot"))
        return BackupResult("lost_race", mkey, object_key=dkey, duration_seconds=time.monotonic() - t0)
    except Exception as exc:
        fail(exc, dkey)
    duration = time.monotonic() - t0
    result = BackupResult(
        "created", mkey, manifest=manifest.model_dump(mode="json"), object_key=dkey, duration_seconds=duration,
        details={"manifest_version_id": mobj.version_id, "throughput_mb_s": round(stats.raw_bytes / MiB / duration, 1)},
    )
    tel.publish(req.database, {
        "BackupSuccess": (1, "Count"), "BackupDurationSeconds": (duration, "Seconds"),
        "BackupBytes": (stats.stored_bytes, "Bytes"), "BackupRawBytes": (stats.raw_bytes, "Bytes"),
        "BackupAgeSeconds": (0, "Seconds"),
    })
    tel.audit(AuditEvent("backup.create", "success", actor, {**resource, "version_id": obj.version_id},
                         details={"stored_bytes": stats.stored_bytes, "sha256": stats.sha256,
                                  "duration_seconds": round(duration, 3)}))
    log.info("backup created", extra={**resource, "stored_bytes": stats.stored_bytes, "raw_bytes": stats.raw_bytes,
                                      "duration_seconds": round(duration, 3)})
    return result


def _dump_and_upload(req: BackupRequest, store: ObjectStore, db: DbConn, key: str, options: WriteOptions):
    target = db.with_db(req.database)
    versions = {"pg_dump": tool_version("pg_dump")}
    with exported_snapshot(target) as (conn, snapshot), tempfile.NamedTemporaryFile(prefix="pg_dump-") as err:
        versions["server"] = server_version(conn)
        proc = subprocess.Popen(
            [pg_bin("pg_dump"), "--format=custom", "--compress=0", f"--snapshot={snapshot}", "--no-password"],
            stdout=subprocess.PIPE, stderr=err, env=target.env(),
        )
        upload = store.start_upload(key, options)
        try:
            stats = upload_stream(
                proc.stdout, upload.upload_part, part_size=req.part_size_mb * MiB,
                level=req.compression_level, threads=req.compression_threads,
            )
            rc = proc.wait()
            if rc != 0:
                raise BackupFailed(f"pg_dump exited with status {rc}: {_tail(err.name)}", cause="pg_dump_failed",
                                   returncode=rc)
            # In the dump's snapshot, and before the object is completed: a lost session
            # must abort the upload, not leave a complete, locked object without a manifest.
            counts = row_counts(conn, matviews="definition")
            obj: StoredObject = upload.complete()
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            upload.abort()
            raise
        finally:
            proc.stdout.close()
        if obj.size != stats.stored_bytes:
            raise BackupFailed(f"stored object has {obj.size} bytes, streamed {stats.stored_bytes}",
                               cause="size_mismatch", object_key=key)
        if obj.encryption_key not in (options.encryption_key, req.kms_key_id):
            raise BackupFailed(f"object encrypted with {obj.encryption_key!r}, not the configured key",
                               cause="encryption_key_mismatch", expected=options.encryption_key,
                               actual=obj.encryption_key, object_key=key)
    return obj, stats, counts, versions
