"""Wiring shared by the entry points: validate input, build the adapters, run the core."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lambdas.core.audit import Actor
from lambdas.core.backup import run_backup
from lambdas.core.config import BackupRequest, VerifyRequest, load_request
from lambdas.core.failure import one_contract
from lambdas.core.pg import DbConn
from lambdas.core.telemetry import Telemetry
from lambdas.core.verify import run_verify


def _db(req, environ: Mapping[str, str]) -> DbConn:
    resolver = None
    if req.db_secret_arn:
        from lambdas.adapters.s3 import secret_resolver

        resolver = secret_resolver()
    dsn = req.db_dsn.get_secret_value() if req.db_dsn is not None else None
    return DbConn.resolve(dsn=dsn, secret_arn=req.db_secret_arn, secret_resolver=resolver, environ=environ)


def _store(req, environ: Mapping[str, str]):
    from lambdas.adapters.select import open_store

    return open_store(req.bucket, environ)


@one_contract
def backup(event: Any, environ: Mapping[str, str] | None = None, *, actor: Actor | None = None,
           telemetry: Telemetry | None = None, store=None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    req = load_request(BackupRequest, event, environ)  # raises InvalidRequest before any I/O
    store = store or _store(req, environ)
    return run_backup(req, store, _db(req, environ), actor=actor or Actor.from_environment(environ),
                      telemetry=telemetry or Telemetry.default()).as_dict()


@one_contract
def verify(event: Any, environ: Mapping[str, str] | None = None, *, actor: Actor | None = None,
           telemetry: Telemetry | None = None, store=None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    req = load_request(VerifyRequest, event, environ)
    store = store or _store(req, environ)
    return run_verify(req, store, _db(req, environ), actor=actor or Actor.from_environment(environ),
                      telemetry=telemetry or Telemetry.default()).as_dict()
