"""Verify: restore a backup into a scratch database, streamed, and prove it matches its manifest.

Checks, in this order, and the first that fails names the cause:
manifest present and well-formed -> object present, same size, same encryption key ->
(restore while re-hashing the stream) SHA-256 -> zstd frame complete -> pg_restore exit
status -> per-table row counts -> SQL probes -> (optional) backup age.
A checksum mismatch fails the verify even when pg_restore accepted the data.
The scratch database is always dropped.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from drplan import layout

from .audit import Actor, AuditEvent
from .config import Probe, VerifyRequest
from .errors import NotFound, VerifyFailed
from .failure import as_failure, reraise
from .manifest import Manifest
from .pg import DbConn, pg_bin, row_counts
from .storage import ObjectStore, ObjectVersion, WriteOptions
from .stream import VerifyingReader


@dataclass
class VerifyResult:
    status: str  # passed
    manifest_key: str
    object_key: str
    restore_seconds: float
    duration_seconds: float
    backup_age_seconds: float
    row_counts: dict[str, int]
    probes: dict[str, Any] = field(default_factory=dict)
    record_key: str | None = None
    tamper_evidence: str = "versions"  # what proves the manifest read is the backup's own (TAMPER_EVIDENCE)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


# How far the store's clock and the writer's may disagree before a time is called impossible.
CLOCK_SKEW = timedelta(minutes=5)
_MANIFEST_KEY = re.compile(
    r"^(?P<base>(?:.+/)?(?P<database>[^/]+))/" + layout.MANIFEST_DIR + r"/(?P<slot>[^/]+)\.json$")


# What makes the manifest verify reads the backup's own, weakest last. A store without
# versioning (Azurite; an Azure account or S3 bucket with versioning off) lists a key once, with
# no version id: that entry is only its current content, the first write only if nothing could
# have replaced it since - which a locked policy still in force guarantees, and nothing else.
VERSIONS = "versions"  # every write is a version: anything written over the first is listed after it
IMMUTABLE = "immutable"  # no versions, but a locked (COMPLIANCE) policy in force: it cannot have been replaced
NO_EVIDENCE = "none"  # no versions, no lock in force: a replacement or a deletion cannot be detected
TAMPER_EVIDENCE = (VERSIONS, IMMUTABLE, NO_EVIDENCE)


@dataclass(frozen=True)
class ManifestHistory:
    """A manifest key's versions: the first is the backup's own (created with If-None-Match and
    locked like the data); anything written after it is someone else's. `evidence` says how
    much of that the store can show (TAMPER_EVIDENCE)."""

    key: str
    first: ObjectVersion | None
    later: tuple[ObjectVersion, ...] = ()
    evidence: str = VERSIONS


def _unversioned(v: ObjectVersion) -> bool:
    # S3 names the version of a write made while versioning was off "null": it is overwritten in place.
    return v.version_id in (None, "null")


def manifest_history(store: ObjectStore, key: str, now: datetime | None = None) -> ManifestHistory:
    versions = [v for v in store.list_versions(key) if v.key == key]
    first = next((v for v in versions if not v.delete_marker), None)
    later = tuple(v for v in versions if v is not first)  # the tool writes exactly one version, ever
    evidence = VERSIONS
    if first is not None and _unversioned(first) and not later:
        head = store.head(key)
        locked = head.lock_mode == "COMPLIANCE" and head.retain_until is not None and \
            head.retain_until > (now or datetime.now(UTC))
        evidence = IMMUTABLE if locked else NO_EVIDENCE
    return ManifestHistory(key, first, later, evidence)


def newest_manifest(store: ObjectStore, prefix: str, database: str) -> str:
    """The manifest whose first version the store wrote last: the backup that really finished
    last, whatever slot it claims (a future-dated slot cannot shadow the others) and whatever
    was written or deleted over it later (a delete marker cannot hide it)."""
    firsts: dict[str, ObjectVersion] = {}
    for v in store.list_versions(layout.manifests_prefix(prefix, database)):
        if v.key.endswith(".json") and not v.delete_marker:
            firsts.setdefault(v.key, v)
    if not firsts:
        raise VerifyFailed(f"no backup of {database!r} under {layout.manifests_prefix(prefix, database)}",
                           cause="no_backup", database=database)
    # The store's clock has a second's resolution: a manifest forged in the same second as a real
    # one ties with it, and the slot its key claims must not break the tie in its favour.
    return max(firsts.values(), key=lambda v: (v.stored_at, not _claims_the_future(v), v.key)).key


def _claims_the_future(v: ObjectVersion) -> bool:
    match = _MANIFEST_KEY.match(v.key)
    slot = layout.parse_slot_id(match["slot"]) if match else None
    return slot is not None and slot > v.stored_at + CLOCK_SKEW


def _cross_check(m: Manifest, key: str) -> None:
    """Every field that the key layout fixes must agree with the key: a manifest of one slot
    cannot vouch for another slot's (or database's) object."""
    match = _MANIFEST_KEY.match(key)
    if match is None:
        raise VerifyFailed(f"{key} is not a manifest key (<prefix>/<database>/{layout.MANIFEST_DIR}/<slot>.json)",
                           cause="manifest_mismatch", manifest_key=key)
    slot = match["slot"]
    expected_object = f"{match['base']}/{layout.DATA_DIR}/{slot}/{m.run_id}{layout.DUMP_SUFFIX}"
    problems = [p for p in (
        m.database != match["database"] and f"database is {m.database!r}, the key says {match['database']!r}",
        layout.slot_id(m.slot) != slot and f"slot is {layout.slot_id(m.slot)}, the key says {slot}",
        m.object_key != expected_object and f"object_key is {m.object_key!r}, the layout says {expected_object!r}",
    ) if p]
    if problems:
        raise VerifyFailed(f"manifest {key} does not match its key: " + "; ".join(problems),
                           cause="manifest_mismatch", manifest_key=key, problems=problems)


def read_manifest(store: ObjectStore, key: str) -> tuple[Manifest, ManifestHistory]:
    """The manifest's first version, validated and cross-checked against its key, and its history."""
    history = manifest_history(store, key)
    if history.first is None:
        raise VerifyFailed(f"manifest {key} not found", cause="manifest_missing", manifest_key=key)
    try:
        raw = store.read(key, history.first.version_id)
    except NotFound:
        raise VerifyFailed(f"manifest {key} not found", cause="manifest_missing", manifest_key=key) from None
    m = Manifest.parse(raw, key)
    _cross_check(m, key)
    return m, history


