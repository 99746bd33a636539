"""The storage adapter interface the core needs: small on purpose (S3 now, Azure Blob later).

An adapter raises `errors.NotFound` / `errors.AlreadyExists` / `errors.StorageError`, never
an SDK's exception type, so the core stays cloud-neutral.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class WriteOptions:
    """How every backup object is written: encrypted with the key, tagged, maybe locked."""

    encryption_key: str  # KMS key id/ARN/alias (Azure: customer-managed key / scope)
    tags: dict[str, str] = field(default_factory=dict)
    retain_until: datetime | None = None  # compliance-mode lock; None: no per-object lock


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str | None
    size: int
    encryption_key: str | None = None  # the key the store says the object is encrypted with
    lock_mode: str | None = None
    retain_until: datetime | None = None


@dataclass(frozen=True)
class ObjectVersion:
    """One version (or delete marker) of a key, with the time the store itself gave it."""

    key: str
    version_id: str | None
    stored_at: datetime  # set by the store on write: a writer cannot choose it
    delete_marker: bool = False


class Upload(Protocol):
    """One multipart upload. upload_part may be called from several threads."""

    def upload_part(self, number: int, data: bytes) -> None: ...

    def complete(self) -> StoredObject: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    def resolve_encryption_key(self, key_id: str) -> str:
        """Check the key is usable for encryption; return its canonical id. Raise if not."""
        ...

    def object_lock_enabled(self) -> bool: ...

    def start_upload(self, key: str, options: WriteOptions) -> Upload: ...

    def put_if_absent(self, key: str, data: bytes, options: WriteOptions) -> StoredObject:
        """Create `key` only if it does not exist (raise AlreadyExists otherwise)."""
        ...

    def put(self, key: str, data: bytes, options: WriteOptions) -> StoredObject: ...

    def head(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def read(self, key: str, version_id: str | None = None) -> bytes: ...

    def iter_chunks(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def list_versions(self, prefix: str) -> list[ObjectVersion]:
        """Every version and delete marker under `prefix`: per key, oldest first.

        A store without versioning lists each key once with version_id None (S3: "null"): its
        current content, which is the key's first write only if nothing could have replaced it
        (verify's TAMPER_EVIDENCE, lambdas/core/verify.py)."""
        ...
