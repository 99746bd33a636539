"""Errors of the data plane. Each carries a machine-readable `cause` and details."""

from __future__ import annotations

from typing import Any


class DataPlaneError(Exception):
    """Base: `cause` is a stable code, `details` a JSON-able dict naming what differed."""

    cause = "error"

    def __init__(self, message: str, *, cause: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if cause:
            self.cause = cause
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "message": str(self), **({"details": self.details} if self.details else {})}


class InvalidRequest(DataPlaneError):
    """The event or environment is invalid; nothing was written."""

    cause = "invalid_request"

    def __init__(self, problems: list[dict[str, str]], what: str = "request") -> None:
        lines = [f"{p['field']}: {p['problem']} (fix: {p['fix']})" for p in problems]
        super().__init__(f"invalid {what}: " + "; ".join(lines), problems=problems)
        self.problems = problems


class BackupFailed(DataPlaneError):
    """The backup did not complete; no manifest was written, the upload was aborted."""

    cause = "backup_failed"


class StorageError(DataPlaneError):
    cause = "storage_error"


class AlreadyExists(StorageError):
    """A conditional create found the key taken (another run claimed the slot first)."""

    cause = "already_exists"


class NotFound(StorageError):
    cause = "not_found"


class VerifyFailed(DataPlaneError):
    """The backup could not be proven restorable; `cause` names the first difference."""

    cause = "verify_failed"
