"""GDPR on backups: the erasure ledger, its re-application after any restore, and the export
of one user's data from a given backup.

Backups are immutable (compliance-mode Object Lock, locked vaults): a deleted user cannot be
cut out of them. Erasure is therefore enforced in two ways: every erasure is recorded in a
ledger kept *outside* the backups, and every restore re-applies the whole ledger before the
database is used again; the backups that still hold the user expire with their retention.
docs/gdpr.md states the policy; this module is the mechanism.

Ledger: one JSON object per erased user, `<ledger_prefix>/<database>/<user_id>.json`, in a
bucket that is not the backup bucket, created with a conditional put (If-None-Match: *) so an
entry is never overwritten (append-only; recording the same user twice is a no-op), SSE-KMS,
and under COMPLIANCE lock when the bucket has Object Lock, until every backup that can hold
the user has expired. An entry holds the user id, the time of erasure, who recorded it and an
optional ticket reference: no other personal data.

What "belongs to a user" is decided by the database itself, not typed here:
- Erasure (`erasure`, `apply_erasures`) is the database's own `DELETE FROM <users> WHERE id IN
  (...)` in one transaction: every foreign key's ON DELETE action applies exactly (CASCADE
  deletes, SET NULL / SET DEFAULT keep the row without the user, RESTRICT / NO ACTION refuse:
  cause erasure_restricted, nothing recorded or deleted), through any number of paths, self
  references and cycles. Rows deleted and updated per table come from pg_stat_xact_user_tables.
  Idempotent: a second run deletes nothing.
- Export (`export_user`) restores the backup, re-applies the ledger to that copy (as every
  restore does), then returns the rows that are the user's own through CASCADE foreign keys
  only: in a table with a CASCADE key to the users table, the rows whose such column is the
  user; in a table without one, the rows that hang off the user's own rows through CASCADE
  keys, to any depth. A SET NULL / SET DEFAULT column marks someone else's row.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from drplan import layout

from .audit import Actor, AuditEvent
from .config import (
    _BUCKET,
    _COMMON_ENV,
    _COMMON_FIX,
    _DB_NAME,
    _PREFIX,
    POLICY_ENV,
    BackupRequest,
    Policy,
    _Request,
    manifest_of_database,
)
from .errors import AlreadyExists, DataPlaneError, NotFound
from .failure import as_failure
from .pg import DbConn
from .storage import ObjectStore, WriteOptions
from .verify import load_manifest, newest_manifest, restored

LEDGER_FORMAT = 1
EXPORT_FORMAT = 1
DEFAULT_LEDGER_PREFIX = "gdpr/erasures"
DEFAULT_EXPORT_PREFIX = "gdpr/exports"
SCRATCH_PREFIX = "gdpr_export"  # scratch databases: gdpr_export_<slot>_<random>
LEDGER_TAG = {"gdpr": "erasure"}
# An erasure entry outlives every backup that can hold the user: a backup taken just before
# the erasure is kept at most the policy's longest retention; one more day covers the slot.
LEDGER_MARGIN = timedelta(days=1)

USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # integer ids and UUIDs; safe as a key component
_TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}\.[A-Za-z_][A-Za-z0-9_]{0,62}$"
_REFERENCE = r"^[\x20-\x7e]{1,200}$"


class GdprError(DataPlaneError):
    cause = "gdpr_error"


# --- requests ----------------------------------------------------------------------

_GDPR_ENV = {
    **_COMMON_ENV,
    "ledger_bucket": "GDPR_LEDGER_BUCKET",
    "ledger_prefix": "GDPR_LEDGER_PREFIX",
    "users_table": "GDPR_USERS_TABLE",
}
_GDPR_FIX = {
    **_COMMON_FIX,
    "user_id": "give the user's id as in the users table's primary key (digits, or a UUID): 1-64 of A-Z a-z 0-9 _ -",
    "ledger_bucket": "set env GDPR_LEDGER_BUCKET (or event.ledger_bucket) to the erasure ledger bucket, which must"
    " not be the backup bucket",
    "ledger_prefix": f"use a key prefix of letters, digits and / _ . - (default: {DEFAULT_LEDGER_PREFIX})",
    "users_table": "give the users table as schema.table (default: public.users)",
    "target_database": "give the name of the (restored) database to delete in, or omit it (= database)",
}


class _GdprRequest(_Request):
    ENV: ClassVar[dict[str, str]] = _GDPR_ENV
    FIX: ClassVar[dict[str, str]] = _GDPR_FIX

    bucket: str | None = Field(default=None, pattern=_BUCKET, description="the backup bucket (export reads it)")
    ledger_bucket: str = Field(pattern=_BUCKET)
    ledger_prefix: str = Field(default=DEFAULT_LEDGER_PREFIX, pattern=_PREFIX)
    users_table: str = Field(default="public.users", pattern=_TABLE)

    @field_validator("ledger_bucket")
    @classmethod
    def _outside_backups(cls, v: str, info: ValidationInfo) -> str:
        if v == info.data.get("bucket"):
            raise ValueError(f"{v!r} is the backup bucket: the ledger must live outside the backups")
        return v


class RecordErasureRequest(_GdprRequest):
    ENV: ClassVar[dict[str, str]] = {
        **_GDPR_ENV,
        "kms_key_id": "GDPR_LEDGER_KMS_KEY_ID",
        "object_lock": "GDPR_LEDGER_OBJECT_LOCK",
        "policy": POLICY_ENV,
    }
    FIX: ClassVar[dict[str, str]] = {
        **_GDPR_FIX,
        "kms_key_id": "set env GDPR_LEDGER_KMS_KEY_ID (or event.kms_key_id) to the ledger's KMS key ARN, id or alias",
        "erased_at": "give an ISO 8601 time with a zone, e.g. 2026-11-27T10:00:00Z, or omit it (now)",
        "reference": "give a ticket/request id of at most 200 printable ASCII characters (no personal data)",
        "object_lock": "use auto (lock when the ledger bucket has Object Lock), on, or off",
        "apply": "true to also delete the user in the database now, false to only record",
        "policy": BackupRequest.FIX["policy"],
    }

    user_id: str = Field(pattern=USER_ID_PATTERN)
    kms_key_id: str = Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9:/_-]+$")
    erased_at: AwareDatetime | None = None
    reference: str | None = Field(default=None, pattern=_REFERENCE)
    object_lock: Literal["auto", "on", "off"] = "auto"
    apply: bool = False
    target_database: str | None = Field(default=None, pattern=_DB_NAME)
    # The entry must outlive every backup holding the user: the deployment's longest retention.
    policy: Policy

    @field_validator("user_id", mode="before")
    @classmethod
    def _int_user_id(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class ReapplyRequest(_GdprRequest):
    # The ledger is per `database`; the deletions happen in `target_database` (default: the same
    # name), e.g. a copy restored next to production under another name.
    target_database: str | None = Field(default=None, pattern=_DB_NAME)


class ExportRequest(_GdprRequest):
    ENV: ClassVar[dict[str, str]] = {
        **_GDPR_ENV,
        "export_bucket": "GDPR_EXPORT_BUCKET",
        "export_prefix": "GDPR_EXPORT_PREFIX",
        "export_kms_key_id": "GDPR_EXPORT_KMS_KEY_ID",
    }
    FIX: ClassVar[dict[str, str]] = {
        **_GDPR_FIX,
        "manifest_key": "give the key of a manifest under <prefix>/<database>/manifests/, or omit it for the newest",
        "export_bucket": "set env GDPR_EXPORT_BUCKET to the bucket exports are written to, or unset it (returned)",
        "export_prefix": f"use a key prefix of letters, digits and / _ . - (default: {DEFAULT_EXPORT_PREFIX})",
        "export_kms_key_id": "set env GDPR_EXPORT_KMS_KEY_ID to the KMS key exports are encrypted with",
    }

    bucket: str = Field(pattern=_BUCKET, description="the backup bucket")
    user_id: str = Field(pattern=USER_ID_PATTERN)
    manifest_key: str | None = Field(default=None, min_length=1, max_length=1024)
    export_bucket: str | None = Field(default=None, pattern=_BUCKET)
    export_prefix: str = Field(default=DEFAULT_EXPORT_PREFIX, pattern=_PREFIX)
    export_kms_key_id: str | None = Field(default=None, min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9:/_-]+$")

    @field_validator("user_id", mode="before")
    @classmethod
    def _int_user_id(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("manifest_key")
    @classmethod
    def _a_manifest_of_database(cls, v: str | None, info: ValidationInfo) -> str | None:
        return manifest_of_database(v, info)

    @field_validator("export_kms_key_id")
    @classmethod
    def _key_with_bucket(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("export_bucket") and not v:
            raise ValueError("export_bucket is set but no export_kms_key_id: exports are personal data")
        return v


# --- what belongs to a user: the database's own delete rules ---------------------
#
# Erasure is the database's own `DELETE FROM <users> WHERE <key> = ANY(ids)`: PostgreSQL applies
# every foreign key's ON DELETE action exactly (CASCADE deletes, SET NULL / SET DEFAULT keep
# the row without the user, RESTRICT / NO ACTION refuse), through any number of paths, self
# references and cycles included. Nothing here re-implements those rules, so the erasure and
# a DBA's DELETE on a copy of the database cannot disagree.
#
# Export needs the rows themselves, without deleting: ownership follows only the CASCADE
# foreign keys (the rows the DELETE removes with the user). A SET NULL / SET DEFAULT column
# (an editor, a reviewer) marks someone else's row that merely mentions the user: it survives
# the erasure, so it is not the user's.

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str  # schema.table holding the columns
    columns: tuple[str, ...]
    parent: str  # schema.table referenced
    parent_columns: tuple[str, ...]
    on_delete: str  # CASCADE | SET NULL | SET DEFAULT | RESTRICT | NO ACTION

    @property
    def column(self) -> str:
        return ", ".join(self.columns)


@dataclass(frozen=True)
class Ownership:
    root: str  # the users table, schema.table
    key: str  # its primary-key column
    key_type: str  # format_type() of that column, e.g. bigint, uuid
    order: tuple[str, ...]  # the users table, then every table its DELETE cascades to (breadth first)
    fks: dict[str, tuple[ForeignKey, ...]]  # table of `order` -> its CASCADE foreign keys into `order`
    all_fks: tuple[ForeignKey, ...] = ()  # every foreign key of the database (to explain a refusal)


def _ident(table: str) -> sql.Identifier:
    schema, name = table.split(".", 1)
    return sql.Identifier(schema, name)


_FKS = """
SELECT c.conname, cn.nspname || '.' || cl.relname,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       pn.nspname || '.' || pl.relname,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       c.confdeltype
FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl ON pl.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
ORDER BY 2, 1
"""


def primary_key(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)
        """,
        (table,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def ownership(conn: psycopg.Connection, users_table: str) -> Ownership:
    """The users table and the tables its DELETE cascades to, from the catalog's foreign keys."""
    if conn.execute("SELECT to_regclass(%s)", (users_table,)).fetchone()[0] is None:
        raise GdprError(f"users table {users_table} does not exist in database {conn.info.dbname}",
                        cause="users_table_missing", users_table=users_table)
    pk = primary_key(conn, users_table)
    if len(pk) != 1:
        raise GdprError(f"{users_table} must have a one-column primary key (has {len(pk)})",
                        cause="unsupported_schema", users_table=users_table)
    all_fks = tuple(ForeignKey(n, t, tuple(c), p, tuple(pc), _ACTIONS[a])
                    for n, t, c, p, pc, a in conn.execute(_FKS).fetchall())
    order = [users_table]
    for table in order:  # grows while it is walked: breadth first over the CASCADE edges
        for fk in all_fks:
            if fk.on_delete == "CASCADE" and fk.parent == table and fk.table not in order:
                order.append(fk.table)
    fks = {t: tuple(fk for fk in all_fks if fk.table == t and fk.parent in order and fk.on_delete == "CASCADE")
           for t in order}
    return Ownership(users_table, pk[0][0], pk[0][1], tuple(order), fks, all_fks)


def _load_ids(conn: psycopg.Connection, own: Ownership, ids: Iterable[str], table: str = "gdpr_ids") -> None:
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (id {} PRIMARY KEY) ON COMMIT DROP").format(
        sql.Identifier(table), sql.SQL(own.key_type)))
    ids = sorted(set(ids))
    try:
        with conn.transaction(), conn.cursor().copy(
                sql.SQL("COPY pg_temp.{} (id) FROM STDIN").format(sql.Identifier(table))) as copy:
            for uid in ids:
                copy.write_row((uid,))
    except psycopg.errors.DataError as exc:
        detail = str(exc).splitlines()[0]
        raise GdprError(f"user_id: not a valid {own.key_type} for {own.root}.{own.key}: {detail}",
                        cause="invalid_user_id", field="user_id", type=own.key_type) from None