def _check_history(m: Manifest, history: ManifestHistory) -> None:
    if history.later:
        written = ", ".join(f"{'a delete marker' if v.delete_marker else 'version ' + str(v.version_id)}"
                            f" at {v.stored_at.isoformat()}" for v in history.later[:5])
        raise VerifyFailed(
            f"manifest {history.key} was written over after the backup: {written}. The first version (the"
            " backup's own, read by restores) is intact; the backup tool never writes a second one: find who did",
            cause="manifest_tampered", manifest_key=history.key,
            later_versions=[{"version_id": v.version_id, "stored_at": v.stored_at.isoformat(),
                             "delete_marker": v.delete_marker} for v in history.later])
    stored_at = history.first.stored_at
    for name, value in (("slot", m.slot), ("finished_at", m.finished_at)):
        if value > stored_at + CLOCK_SKEW:
            raise VerifyFailed(f"manifest {history.key}: {name} {value.isoformat()} is after the store wrote it"
                               f" ({stored_at.isoformat()}): a future-dated backup", cause="manifest_future_dated",
                               manifest_key=history.key, field=name, stored_at=stored_at.isoformat())


def _tail(path: str, limit: int = 2000) -> str:
    with open(path, "rb") as f:
        return f.read()[-limit:].decode(errors="replace").strip()


