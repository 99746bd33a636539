"""GDPR on backups: record an erasure, re-apply the erasure ledger after a restore, export one user.

    python -m lambdas.gdpr record-erasure --user-id ID [--reference TICKET] [--erased-at ISO] [--apply]
    python -m lambdas.gdpr reapply [--database DB]            # after EVERY restore, before reopening writes
    python -m lambdas.gdpr export --user-id ID [--manifest-key KEY] [--output FILE]

Configuration as for `python -m lambdas`: environment variables (BACKUP_DATABASE, BACKUP_BUCKET,
DB_DSN / DB_SECRET_ARN / PG*, GDPR_LEDGER_BUCKET, GDPR_LEDGER_KMS_KEY_ID, ...; docs/gdpr.md),
then flags / --event override. `reapply` and `record-erasure --apply` act on the database the
credentials name: point them at the restored database. `export` creates (and always drops) a
scratch database on that server.
Prints the result as one JSON object on the last line of stdout (with --output, the export
document goes to FILE, mode 0600, and the summary to stdout).
Exit status: 0 done (also: already recorded, nothing to delete), 1 failed, 2 invalid input.

Lambda entry points: lambdas.gdpr.record_erasure_handler, .reapply_handler, .export_handler
(export: written to GDPR_EXPORT_BUCKET when set, else returned in the response).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from lambdas.cli import event_from_args
from lambdas.core.audit import Actor
from lambdas.core.config import load_request
from lambdas.core.errors import InvalidRequest
from lambdas.core.failure import as_failure, one_contract
from lambdas.core.gdpr import (
    ExportRequest,
    ReapplyRequest,
    RecordErasureRequest,
    export_user,
    reapply_ledger,
    record_erasure,
    store_export,
)
from lambdas.core.telemetry import Telemetry

# --- service: validate, build adapters, run the core -----------------------------------


def _db(req, environ: Mapping[str, str]):
    from lambdas.service import _db as service_db

    return service_db(req, environ)


def _s3(bucket: str, environ: Mapping[str, str] | None = None):
    """The store holding `bucket`: S3, or Azure Blob with BACKUP_STORE=azure (lambdas.adapters.select)."""
    from lambdas.adapters.select import open_store

    return open_store(bucket, environ)


@one_contract
def record(event: Any, environ: Mapping[str, str] | None = None, *, actor: Actor | None = None,
           telemetry: Telemetry | None = None, ledger=None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    req = load_request(RecordErasureRequest, event, environ)  # raises InvalidRequest before any I/O
    db = _db(req, environ) if req.apply else None
    ledger = ledger or _s3(req.ledger_bucket, environ)
    return record_erasure(req, ledger, db, actor=actor or Actor.from_environment(environ),
                          telemetry=telemetry or Telemetry.default())


@one_contract
def reapply(event: Any, environ: Mapping[str, str] | None = None, *, actor: Actor | None = None,
            telemetry: Telemetry | None = None, ledger=None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    req = load_request(ReapplyRequest, event, environ)
    ledger = ledger or _s3(req.ledger_bucket, environ)
    return reapply_ledger(req, ledger, _db(req, environ),
                          actor=actor or Actor.from_environment(environ), telemetry=telemetry or Telemetry.default())


@one_contract
def export(event: Any, environ: Mapping[str, str] | None = None, *, actor: Actor | None = None,
           telemetry: Telemetry | None = None, store=None, ledger=None, exports=None) -> dict[str, Any]:
    """The export document under "export", or (export_bucket set) its key under "export_key"."""
    environ = os.environ if environ is None else environ
    req = load_request(ExportRequest, event, environ)
    store, ledger = store or _s3(req.bucket, environ), ledger or _s3(req.ledger_bucket, environ)
    doc = export_user(req, store, ledger, _db(req, environ),
                      actor=actor or Actor.from_environment(environ), telemetry=telemetry or Telemetry.default())
    result: dict[str, Any] = {"status": "exported", "user_id": req.user_id, "found": doc["found"],
                              "manifest_key": doc["backup"]["manifest_key"], "row_counts": doc["row_counts"]}
    if req.export_bucket:
        result["export_bucket"] = req.export_bucket
        result["export_key"] = store_export(req, exports or _s3(req.export_bucket, environ), doc)
    else:
        result["export"] = doc
    return result


# --- Lambda ---------------------------------------------------------------------------

_telemetry: Telemetry | None = None


def _tel(operation: str, context: Any) -> Telemetry:
    global _telemetry
    if _telemetry is None:
        _telemetry = Telemetry.default()
    if hasattr(_telemetry.logger, "append_keys"):  # powertools Logger
        _telemetry.logger.append_keys(operation=operation, request_id=getattr(context, "aws_request_id", None))
    return _telemetry


def record_erasure_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record(event, actor=Actor.from_environment(lambda_context=context), telemetry=_tel("gdpr-record", context))


def reapply_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reapply(event, actor=Actor.from_environment(lambda_context=context), telemetry=_tel("gdpr-reapply", context))


def export_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return export(event, actor=Actor.from_environment(lambda_context=context), telemetry=_tel("gdpr-export", context))


# --- command line ---------------------------------------------------------------------

_COMMANDS = {"record-erasure": record, "reapply": reapply, "export": export}
_FLAGS = ("database", "bucket", "prefix", "tier", "ledger_bucket", "ledger_prefix", "users_table", "user_id",
          "reference", "erased_at", "manifest_key", "target_database")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lambdas.gdpr", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        s = sub.add_parser(name)
        s.add_argument("--event", default="{}", help="JSON object of request fields (docs/gdpr.md)")
        s.add_argument("--database", help="the application database (ledger entries are per database)")
        s.add_argument("--ledger-bucket", help="the erasure ledger bucket (env GDPR_LEDGER_BUCKET)")
        s.add_argument("--ledger-prefix")
        s.add_argument("--users-table", help="schema.table of the users (default public.users)")
        s.add_argument("--tier")
        if name in ("record-erasure", "reapply"):
            s.add_argument("--target-database", help="delete in this database (default: --database)")
        if name in ("record-erasure", "export"):
            s.add_argument("--user-id", required=True)
        if name == "record-erasure":
            s.add_argument("--reference", help="ticket / request id (no personal data)")
            s.add_argument("--erased-at", help="when the user was deleted, ISO 8601 with zone (default now)")
            s.add_argument("--apply", action="store_true", help="also delete the user in the database now")
        if name == "export":
            s.add_argument("--bucket", help="the backup bucket (env BACKUP_BUCKET)")
            s.add_argument("--prefix")
            s.add_argument("--manifest-key", help="export from this backup (default: the newest)")
            s.add_argument("--output", help="write the export document to this file (mode 0600), not to stdout")
    return p


def _event(args: argparse.Namespace) -> dict:
    event = event_from_args(args, _FLAGS, '{"user_id": "42"}')
    if getattr(args, "apply", False):
        event["apply"] = True
    return event


def _write_private(path: str, doc: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = _COMMANDS[args.command](_event(args))
        code = 0
        if args.command == "export" and args.output and "export" in result:
            _write_private(args.output, result.pop("export"))
            result["output"] = args.output
    except InvalidRequest as exc:
        result, code = {"status": "invalid", **exc.as_dict()}, 2
    except OSError as exc:
        result, code = {"status": "failed", "cause": "output_unwritable", "message": str(exc)}, 1
    except Exception as exc:  # DataPlaneError, or anything else classified: always the JSON line
        result, code = {"status": "failed", **as_failure(exc).as_dict()}, 1
    if code:
        print(f"{args.command} failed: {result.get('message')}", file=sys.stderr)
    print(json.dumps(result, default=str, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main())
