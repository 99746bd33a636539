"""Azure entry point: the image as an Azure Container Apps Job (scheduled or manual trigger).

    python -m lambdas.azure_job [OPERATION]        OPERATION: backup | verify | gdpr-record-erasure |
                                                   gdpr-reapply | gdpr-export (default: $JOB_OPERATION)

Configuration is the Lambda's: the same environment variables (lambdas/README.md), with
BACKUP_STORE defaulting to `azure`, and the event - what a Lambda payload carries - as the
JSON object in JOB_EVENT (a job execution started with `az containerapp job start
--env-vars JOB_EVENT=...` overrides it per run). The audit actor is the job execution
(`aca:<CONTAINER_APP_JOB_NAME>/<CONTAINER_APP_JOB_EXECUTION_NAME>`, via `job`).

It hands over to the CLIs (`python -m lambdas`, `python -m lambdas.gdpr`): the result is one
JSON object on the last line of stdout and the exit status is theirs - 0 done, 1 failed,
2 invalid input - which is what marks the Container Apps execution succeeded or failed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping

OPERATIONS = {
    "backup": ("lambdas.cli", "backup"),
    "verify": ("lambdas.cli", "verify"),
    "gdpr-record-erasure": ("lambdas.gdpr", "record-erasure"),
    "gdpr-reapply": ("lambdas.gdpr", "reapply"),
    "gdpr-export": ("lambdas.gdpr", "export"),
}
_NEEDS_USER = {"gdpr-record-erasure", "gdpr-export"}


def _invalid(field: str, problem: str, fix: str) -> int:
    problems = [{"field": field, "problem": problem, "fix": fix}]
    message = f"invalid job configuration: {field}: {problem} (fix: {fix})"
    print(f"job failed: {message}", file=sys.stderr)
    print(json.dumps({"status": "invalid", "cause": "invalid_request", "message": message,
                      "details": {"problems": problems}}))
    return 2


def main(argv: list[str] | None = None, environ: MutableMapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    operation = argv[0] if argv else environ.get("JOB_OPERATION", "")
    if operation not in OPERATIONS:
        return _invalid("JOB_OPERATION", f"unknown operation {operation!r}" if operation else "is required",
                        "give one of " + ", ".join(OPERATIONS) + " as the job's argument or env JOB_OPERATION")
    raw = environ.get("JOB_EVENT", "").strip() or "{}"
    try:
        event = json.loads(raw)
    except json.JSONDecodeError as exc:
        return _invalid("JOB_EVENT", f"not JSON: {exc.msg} at char {exc.pos}",
                        'set JOB_EVENT to a JSON object, e.g. {"database": "postoucancer"}')
    if not isinstance(event, dict):
        return _invalid("JOB_EVENT", f"must be a JSON object, got {type(event).__name__}",
                        'set JOB_EVENT to a JSON object, e.g. {"database": "postoucancer"}')
    extra: list[str] = []
    if operation in _NEEDS_USER:
        if event.get("user_id") in (None, ""):
            return _invalid("JOB_EVENT.user_id", "is required for " + operation,
                            'add the user\'s id: JOB_EVENT={"user_id": "42"}')
        extra = ["--user-id", str(event["user_id"])]
    environ.setdefault("BACKUP_STORE", "azure")
    if not environ.get("AUDIT_ACTOR") and environ.get("CONTAINER_APP_JOB_NAME"):
        environ["AUDIT_ACTOR"] = (f"aca:{environ['CONTAINER_APP_JOB_NAME']}/"
                                  f"{environ.get('CONTAINER_APP_JOB_EXECUTION_NAME', 'execution')}")
        environ["AUDIT_VIA"] = "job"
    module, command = OPERATIONS[operation]
    cli = __import__(module, fromlist=["main"])
    return cli.main([command, "--event", json.dumps(event), *extra, *argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