def run_verify(
    req: VerifyRequest,
    store: ObjectStore,
    db: DbConn,
    *,
    actor: Actor,
    telemetry: Any = None,
    run_id: str | None = None,
) -> VerifyResult:
    from .telemetry import Telemetry

    tel = telemetry or Telemetry()
    log = tel.log
    t0 = time.monotonic()
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"
    resource: dict[str, Any] = {"database": req.database, "run_id": run_id, "manifest_key": req.manifest_key}
    manifest: Manifest | None = None
    try:
        mkey = req.manifest_key or newest_manifest(store, req.prefix, req.database)
        resource["manifest_key"] = mkey
        manifest, history = read_manifest(store, mkey)
        resource.update(object_key=manifest.object_key, version_id=manifest.version_id,
                        slot=layout.slot_id(manifest.slot))
        _check_history(manifest, history)
        if history.evidence == NO_EVIDENCE:
            log.warning("manifest tampering cannot be detected: the store keeps no versions of it and no lock"
                        " in force protects it (the verified manifest is its current content)",
                        extra={**resource, "tamper_evidence": history.evidence})
        log.info("verify starting", extra=resource)
        result = _verify(req, store, db, mkey, manifest, history.first.stored_at, run_id, log)
        result.tamper_evidence = history.evidence
    except Exception as exc:
        failure = as_failure(exc)
        cause, details = failure.cause, failure.details
        duration = time.monotonic() - t0
        tel.publish(req.database, {"VerifySuccess": (0, "Count"), "VerifyDurationSeconds": (duration, "Seconds")})
        tel.audit(AuditEvent("backup.verify", "failure", actor, resource, reason=cause,
                             details={"error": str(exc)[:1000], **_jsonable(details)}))
        log.error("verify failed", extra={**resource, "cause": cause, "error": str(exc)[:1000]})
        if req.record and manifest is not None:
            _record(store, req, manifest, run_id, {"status": "failed", "manifest_key": resource["manifest_key"],
                                                   "cause": cause, "error": str(failure)[:2000],
                                                   "details": _jsonable(details)}, log)
        reraise(failure, exc)
    result.duration_seconds = time.monotonic() - t0
    if req.record:
        result.record_key = _record(store, req, manifest, run_id, {"status": "passed", **result.as_dict()}, log)
    tel.publish(req.database, {
        "VerifySuccess": (1, "Count"), "VerifyDurationSeconds": (result.duration_seconds, "Seconds"),
        "RestoreDurationSeconds": (result.restore_seconds, "Seconds"),
        "BackupBytes": (manifest.stored_bytes, "Bytes"), "BackupAgeSeconds": (result.backup_age_seconds, "Seconds"),
    })
    tel.audit(AuditEvent("backup.verify", "success", actor, resource,
                         details={"restore_seconds": round(result.restore_seconds, 3),
                                  "tables": len(result.row_counts), "tamper_evidence": result.tamper_evidence}))
    log.info("verify passed", extra={**resource, "restore_seconds": round(result.restore_seconds, 3)})
    return result


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))


def _record(store, req, manifest: Manifest, run_id: str, body: dict, log) -> str | None:
    key = layout.verification_key(req.prefix, req.database, manifest.slot, run_id)
    try:
        store.put(key, json.dumps({"manifest_key": body.get("manifest_key"), **body}, default=str).encode(),
                  WriteOptions(encryption_key=manifest.encryption_key))
    except Exception as exc:  # the record is evidence, not the verdict: never mask the result
        log.warning("could not write the verification record", extra={"key": key, "error": str(exc)[:500]})
        return None
    return key


def _verify(req: VerifyRequest, store: ObjectStore, db: DbConn, mkey: str, m: Manifest, stored_at: datetime,
            run_id: str, log):
    with restored(store, db, m, log=log) as (target, restore_seconds), target.connect(autocommit=True) as conn:
        counts = row_counts(conn)
        _compare_counts(m.row_counts, counts)
        probes = _run_probes(conn, req.probes)
    # From the earlier of the two times: a forged finished_at cannot make a backup look fresh.
    age = (datetime.now(UTC) - min(m.finished_at, stored_at)).total_seconds()
    if req.max_age_hours is not None and age > req.max_age_hours * 3600:
        raise VerifyFailed(f"the newest backup is {age / 3600:.1f} h old (limit {req.max_age_hours} h)",
                           cause="backup_stale", age_seconds=age)
    return VerifyResult("passed", mkey, m.object_key, restore_seconds, 0.0, age, counts, probes)


def load_manifest(store: ObjectStore, key: str) -> Manifest:
    """A manifest's first version, validated and cross-checked against its key, for a restore
    (VerifyFailed: manifest_missing / manifest_malformed / manifest_mismatch). Versions written
    over it later do not stop a restore (they cannot change what it reads): verify reports them."""
    return read_manifest(store, key)[0]


def check_object(store: ObjectStore, m: Manifest) -> None:
    """The manifest's object exists with its size and encryption key (before any restore)."""
    try:
        head = store.head(m.object_key, m.version_id)
    except NotFound:
        raise VerifyFailed(f"backup object {m.object_key} (version {m.version_id}) not found",
                           cause="object_missing", object_key=m.object_key, version_id=m.version_id) from None
    if head.size != m.stored_bytes:
        raise VerifyFailed(
            f"backup object {m.object_key} has {head.size} bytes, manifest says {m.stored_bytes}"
            + (" (truncated)" if head.size < m.stored_bytes else ""),
            cause="object_size_mismatch", expected=m.stored_bytes, actual=head.size, object_key=m.object_key)
    if head.encryption_key is not None and head.encryption_key != m.encryption_key:
        raise VerifyFailed(f"backup object is encrypted with {head.encryption_key}, manifest says {m.encryption_key}",
                           cause="encryption_key_mismatch", expected=m.encryption_key, actual=head.encryption_key)