_XACT_STATS = """
SELECT schemaname || '.' || relname, n_tup_del, n_tup_upd FROM pg_stat_xact_user_tables
WHERE schemaname NOT LIKE 'pg\\_temp%%'
"""


def _xact_changes(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """Rows deleted and updated so far in this transaction, per table (cascades included)."""
    return {t: (d, u) for t, d, u in conn.execute(_XACT_STATS).fetchall()}


def _refusal(own: Ownership, exc: psycopg.errors.IntegrityError) -> GdprError:
    diag = exc.diag
    table = f"{diag.schema_name}.{diag.table_name}" if diag.table_name else None
    fk = next((f for f in own.all_fks if f.name == diag.constraint_name and table in (f.table, f.parent)), None)
    detail = (diag.message_detail or "").strip()
    if isinstance(exc, psycopg.errors.ForeignKeyViolation) and fk is not None and fk.on_delete in (
            "RESTRICT", "NO ACTION"):
        return GdprError(
            f"the database refuses to erase: {fk.table}.{fk.column} references {fk.parent} ON DELETE {fk.on_delete}"
            f" (constraint {fk.name}; {detail}). Nothing was recorded or deleted. Fix: decide in the schema what"
            " happens to those rows when their user is deleted (ON DELETE CASCADE: deleted with the user;"
            " SET NULL: kept without them), then erase again",
            cause="erasure_restricted", table=fk.table, column=fk.column, constraint=fk.name,
            on_delete=fk.on_delete)
    return GdprError(
        f"the database refuses to erase: {diag.message_primary} ({detail or diag.constraint_name})."
        " Nothing was recorded or deleted. Fix: a SET NULL / SET DEFAULT foreign key must be able to take that"
        " value (a nullable column; a default that exists in the parent table)",
        cause="erasure_refused", table=table, constraint=diag.constraint_name, column=diag.column_name)


@contextmanager
def erasure(db: DbConn, users_table: str, user_ids: Iterable[str]) -> Iterator[dict[str, dict[str, int]]]:
    """Delete the users with the database's own DELETE, in one transaction kept open while the
    caller's block runs (the ledger write); commit when it returns, roll back if it raises.

    Yields {"deleted": rows per table, "updated": rows per table (SET NULL / SET DEFAULT)}.
    A refusal (RESTRICT / NO ACTION, a SET NULL on a NOT NULL column) raises before the block.
    """
    ids = sorted(set(user_ids))
    conn = db.connect(autocommit=False)
    try:
        # Deferred constraints would only be checked at COMMIT, after the ledger write.
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        own = ownership(conn, users_table)
        changes: dict[str, dict[str, int]] = {"deleted": dict.fromkeys(own.order, 0), "updated": {}}
        if ids:
            _load_ids(conn, own, ids)
            before = _xact_changes(conn)
            try:
                conn.execute(sql.SQL("DELETE FROM {} WHERE {} IN (SELECT id FROM pg_temp.gdpr_ids)").format(
                    _ident(own.root), sql.Identifier(own.key)))
            except psycopg.errors.IntegrityError as exc:
                raise _refusal(own, exc) from None
            for table, (d, u) in _xact_changes(conn).items():
                d0, u0 = before.get(table, (0, 0))
                if d - d0:
                    changes["deleted"][table] = d - d0
                if u - u0:
                    changes["updated"][table] = u - u0
        yield changes
        conn.commit()
    finally:
        if not conn.closed:
            conn.rollback()
            conn.close()


def apply_erasures(db: DbConn, users_table: str, user_ids: Iterable[str]) -> dict[str, int]:
    """Erase the users now (one transaction); rows deleted per table."""
    with erasure(db, users_table, user_ids) as changes:
        pass
    return changes["deleted"]


def user_rows(conn: psycopg.Connection, users_table: str, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The user's own rows per table, as JSON objects (to_jsonb), ordered by primary key.

    Own rows: the user's row; in a table with a CASCADE foreign key to the users table, the rows
    whose such column is the user (their comments, not other people's comments or replies on
    their posts); in a table without one, the rows that hang off the user's own rows through
    CASCADE foreign keys, to any depth (the media of their posts, a folder tree under their
    folder). A fixed point over row ids (ctid) in one REPEATABLE READ snapshot.
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        own = ownership(conn, users_table)
        _load_ids(conn, own, [user_id])
        marks = {t: sql.Identifier(f"gdpr_own_{i}") for i, t in enumerate(own.order)}
        for t in own.order:
            conn.execute(sql.SQL("CREATE TEMP TABLE {} (tid tid) ON COMMIT DROP").format(marks[t]))

        def mark(table: str, fks: Iterable[ForeignKey]) -> int:
            via = [sql.SQL("EXISTS (SELECT 1 FROM {} p JOIN pg_temp.{} o ON o.tid = p.ctid WHERE {})").format(
                _ident(fk.parent), marks[fk.parent],
                sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(pc), sql.Identifier(cc))
                                      for pc, cc in zip(fk.parent_columns, fk.columns, strict=True)))
                for fk in fks]
            if not via:
                return 0
            q = sql.SQL("INSERT INTO pg_temp.{m} SELECT c.ctid FROM {t} c WHERE ({via})"
                        " AND NOT EXISTS (SELECT 1 FROM pg_temp.{m} x WHERE x.tid = c.ctid)").format(
                m=marks[table], t=_ident(table), via=sql.SQL(" OR ").join(via))
            return conn.execute(q).rowcount

        conn.execute(sql.SQL("INSERT INTO pg_temp.{} SELECT ctid FROM {} WHERE {} IN (SELECT id FROM pg_temp.gdpr_ids)")
                     .format(marks[own.root], _ident(own.root), sql.Identifier(own.key)))
        direct = {t for t in own.order[1:] if any(fk.parent == own.root for fk in own.fks[t])}
        for t in direct:
            mark(t, [fk for fk in own.fks[t] if fk.parent == own.root])
        derived = [t for t in own.order[1:] if t not in direct]
        while sum(mark(t, own.fks[t]) for t in derived):
            pass
        out = {}
        for table in own.order:
            pk = [sql.Identifier(c) for c, _t in primary_key(conn, table)]
            q = sql.SQL("SELECT to_jsonb(t) FROM {} AS t WHERE t.ctid IN (SELECT tid FROM pg_temp.{})").format(
                _ident(table), marks[table])
            if pk:
                q += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(pk)
            out[table] = [r[0] for r in conn.execute(q).fetchall()]
        return out

