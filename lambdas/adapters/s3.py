"""S3 implementation of the storage interface (boto3). Also serves S3-compatible stores.

Writes are SSE-KMS with the configured key, tagged, and - when the bucket has Object
Lock - under a COMPLIANCE retention set at creation and checked after completion.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, FlexibleChecksumError

from lambdas.core.errors import AlreadyExists, NotFound, StorageError
from lambdas.core.storage import ObjectVersion, StoredObject, WriteOptions

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _storage_error(exc: ClientError, what: str) -> StorageError:
    return StorageError(f"{what}: {_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}",
                        cause="storage_error", code=_code(exc))


def _write_args(options: WriteOptions) -> dict[str, Any]:
    args: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": options.encryption_key}
    if options.tags:
        args["Tagging"] = urlencode(options.tags)
    if options.retain_until is not None:
        args["ObjectLockMode"] = "COMPLIANCE"
        args["ObjectLockRetainUntilDate"] = options.retain_until
    return args


class S3Store:
    def __init__(self, bucket: str, *, s3=None, kms=None, session: boto3.session.Session | None = None) -> None:
        self.bucket = bucket
        session = session or boto3.session.Session()
        cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16)
        self.s3 = s3 or session.client("s3", config=cfg)
        self._kms = kms
        self._session = session

    @property
    def kms(self):
        if self._kms is None:
            self._kms = self._session.client("kms")
        return self._kms

    # --- interface -------------------------------------------------------------------
    def resolve_encryption_key(self, key_id: str) -> str:
        try:
            meta = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            raise StorageError(f"KMS key {key_id!r} is not usable: {_code(exc)}", cause="kms_key_unusable",
                               key=key_id, code=_code(exc)) from None
        if meta.get("KeyState") != "Enabled":
            raise StorageError(f"KMS key {key_id!r} is {meta.get('KeyState')}, not Enabled", cause="kms_key_unusable",
                               key=key_id, state=meta.get("KeyState"))
        if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT" or meta.get(
            "KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
            raise StorageError(f"KMS key {key_id!r} is not a symmetric encryption key (S3 needs one)",
                               cause="kms_key_unusable", key=key_id)
        return meta["Arn"]

    def object_lock_enabled(self) -> bool:
        try:
            conf = self.s3.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            if _code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise _storage_error(exc, f"reading Object Lock configuration of {self.bucket}") from None
        return conf.get("ObjectLockEnabled") == "Enabled"

    def start_upload(self, key: str, options: WriteOptions) -> S3Upload:
        try:
            resp = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, **_write_args(options))
        except ClientError as exc:
            raise _storage_error(exc, f"starting upload of {key}") from None
        return S3Upload(self, key, resp["UploadId"], options)

    def put_if_absent(self, key: str, data: bytes, options: WriteOptions) -> StoredObject:
        try:
            resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                                      ContentType="application/json", **_write_args(options))
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                raise AlreadyExists(f"{key} already exists", key=key) from None
            raise _storage_error(exc, f"writing {key}") from None
        return self._after_write(key, resp, len(data), options)

    def put(self, key: str, data: bytes, options: WriteOptions) -> StoredObject:
        try:
            resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                                      **_write_args(options))
        except ClientError as exc:
            raise _storage_error(exc, f"writing {key}") from None
        return self._after_write(key, resp, len(data), options)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        args = {"VersionId": version_id} if version_id not in (None, "null") else {}
        try:
            h = self.s3.head_object(Bucket=self.bucket, Key=key, **args)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise NotFound(f"{key} not found", key=key) from None
            raise _storage_error(exc, f"reading {key}") from None
        return StoredObject(key, h.get("VersionId"), h["ContentLength"], h.get("SSEKMSKeyId"),
                            h.get("ObjectLockMode"), h.get("ObjectLockRetainUntilDate"))

    def read(self, key: str, version_id: str | None = None) -> bytes:
        return b"".join(self.iter_chunks(key, version_id))

    def iter_chunks(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        args = {"VersionId": version_id} if version_id not in (None, "null") else {}
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key, **args)["Body"]
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise NotFound(f"{key} not found", key=key) from None
            raise _storage_error(exc, f"reading {key}") from None
        try:
            yield from body.iter_chunks(chunk_size)
        except FlexibleChecksumError as exc:
            # S3's own whole-object checksum (single-part objects) caught the corruption.
            raise StorageError(f"{key}: the store's checksum does not match: {exc}", cause="checksum_mismatch",
                               key=key) from None
        finally:
            body.close()

    def list_keys(self, prefix: str) -> list[str]:
        keys = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(o["Key"] for o in page.get("Contents", []))
        except ClientError as exc:
            raise _storage_error(exc, f"listing {prefix}") from None
        return keys

    def list_versions(self, prefix: str) -> list[ObjectVersion]:
        # S3 lists each key's versions newest first; "oldest first per key" is the reverse.
        per_key: dict[str, list[ObjectVersion]] = {}
        try:
            for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for v in page.get("Versions", []):
                    per_key.setdefault(v["Key"], []).append(ObjectVersion(v["Key"], v.get("VersionId"),
                                                                          v["LastModified"]))
                for d in page.get("DeleteMarkers", []):
                    per_key.setdefault(d["Key"], []).append(ObjectVersion(d["Key"], d.get("VersionId"),
                                                                          d["LastModified"], delete_marker=True))
        except ClientError as exc:
            raise _storage_error(exc, f"listing versions under {prefix}") from None
        out: list[ObjectVersion] = []
        for versions in per_key.values():
            # a stable sort keeps the listing's order among equal times (versions before markers)
            out.extend(sorted(reversed(versions), key=lambda v: (v.stored_at, v.delete_marker)))
        return out

    # --- helpers ---------------------------------------------------------------------
    def _after_write(self, key: str, resp: dict, size: int, options: WriteOptions) -> StoredObject:
        version = resp.get("VersionId")
        self._ensure_retention(key, version, options.retain_until)
        return StoredObject(key, version, size, resp.get("SSEKMSKeyId"), "COMPLIANCE" if options.retain_until else None,
                            options.retain_until)

    def _ensure_retention(self, key: str, version: str | None, until: datetime | None) -> None:
        """Check the lock asked for at creation is on the version; set it if the store dropped it.

        (S3 applies it from the create call; some S3-compatible stores - moto among them -
        ignore Object Lock headers on multipart uploads.) Compliance retention can only be
        lengthened, so this never weakens a lock.
        """
        if until is None or version in (None, "null"):
            return
        h = self.s3.head_object(Bucket=self.bucket, Key=key, VersionId=version)
        current = h.get("ObjectLockRetainUntilDate")
        if h.get("ObjectLockMode") == "COMPLIANCE" and current is not None and current >= until.replace(microsecond=0):
            return
        try:
            self.s3.put_object_retention(Bucket=self.bucket, Key=key, VersionId=version,
                                         Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
        except ClientError as exc:
            raise _storage_error(exc, f"locking {key}") from None


class S3Upload:
    def __init__(self, store: S3Store, key: str, upload_id: str, options: WriteOptions) -> None:
        self._store, self.key, self.upload_id, self._options = store, key, upload_id, options
        self._parts: dict[int, str] = {}
        self._lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        s3 = self._store.s3
        try:
            resp = s3.upload_part(Bucket=self._store.bucket, Key=self.key, UploadId=self.upload_id,
                                  PartNumber=number, Body=data)
        except ClientError as exc:
            raise _storage_error(exc, f"uploading part {number} of {self.key}") from None
        with self._lock:
            self._parts[number] = resp["ETag"]

    def complete(self) -> StoredObject:
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self._parts.items())]
        if [p["PartNumber"] for p in parts] != list(range(1, len(parts) + 1)):
            raise StorageError(f"upload of {self.key} is missing parts", cause="missing_parts")
        try:
            resp = self._store.s3.complete_multipart_upload(
                Bucket=self._store.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts})
        except ClientError as exc:
            raise _storage_error(exc, f"completing upload of {self.key}") from None
        h = self._store.head(self.key, resp.get("VersionId"))
        self._store._ensure_retention(self.key, h.version_id, self._options.retain_until)
        return StoredObject(self.key, h.version_id, h.size, h.encryption_key or resp.get("SSEKMSKeyId"),
                            "COMPLIANCE" if self._options.retain_until else None, self._options.retain_until)

    def abort(self) -> None:
        # Best effort: the bucket's lifecycle also aborts incomplete uploads (model.MULTIPART_ABORT).
        with suppress(ClientError):
            self._store.s3.abort_multipart_upload(Bucket=self._store.bucket, Key=self.key, UploadId=self.upload_id)


def secret_resolver(session: boto3.session.Session | None = None):
    """Return a function ARN -> dict reading a Secrets Manager JSON secret (RDS format)."""
    import json

    def resolve(arn: str) -> dict[str, Any]:
        client = (session or boto3.session.Session()).client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=arn)["SecretString"]
        except ClientError as exc:
            raise StorageError(f"cannot read database secret {arn}: {_code(exc)}", cause="secret_unreadable") from None
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            raise StorageError(f"database secret {arn} is not JSON", cause="secret_malformed") from None
        if not isinstance(data, dict) or "password" not in data:
            raise StorageError(f"database secret {arn} lacks a password field", cause="secret_malformed")
        return data

    return resolve
