"""Azure Blob Storage implementation of the storage interface (azure-storage-blob).

The same guarantees as the S3 adapter, in Blob Storage's terms:

- A backup object is a block blob built from staged blocks (`Put Block`, one per part, with a
  transactional MD5) and made visible by one `Put Block List`. Uncommitted blocks are never
  listed or readable as a blob; there is no call to discard them, the service drops them
  after seven days (so `abort()` has nothing to do: nothing is visible either way).
- Encryption: `kms_key_id` names an *encryption scope* of the account (its key may be a
  customer-managed Key Vault key), or `account` for the account's own encryption (Microsoft-
  or customer-managed key). The scope is sent on every write; the scope the service reports
  back is checked against it.
- Version-level immutability (`immutable_storage_with_versioning_enabled` on the container)
  plays Object Lock: every write carries a *locked* immutability policy until `retain_until`
  (`x-ms-immutability-policy-until-date`, `-mode: Locked` - like S3 COMPLIANCE, it cannot be
  shortened or removed), and the policy is checked on the version after the write.
- Conditional create: `If-None-Match: *` (`upload_blob(overwrite=False)`).
- Tags become blob index tags (lifecycle management filters on them).
- Versions (`list_versions`, which verify reads a manifest's first version by): with blob
  versioning on the account every write is a version and a deleted blob keeps its versions with
  none current, listed here as a delete marker after them. Without versioning a blob is listed
  once with no version id: its current content, the first write only if nothing could have
  replaced it - verify accepts that only while a locked immutability policy is in force on it,
  and otherwise reports that tampering cannot be detected (lambdas/core/verify.py).

Authentication: a connection string (local, Azurite), else `DefaultAzureCredential` on the
account URL - in Azure the job's managed identity (AZURE_CLIENT_ID picks a user-assigned one).

What Azurite (the emulator the tests use) does not do, measured: blob versioning (no version
ids), version-level immutability (never reported on a container, policies on writes are
ignored), soft delete, and reporting the encryption scope of a blob. lambdas/README.md says
how each of those paths is tested instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ContentSettings, ImmutabilityPolicy

from lambdas.core.errors import AlreadyExists, NotFound, StorageError
from lambdas.core.storage import ObjectVersion, StoredObject, WriteOptions

ACCOUNT_ENCRYPTION = "account"  # kms_key_id for "the account's own key, no scope"
_SERVICE_DEFAULT_SCOPE = "$account-encryption-key"  # how the service names the account's key
_SCOPE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{1,61})[A-Za-z0-9]$")
MiB = 1 << 20


def _status(exc: AzureError) -> int | None:
    return getattr(exc, "status_code", None)


def _code(exc: AzureError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or _status(exc) or type(exc).__name__)


# Ranges fetched ahead of the consumer: the download of the next ranges overlaps the restore of
# this one (a range is fetched only when asked for otherwise, and pg_restore waits on each
# round trip). Memory: this many ranges of the client's max_chunk_get_size (4 MiB).
READ_AHEAD_CHUNKS = 4
_DONE = object()


def _read_ahead(chunks: Iterator[bytes], depth: int) -> Iterator[bytes]:
    """`chunks`, fetched by a thread up to `depth` ahead; its errors surface here, in order."""
    import queue

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised where it reads
            put(exc)

    worker = threading.Thread(target=fetch, name="blob-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # a consumer that stops early (a failed restore) releases the thread
        worker.join(timeout=5)


def _storage_error(exc: AzureError, what: str) -> StorageError:
    if isinstance(exc, ClientAuthenticationError) or _status(exc) == 403:
        return StorageError(
            f"{what}: access denied ({_code(exc)}): check AZURE_STORAGE_CONNECTION_STRING, or the managed "
            "identity's 'Storage Blob Data Contributor' role on the container", cause="access_denied",
            code=_code(exc), status=_status(exc))
    message = getattr(exc, "message", None) or str(exc)
    return StorageError(f"{what}: {_code(exc)}: {message.splitlines()[0][:300]}", cause="storage_error",
                        code=_code(exc), status=_status(exc))


def block_id(number: int) -> str:
    """Block ids of one blob must all have the same length: a zero-padded number (the SDK
    base64-encodes it on the wire)."""
    return f"{number:010d}"


def _scope_of(key_id: str) -> str | None:
    return None if key_id == ACCOUNT_ENCRYPTION else key_id


def _reported_key(props: Any) -> str | None:
    scope = getattr(props, "encryption_scope", None)
    if scope is None:
        return None
    return ACCOUNT_ENCRYPTION if scope == _SERVICE_DEFAULT_SCOPE else scope


def _lock_mode(policy: Any) -> str | None:
    mode = getattr(policy, "policy_mode", None) if policy is not None else None
    mode = str(getattr(mode, "value", mode) or "").lower()
    # A locked policy can be neither shortened nor removed: S3's COMPLIANCE mode.
    return {"locked": "COMPLIANCE", "unlocked": "GOVERNANCE"}.get(mode)


class AzureBlobStore:
    def __init__(self, container: str, *, service: BlobServiceClient) -> None:
        self.container_name = container
        self.service = service
        self.container = service.get_container_client(container)

    # --- construction --------------------------------------------------------------
    @staticmethod
    def client_options() -> dict[str, Any]:
        """Small GETs so that a streamed read holds one 4 MiB chunk, not the SDK's 32 MiB first read."""
        return {"max_single_get_size": 4 * MiB, "max_chunk_get_size": 4 * MiB, "retry_total": 3,
                "connection_timeout": 20, "read_timeout": 120}

    @classmethod
    def from_connection_string(cls, container: str, connection_string: str, **options: Any) -> AzureBlobStore:
        return cls(container, service=BlobServiceClient.from_connection_string(
            connection_string, **{**cls.client_options(), **options}))

    @classmethod
    def from_account_url(cls, container: str, account_url: str, credential: Any = None,
                         **options: Any) -> AzureBlobStore:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(container, service=BlobServiceClient(account_url, credential=credential,
                                                         **{**cls.client_options(), **options}))

    # --- interface -----------------------------------------------------------------
    def resolve_encryption_key(self, key_id: str) -> str:
        """`account` or an encryption scope name; also proves the credential reaches the container."""
        if key_id != ACCOUNT_ENCRYPTION and not _SCOPE.match(key_id):
            raise StorageError(
                f"encryption key {key_id!r} is not an Azure encryption scope name: on Azure, kms_key_id names an "
                f"encryption scope of the storage account (3-63 letters, digits, hyphens) or {ACCOUNT_ENCRYPTION!r}",
                cause="kms_key_unusable", key=key_id)
        props = self._container_properties()
        default = getattr(props, "default_encryption_scope", None)
        if getattr(props, "prevent_encryption_scope_override", False) and default and \
                default != (_scope_of(key_id) or _SERVICE_DEFAULT_SCOPE):
            raise StorageError(
                f"container {self.container_name} forces encryption scope {default!r}; kms_key_id is {key_id!r}",
                cause="kms_key_unusable", key=key_id, container_scope=default)
        return key_id

    def object_lock_enabled(self) -> bool:
        return bool(getattr(self._container_properties(), "immutable_storage_with_versioning_enabled", False))

    def start_upload(self, key: str, options: WriteOptions) -> AzureBlockUpload:
        return AzureBlockUpload(self, key, options)

    def put_if_absent(self, key: str, data: bytes, options: WriteOptions) -> StoredObject:
        return self._put(key, data, options, overwrite=False)

    def put(self, key: str, data: bytes, options: WriteOptions) -> StoredObject:
        return self._put(key, data, options, overwrite=True)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        try:
            props = self.container.get_blob_client(key).get_blob_properties(version_id=version_id)
        except ResourceNotFoundError:
            raise NotFound(f"{key} not found", key=key) from None
        except AzureError as exc:
            raise _storage_error(exc, f"reading {key}") from None
        policy = props.immutability_policy
        return StoredObject(key, props.version_id, props.size, _reported_key(props), _lock_mode(policy),
                            getattr(policy, "expiry_time", None))

    def read(self, key: str, version_id: str | None = None) -> bytes:
        return b"".join(self.iter_chunks(key, version_id))

    def iter_chunks(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        # chunk_size is the S3 adapter's read size; here the client's max_chunk_get_size rules.
        try:
            downloader = self.container.get_blob_client(key).download_blob(version_id=version_id, max_concurrency=1)
        except ResourceNotFoundError:
            raise NotFound(f"{key} not found", key=key) from None
        except AzureError as exc:
            raise _storage_error(exc, f"reading {key}") from None
        try:
            yield from _read_ahead(downloader.chunks(), READ_AHEAD_CHUNKS)
        except AzureError as exc:
            raise _storage_error(exc, f"reading {key}") from None

    def list_keys(self, prefix: str) -> list[str]:
        try:
            return list(self.container.list_blob_names(name_starts_with=prefix))
        except AzureError as exc:
            raise _storage_error(exc, f"listing {prefix}") from None

    def list_versions(self, prefix: str) -> list[ObjectVersion]:
        try:
            blobs = list(self.container.list_blobs(name_starts_with=prefix, include=["versions"]))
        except AzureError as exc:
            raise _storage_error(exc, f"listing versions under {prefix}") from None
        return versions_oldest_first(blobs)

    # --- helpers -------------------------------------------------------------------
    def _container_properties(self):
        try:
            return self.container.get_container_properties()
        except ResourceNotFoundError:
            raise StorageError(f"container {self.container_name} does not exist", cause="storage_error",
                               code="ContainerNotFound") from None
        except AzureError as exc:
            raise _storage_error(exc, f"reading container {self.container_name}") from None

    @staticmethod
    def write_args(options: WriteOptions) -> dict[str, Any]:
        args: dict[str, Any] = {"encryption_scope": _scope_of(options.encryption_key)}
        if options.tags:
            args["tags"] = dict(options.tags)
        if options.retain_until is not None:
            args["immutability_policy"] = ImmutabilityPolicy(expiry_time=options.retain_until, policy_mode="Locked")
        return args

    def _put(self, key: str, data: bytes, options: WriteOptions, *, overwrite: bool) -> StoredObject:
        blob = self.container.get_blob_client(key)
        try:
            resp = blob.upload_blob(data, overwrite=overwrite, length=len(data), validate_content=True,
                                    content_settings=ContentSettings(content_type="application/json"),
                                    **self.write_args(options))
        except (ResourceExistsError, ResourceModifiedError):
            raise AlreadyExists(f"{key} already exists", key=key) from None
        except AzureError as exc:
            raise _storage_error(exc, f"writing {key}") from None
        return self._after_write(key, resp, options)

    def _after_write(self, key: str, resp: Mapping[str, Any], options: WriteOptions) -> StoredObject:
        """The written version as the service reports it: size, scope, lock (set if it was dropped)."""
        version = resp.get("version_id")
        if resp.get("request_server_encrypted") is False:
            raise StorageError(f"{key}: the service says the write was not encrypted", cause="encryption_key_mismatch")
        head = self.head(key, version)
        reported = head.encryption_key
        if reported is not None and reported != options.encryption_key:
            raise StorageError(f"{key} is encrypted with {reported!r}, not {options.encryption_key!r}",
                               cause="encryption_key_mismatch", expected=options.encryption_key, actual=reported)
        head = self._ensure_retention(head, options.retain_until)
        # A service that does not report the scope (Azurite) has encrypted the write with the
        # scope it accepted on the request: that is what the object is stored under.
        return StoredObject(key, head.version_id, head.size, reported or options.encryption_key, head.lock_mode,
                            head.retain_until)

    def _ensure_retention(self, head: StoredObject, until: datetime | None) -> StoredObject:
        """Check the locked policy asked for at the write is on the version; set it if missing.

        A locked policy can only be lengthened, so this never weakens one. A store that takes
        neither (Azurite) fails the write: nothing is ever called locked that is not.
        """
        if until is None or self._locked_until(head, until):
            return head
        blob = self.container.get_blob_client(head.key)
        try:
            blob.set_immutability_policy(ImmutabilityPolicy(expiry_time=until, policy_mode="Locked"),
                                         version_id=head.version_id)
        except AzureError as exc:
            raise StorageError(f"locking {head.key}: {_code(exc)}", cause="lock_not_applied", key=head.key,
                               code=_code(exc)) from None
        head = self.head(head.key, head.version_id)
        if not self._locked_until(head, until):
            raise StorageError(f"{head.key}: the service accepted the immutability policy but does not report it",
                               cause="lock_not_applied", key=head.key)
        return head

    @staticmethod
    def _locked_until(head: StoredObject, until: datetime) -> bool:
        return head.lock_mode == "COMPLIANCE" and head.retain_until is not None and \
            head.retain_until >= until.replace(microsecond=0)


def versions_oldest_first(blobs: Iterable[Any]) -> list[ObjectVersion]:
    """A List Blobs answer (include=versions) as the ObjectStore contract has it: per key,
    oldest first, delete markers after the versions they hide.

    Version ids are the UTC times the service created the versions (fixed-width ISO 8601), so
    they sort in write order. A key whose versions are all non-current was deleted: Blob Storage
    has no delete marker, so one is listed after its newest version (the deletion's own time is
    not in the listing; that version's time is a lower bound). Entries without a version id (no
    versioning) are the blob's current content and come first.
    """
    per_key: dict[str, list[Any]] = {}
    for b in blobs:
        per_key.setdefault(b.name, []).append(b)
    out: list[ObjectVersion] = []
    for name, entries in per_key.items():
        entries.sort(key=lambda b: (b.version_id is not None, b.version_id or ""))
        out.extend(ObjectVersion(name, b.version_id, b.last_modified) for b in entries)
        versioned = [b for b in entries if b.version_id is not None]
        if versioned and not any(b.is_current_version for b in versioned) and \
                all(b.version_id is not None for b in entries):
            out.append(ObjectVersion(name, None, max(b.last_modified for b in versioned), delete_marker=True))
    return out


class AzureBlockUpload:
    """Parts are staged blocks; nothing exists as a blob until complete() commits the list."""

    def __init__(self, store: AzureBlobStore, key: str, options: WriteOptions) -> None:
        self._store, self.key, self._options = store, key, options
        self._blob = store.container.get_blob_client(key)
        self._numbers: set[int] = set()
        self._lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        try:
            # validate_content: a transactional MD5, so a block damaged in transit is refused.
            self._blob.stage_block(block_id(number), data, length=len(data), validate_content=True,
                                   encryption_scope=_scope_of(self._options.encryption_key))
        except AzureError as exc:
            raise _storage_error(exc, f"uploading block {number} (part {number}) of {self.key}") from None
        with self._lock:
            self._numbers.add(number)

    def complete(self) -> StoredObject:
        numbers = sorted(self._numbers)
        if numbers != list(range(1, len(numbers) + 1)):
            raise StorageError(f"upload of {self.key} is missing blocks", cause="missing_parts")
        try:
            resp = self._blob.commit_block_list([BlobBlock(block_id(n)) for n in numbers],
                                                **self._store.write_args(self._options))
        except AzureError as exc:
            raise _storage_error(exc, f"committing the block list of {self.key}") from None
        return self._store._after_write(self.key, resp, self._options)

    def abort(self) -> None:
        # Blob Storage has no call to discard staged blocks: they stay invisible and the
        # service garbage-collects them after a week without a commit.
        return None
