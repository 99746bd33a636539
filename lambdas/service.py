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


@one_contract
def validate_restore(event: Any, environ: Mapping[str, str] | None = None, *, aws=None,
                     telemetry: Telemetry | None = None) -> dict[str, Any]:
    """The monthly DR drill's validation of a restore-testing job (lambdas/core/restore_test.py)."""
    from lambdas.core.restore_test import RestoreTestRequest, validate_restore

    environ = os.environ if environ is None else environ
    cfg = load_request(RestoreTestRequest, {}, environ)  # the deployment's settings, refused before any I/O
    if aws is None:
        from lambdas.adapters.aws_tests import AwsTests

        aws = AwsTests()
    return validate_restore(event, cfg, aws, log=(telemetry or Telemetry()).log).as_dict()


@one_contract
def activation_test_age(event: Any, environ: Mapping[str, str] | None = None, *, store=None) -> dict[str, Any]:
    """The daily age of the last recorded DR activation test (lambdas/core/overdue.py)."""
    from lambdas.core.overdue import ActivationAgeRequest, publish_activation_test_age

    environ = os.environ if environ is None else environ
    cfg = load_request(ActivationAgeRequest, event, environ)
    if store is None:
        from lambdas.adapters.aws_tests import AwsTests

        store = AwsTests()
    return publish_activation_test_age(cfg, store)
