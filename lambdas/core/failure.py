"""One error contract: whatever went wrong becomes a DataPlaneError with a documented cause.

The CLIs print it as their JSON result line, the Lambda handlers raise it, the audit record
and the verification record name the same cause. Database errors are classified here so that
an operator reads "database_unreachable" or "permission_denied", not a psycopg traceback.
The message of a connection error is kept (it names host, port and database, never the
password: libpq does not echo it).
"""

from __future__ import annotations

import re

from .errors import DataPlaneError

# libpq gives no SQLSTATE for a refused connection: its message is all there is.
_CONNECT_CAUSES = (
    (re.compile(r'database "[^"]*" does not exist'), "database_missing",
     "check the database name (BACKUP_DATABASE / target_database) and that it exists on that server"),
    (re.compile(r'role "[^"]*" does not exist|password authentication failed|no pg_hba\.conf entry'
                r'|authentication failed|no password supplied'), "authentication_failed",
     "check the user and password of DB_DSN / DB_SECRET_ARN and the server's pg_hba.conf"),
)
_SQLSTATE_CAUSES = {
    "42501": ("permission_denied", "grant the role what the operation needs (CREATEDB for verify / export, "
              "SELECT for backup, DELETE for erasure), or use a role that has it"),
    "3D000": ("database_missing", "check the database name and that it exists on that server"),
    "42P01": ("relation_missing", "check the table names (e.g. GDPR_USERS_TABLE) against the database"),
    "57014": ("statement_timeout", "raise statement_timeout for the tool's role, or run it off-peak"),
    "55P03": ("lock_timeout", "retry when the lock holder is gone, or raise lock_timeout"),
    "57P01": ("database_connection_lost", "the server terminated the session (shutdown or an administrator):"
              " re-run"),
    "08006": ("database_connection_lost", "the connection broke: check the server and the network, re-run"),
}


def database_failure(exc: Exception) -> DataPlaneError:
    """A psycopg error as a DataPlaneError with a cause and a fix."""
    import psycopg

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _SQLSTATE_CAUSES:
        cause, fix = _SQLSTATE_CAUSES[sqlstate]
        return DataPlaneError(f"{message} (fix: {fix})", cause=cause, sqlstate=sqlstate, fix=fix)
    if isinstance(exc, psycopg.OperationalError) and sqlstate is None:
        text = str(exc)
        for pattern, cause, fix in _CONNECT_CAUSES:
            if pattern.search(text):
                return DataPlaneError(f"{message} (fix: {fix})", cause=cause, fix=fix)
        if "connection failed" in text or "could not connect" in text or "Connection refused" in text \
                or "timeout expired" in text or "could not translate host name" in text:
            fix = "check the host and port of DB_DSN / DB_SECRET_ARN / PGHOST, that the server runs and accepts" \
                  " connections from here (security group, pg_hba.conf)"
            return DataPlaneError(f"{message} (fix: {fix})", cause="database_unreachable", fix=fix)
        if "server closed the connection" in text or "terminating connection" in text:
            cause, fix = _SQLSTATE_CAUSES["57P01"]
            return DataPlaneError(f"{message} (fix: {fix})", cause=cause, fix=fix)
    return DataPlaneError(message, cause="database_error", sqlstate=sqlstate)


def as_failure(exc: BaseException) -> DataPlaneError:
    """Any exception as a DataPlaneError (itself when it already is one)."""
    if isinstance(exc, DataPlaneError):
        return exc
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a hard dependency
        psycopg = None
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return database_failure(exc)
    if isinstance(exc, FileNotFoundError):
        fix = "install the PostgreSQL 15 client tools or set PG_BIN to their directory"
        return DataPlaneError(f"{exc} (fix: {fix})", cause="tool_missing", fix=fix)
    return DataPlaneError(f"{type(exc).__name__}: {exc}", cause="internal_error", type=type(exc).__name__)


def one_contract(fn):
    """Decorate an entry point: every exception leaves it as a classified DataPlaneError."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            failure = as_failure(exc)
            if failure is exc:
                raise
            raise failure from exc

    return wrapper


def reraise(failure: DataPlaneError, exc: BaseException):
    """Raise `failure` (the classified form of `exc`) keeping `exc` as its cause."""
    if failure is exc:
        raise exc
    raise failure from exc