# --- the ledger -------------------------------------------------------------------


def ledger_prefix(prefix: str, database: str) -> str:
    base = prefix.strip("/")
    return f"{base}/{database}/" if base else f"{database}/"


def ledger_key(prefix: str, database: str, user_id: str) -> str:
    return f"{ledger_prefix(prefix, database)}{user_id}.json"


def ledger_user_ids(store: ObjectStore, prefix: str, database: str) -> list[str]:
    """Every erased user id of the database's ledger; a key that is not an entry fails loudly."""
    base = ledger_prefix(prefix, database)
    ids, bad = [], []
    for key in store.list_keys(base):
        name = key[len(base):]
        uid = name.removesuffix(".json")
        if name.endswith(".json") and re.fullmatch(USER_ID_PATTERN, uid):
            ids.append(uid)
        else:
            bad.append(key)
    if bad:
        raise GdprError(f"the erasure ledger holds keys that are not entries: {bad[:10]}", cause="ledger_malformed",
                        keys=bad[:100])
    return sorted(ids)


def _fail(tel, action: str, actor: Actor, resource: dict, exc: Exception) -> DataPlaneError:
    """Audit and log a failure; the error to raise (classified: one cause for every failure)."""
    failure = as_failure(exc)
    tel.audit(AuditEvent(action, "failure", actor, resource, reason=failure.cause,
                         details={"error": str(failure)[:1000]}))
    tel.log.error(f"{action} failed", extra={**resource, "cause": failure.cause, "error": str(failure)[:1000]})
    return failure


