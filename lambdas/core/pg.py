"""PostgreSQL access: credentials to libpq settings, exported snapshots, row counts.

Credentials come from a DSN, from a secret (Secrets Manager JSON, fetched by the caller's
resolver) or from the PG* libpq environment. They reach the client tools through their
environment (never argv, never a log line).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import InvalidRequest

# libpq keyword <-> environment variable (the subset a backup function needs)
_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "dbname": "PGDATABASE",
    "service": "PGSERVICE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
# Secrets Manager's RDS secret JSON -> libpq keyword
_SECRET_KEYS = {"host": "host", "port": "port", "username": "user", "user": "user", "password": "password",
                "dbname": "dbname", "sslmode": "sslmode"}


def pg_bin(tool: str) -> str:
    """Find a PostgreSQL client tool: $PG_BIN, then PATH."""
    if os.environ.get("PG_BIN"):
        return str(Path(os.environ["PG_BIN"]) / tool)
    found = shutil.which(tool)
    if not found:
        raise FileNotFoundError(f"{tool} not found: install the PostgreSQL 15 client or set PG_BIN")
    return found


class DbConn:
    """libpq parameters for one server; repr never shows the password."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = {k: str(v) for k, v in params.items() if v not in (None, "")}

    @classmethod
    def resolve(
        cls,
        *,
        dsn: str | None = None,
        secret_arn: str | None = None,
        secret_resolver: Callable[[str], Mapping[str, Any]] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> DbConn:
        environ = os.environ if environ is None else environ
        if dsn:
            try:
                return cls(conninfo_to_dict(dsn))
            except psycopg.ProgrammingError:
                # The message could quote the DSN (and its password): do not pass it on.
                fix = "use key=value pairs (host=... port=... user=...) or a postgresql:// URI"
                problem = "is not a valid libpq connection string"
                raise InvalidRequest([{"field": "db_dsn", "problem": problem, "fix": fix}]) from None
        if secret_arn:
            if secret_resolver is None:
                raise RuntimeError("a secret ARN was given but no secret resolver")
            secret = secret_resolver(secret_arn)
            params = {_SECRET_KEYS[k]: v for k, v in secret.items() if k in _SECRET_KEYS}
            # The secret holds credentials; the server to reach is the site's own: the DR
            # site reads the primary's replicated secret but must reach its promoted replica.
            for key, var in (("host", "PGHOST"), ("port", "PGPORT")):
                if environ.get(var):
                    params[key] = environ[var]
            return cls(params)
        return cls({k: environ[v] for k, v in _ENV.items() if environ.get(v)})

    def with_db(self, dbname: str) -> DbConn:
        return DbConn({**self._params, "dbname": dbname})

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for pg_dump / pg_restore: the caller's minus its PG*, plus ours."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if not k.startswith("PG") or k == "PG_BIN"}
        env.update({_ENV[k]: v for k, v in self._params.items() if k in _ENV})
        env.setdefault("PGCONNECT_TIMEOUT", "15")
        return env

    def connect(self, *, application_name: str | None = None, **kwargs: Any) -> psycopg.Connection:
        params = {"connect_timeout": "15", **self._params}
        if application_name:
            params["application_name"] = application_name
        return psycopg.connect(make_conninfo(**params), **kwargs)

    @property
    def dbname(self) -> str | None:
        return self._params.get("dbname")

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "password" else v) for k, v in self._params.items()}
        return f"DbConn({shown})"


def tool_version(tool: str) -> str:
    out = subprocess.run([pg_bin(tool), "--version"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def user_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """
    ).fetchall()
    return [(s, t) for s, t in rows]


# Large objects live in one catalog table, not in a user table: counted under this key.
LARGE_OBJECTS_KEY = "pg_catalog.pg_largeobject_metadata"


def materialized_views(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Populated materialized views (the ones pg_restore refreshes): schema, name, definition."""
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'm' AND c.relispopulated
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """
    ).fetchall()
    return [(s, v, d) for s, v, d in rows]


def row_counts(conn: psycopg.Connection, *, matviews: str = "contents") -> dict[str, int]:
    """Exact row counts in the connection's snapshot, keyed "schema.name": every table, every
    populated materialized view, and the large objects (LARGE_OBJECTS_KEY, when there are any).

    A dump holds a materialized view's definition, not its rows: pg_restore refreshes it. So the
    backup counts what that refresh gives (matviews="definition": the query run in the dump's
    snapshot, whatever the view's staleness), and verify counts the restored view ("contents").
    """
    counts = {}
    for schema, table in user_tables(conn):
        q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        counts[f"{schema}.{table}"] = conn.execute(q).fetchone()[0]
    for schema, view, definition in materialized_views(conn):
        if matviews == "definition":
            q = sql.SQL("SELECT count(*) FROM ({}) AS q").format(sql.SQL(definition.strip().rstrip(";")))
        else:
            q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(view))
        counts[f"{schema}.{view}"] = conn.execute(q).fetchone()[0]
    large_objects = conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()[0]
    if large_objects:
        counts[LARGE_OBJECTS_KEY] = large_objects
    return counts


# The snapshot session sits idle in its transaction while pg_dump streams: a server's
# idle_in_transaction_session_timeout (or a statement / lock timeout set for the role or the
# database) would end it mid-backup. pg_dump turns these off for its own session; so do we.
SNAPSHOT_SESSION_SETTINGS = {"idle_in_transaction_session_timeout": "0", "statement_timeout": "0",
                             "lock_timeout": "0"}
SNAPSHOT_APPLICATION_NAME = "postoucancer-backup-snapshot"


@contextmanager
def exported_snapshot(db: DbConn) -> Iterator[tuple[psycopg.Connection, str]]:
    """A read-only REPEATABLE READ transaction and its exported snapshot id.

    pg_dump --snapshot=<id> dumps exactly what this transaction sees, so the row counts
    taken here describe the dump even while the application writes.
    """
    conn = db.connect(autocommit=True, application_name=SNAPSHOT_APPLICATION_NAME)
    try:
        for name, value in SNAPSHOT_SESSION_SETTINGS.items():
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.autocommit = False
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield conn, snapshot
    finally:
        with suppress(psycopg.Error):  # a session the server ended cannot roll back: closing is enough
            conn.rollback()
        conn.close()


def server_version(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT version()").fetchone()[0]