@contextmanager
def restored(store: ObjectStore, db: DbConn, m: Manifest, *, name_prefix: str = "verify",
             log: Any = None) -> Iterator[tuple[DbConn, float]]:
    """Check the object, restore it (streamed, checked) into a new scratch database on `db`'s
    server and yield (its DbConn, restore seconds). The scratch database is always dropped,
    also when the restore or the caller's block fails."""
    check_object(store, m)
    scratch = f"{name_prefix}_{layout.slot_id(m.slot).replace('-', '').lower()}_{uuid.uuid4().hex[:8]}"
    admin = db.connect(autocommit=True)
    try:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
        try:
            restore_seconds = _restore(store, db.with_db(scratch), m)
            yield db.with_db(scratch), restore_seconds
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            if log is not None:
                log.info("scratch database dropped", extra={"scratch_database": scratch})
    finally:
        admin.close()


def _restore(store: ObjectStore, target: DbConn, m: Manifest) -> float:
    reader = VerifyingReader(store.iter_chunks(m.object_key, m.version_id))
    t0 = time.monotonic()
    with tempfile.NamedTemporaryFile(prefix="pg_restore-") as err:
        proc = subprocess.Popen(
            [pg_bin("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
             "--no-password", f"--dbname={target.dbname}"],
            stdin=subprocess.PIPE, stderr=err, stdout=subprocess.DEVNULL, env=target.env(),
        )
        broken = False
        try:
            for raw in reader.raw():
                try:
                    proc.stdin.write(raw)
                except BrokenPipeError:
                    broken = True  # pg_restore gave up; keep hashing to name the real cause
                    break
            reader.drain()
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
            rc = proc.wait()
        seconds = time.monotonic() - t0
        stats = reader.stats
        # The stored bytes first: they are the root cause if anything else failed too.
        if stats.stored_bytes != m.stored_bytes:
            raise VerifyFailed(f"read {stats.stored_bytes} bytes of the backup object, manifest says {m.stored_bytes}",
                               cause="object_size_mismatch", expected=m.stored_bytes, actual=stats.stored_bytes,
                               restore_returncode=rc)
        if stats.sha256 != m.sha256:
            raise VerifyFailed(f"SHA-256 of backup object {m.object_key} is {stats.sha256}, manifest says {m.sha256}"
                               + (" (pg_restore had accepted the data)" if rc == 0 else ""),
                               cause="checksum_mismatch", expected=m.sha256, actual=stats.sha256,
                               restore_returncode=rc)
        if reader.decompress_error or not reader.complete_frame:
            raise VerifyFailed(f"the backup does not decompress: {reader.decompress_error or 'incomplete zstd frame'}",
                               cause="decompression_failed")
        if rc != 0 or broken:
            raise VerifyFailed(f"pg_restore failed with status {rc}: {_tail(err.name)}", cause="restore_failed",
                               returncode=rc)
        if stats.raw_bytes != m.raw_bytes:
            raise VerifyFailed(f"decompressed {stats.raw_bytes} bytes, manifest says {m.raw_bytes}",
                               cause="raw_size_mismatch", expected=m.raw_bytes, actual=stats.raw_bytes)
    return seconds


def _compare_counts(expected: dict[str, int], actual: dict[str, int]) -> None:
    diff = {t: {"expected": expected.get(t), "actual": actual.get(t)}
            for t in sorted(set(expected) | set(actual)) if expected.get(t) != actual.get(t)}
    if diff:
        names = ", ".join(f"{t} (expected {d['expected']}, got {d['actual']})" for t, d in list(diff.items())[:10])
        raise VerifyFailed(f"row counts differ from the manifest: {names}", cause="row_count_mismatch", tables=diff)


def _run_probes(conn, probes: list[Probe]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for probe in probes:
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                row = conn.execute(probe.sql).fetchone()
        except Exception as exc:
            raise VerifyFailed(f"probe {probe.name!r} failed: {exc}".strip(), cause="probe_failed",
                               probe=probe.name, sql=probe.sql) from None
        value = row[0] if row else None
        results[probe.name] = value
        bad = (probe.equals is not None and str(value) != str(probe.equals)) or (
            probe.min is not None and (value is None or float(value) < probe.min))
        if bad:
            want = f"= {probe.equals}" if probe.equals is not None else f">= {probe.min}"
            raise VerifyFailed(f"probe {probe.name!r} returned {value!r}, expected {want}", cause="probe_failed",
                               probe=probe.name, sql=probe.sql, value=str(value))
    return results