def _telemetry(telemetry):
    from .telemetry import Telemetry

    return telemetry or Telemetry()


def record_erasure(req: RecordErasureRequest, ledger: ObjectStore, db: DbConn | None, *, actor: Actor,
                   telemetry: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """Record one erasure in the ledger (append-only, idempotent); with req.apply also delete now."""
    tel = _telemetry(telemetry)
    now = now or datetime.now(UTC)
    key = ledger_key(req.ledger_prefix, req.database, req.user_id)
    resource = {"database": req.database, "user_id": req.user_id, "ledger_bucket": req.ledger_bucket,
                "ledger_key": key}
    try:
        entry = {"format": LEDGER_FORMAT, "database": req.database, "user_id": req.user_id,
                 "erased_at": (req.erased_at or now).isoformat(), "recorded_at": now.isoformat(),
                 "recorded_by": {"principal": actor.principal, "via": actor.via}, "reference": req.reference}
        kms = ledger.resolve_encryption_key(req.kms_key_id)
        lockable = req.object_lock != "off" and ledger.object_lock_enabled()
        if req.object_lock == "on" and not lockable:
            raise GdprError(f"object_lock=on but bucket {req.ledger_bucket} has no Object Lock",
                            cause="object_lock_unavailable")
        retain = now + req.policy.retention.longest.delta + LEDGER_MARGIN if lockable else None
        if req.apply and db is None:
            raise GdprError("apply asked but no database given", cause="invalid_request")
        with ExitStack() as stack:
            # With --apply the database's DELETE runs first, in a transaction left open: a refusal
            # (RESTRICT, NO ACTION, a bad SET NULL) raises here, before anything is recorded. The
            # entry is written next and the deletion committed last, so a crash in between leaves
            # a recorded erasure that any reapply completes, never a deletion without its record.
            changes = (stack.enter_context(erasure(db.with_db(req.target_database or req.database),
                                                   req.users_table, [req.user_id])) if req.apply else None)
            try:
                stored = ledger.put_if_absent(key, json.dumps(entry, indent=2).encode(),
                                              WriteOptions(encryption_key=kms, tags=LEDGER_TAG, retain_until=retain))
                status = "recorded"
                resource["version_id"] = stored.version_id
            except AlreadyExists:
                entry = json.loads(ledger.read(key))
                status = "already_recorded"
        resource["ledger_status"] = status
        result: dict[str, Any] = {"status": status, "ledger_key": key, "entry": entry,
                                  "retain_until": retain.isoformat() if retain and status == "recorded" else None}
        if changes is not None:
            result["deleted"], result["updated"] = changes["deleted"], changes["updated"]
    except Exception as exc:
        failure = _fail(tel, "gdpr.erasure.record", actor, resource, exc)
        if failure is exc:
            raise
        raise failure from exc
    tel.audit(AuditEvent("gdpr.erasure.record", "success" if status == "recorded" else "skipped", actor, resource,
                         reason=None if status == "recorded" else "already recorded",
                         details={"applied": req.apply, "deleted": result.get("deleted"),
                                  "reference": req.reference}))
    tel.log.info("erasure recorded", extra={**resource, "status": status})
    return result


def reapply_ledger(req: ReapplyRequest, ledger: ObjectStore, db: DbConn, *, actor: Actor,
                   telemetry: Any = None) -> dict[str, Any]:
    """After a restore: delete every erased user of the ledger and what belongs to them (idempotent)."""
    tel = _telemetry(telemetry)
    t0 = time.monotonic()
    target = db.with_db(req.target_database or req.database)
    resource = {"database": req.database, "target_database": target.dbname, "ledger_bucket": req.ledger_bucket,
                "ledger_prefix": ledger_prefix(req.ledger_prefix, req.database)}
    try:
        ids = ledger_user_ids(ledger, req.ledger_prefix, req.database)
        with erasure(target, req.users_table, ids) as changes:
            pass
    except Exception as exc:
        failure = _fail(tel, "gdpr.erasure.reapply", actor, resource, exc)
        if failure is exc:
            raise
        raise failure from exc
    deleted = changes["deleted"]
    result = {"status": "applied", "ledger_entries": len(ids), "users_deleted": deleted.get(req.users_table, 0),
              "rows_deleted": sum(deleted.values()), "deleted": deleted, "updated": changes["updated"],
              "duration_seconds": round(time.monotonic() - t0, 3)}
    tel.audit(AuditEvent("gdpr.erasure.reapply", "success", actor, resource,
                         details={k: v for k, v in result.items() if k != "status"}))
    tel.log.info("erasure ledger re-applied", extra={**resource, "rows_deleted": result["rows_deleted"]})
    return result


def export_user(req: ExportRequest, store: ObjectStore, ledger: ObjectStore, db: DbConn, *, actor: Actor,
                telemetry: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """One user's own rows from one backup (manifest key, or the newest) as a JSON-able document.

    The backup is restored into a scratch database on `db`'s server by the verify path
    (streamed, checksummed); the scratch database is dropped whatever happens. A user who is
    in the erasure ledger is refused (cause user_erased): their data is not processed again.
    """
    tel = _telemetry(telemetry)
    resource: dict[str, Any] = {"database": req.database, "user_id": req.user_id, "manifest_key": req.manifest_key}
    try:
        try:
            ledger.head(ledger_key(req.ledger_prefix, req.database, req.user_id))
        except NotFound:
            pass
        else:
            raise GdprError(f"user_id: user {req.user_id} of {req.database} is in the erasure ledger: not exported",
                            cause="user_erased", field="user_id")
        mkey = req.manifest_key or newest_manifest(store, req.prefix, req.database)
        resource["manifest_key"] = mkey
        m = load_manifest(store, mkey)
        resource.update(object_key=m.object_key, version_id=m.version_id, slot=layout.slot_id(m.slot))
        erased = ledger_user_ids(ledger, req.ledger_prefix, req.database)
        with restored(store, db, m, name_prefix=SCRATCH_PREFIX, log=tel.log) as (target, restore_seconds):
            # The restored copy is what the service would see after a restore: the ledger is
            # re-applied first, so no erased user's row (nor their id in a SET NULL column)
            # can reach the export, by the same rules as the erasure itself.
            with erasure(target, req.users_table, erased):
                pass
            with target.connect(autocommit=True) as conn:
                tables = user_rows(conn, req.users_table, req.user_id)
    except Exception as exc:
        failure = _fail(tel, "gdpr.export", actor, resource, exc)
        if failure is exc:
            raise
        raise failure from exc
    counts = {t: len(rows) for t, rows in tables.items()}
    doc = {
        "format": EXPORT_FORMAT,
        "kind": "gdpr-export",
        "database": req.database,
        "user_id": req.user_id,
        "found": bool(tables.get(req.users_table)),
        "backup": {"manifest_key": mkey, "slot": m.slot.isoformat(), "finished_at": m.finished_at.isoformat(),
                   "object_key": m.object_key, "version_id": m.version_id, "sha256": m.sha256},
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "row_counts": counts,
        "tables": tables,
    }
    tel.audit(AuditEvent("gdpr.export", "success", actor, resource,
                         details={"found": doc["found"], "row_counts": counts,
                                  "restore_seconds": round(restore_seconds, 3)}))
    tel.log.info("user exported", extra={**resource, "rows": sum(counts.values())})
    return doc


def store_export(req: ExportRequest, exports: ObjectStore, doc: dict[str, Any]) -> str:
    """Write the export document (personal data: SSE-KMS with the export key); its key."""
    stamp = datetime.fromisoformat(doc["exported_at"]).strftime("%Y%m%dT%H%M%SZ")
    key = f"{req.export_prefix.strip('/')}/{req.database}/{req.user_id}/{stamp}.json"
    kms = exports.resolve_encryption_key(req.export_kms_key_id)
    exports.put_if_absent(key, json.dumps(doc, ensure_ascii=False).encode(),
                          WriteOptions(encryption_key=kms, tags={"gdpr": "export"}))
    return key
