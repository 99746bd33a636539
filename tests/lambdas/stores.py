"""The two object stores the data-plane suite runs on, behind one test-side harness.

`S3Harness` talks to moto's S3 server, `AzureHarness` to Azurite's blob service. Each gives the
tests what they need to look at or damage the store *from outside* the adapter under test:
list what is visible, read tags / locks / encryption as the store reports them, overwrite or
corrupt an object, make a part fail, and hand out unusable keys or credentials.

Where Azurite does not emulate a feature (blob versioning, version-level immutability, soft
delete, reporting a blob's encryption scope), the Azure harness says so (`versioned`,
`locks`, `reports_encryption`) and the tests assert the documented behaviour instead; the
code paths behind those features are driven by `ServiceFake` hooks that add the response
headers the Blob REST API documents, on top of Azurite's real answers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

LOCKED_BUCKET = "pouc-backups-locked"
PLAIN_BUCKET = "pouc-backups-plain"
# Azure: encryption scopes of the account (Azurite accepts any name and does not report it back).
AZURE_SCOPE = "pouc-backups"
AZURE_OTHER_SCOPE = "pouc-other"


@dataclass
class S3Harness:
    server: Any
    s3: Any
    kms: Any
    key_id: str
    other_key_id: str
    audit: list = field(default_factory=list)
    name: str = "s3"
    versioned: bool = True  # every write has a version id
    locks: bool = True  # LOCKED_BUCKET locks every version (Object Lock)
    reports_encryption: bool = True  # HeadObject names the KMS key

    @property
    def env(self) -> dict[str, str]:
        return {"BACKUP_KMS_KEY_ID": self.key_id}

    @property
    def key_arn(self) -> str:  # the name the S3-only tests use
        return self.key_id

    def store(self, bucket: str = LOCKED_BUCKET, **kw):
        from lambdas.adapters.s3 import S3Store

        return S3Store(bucket, s3=kw.get("s3", self.s3), kms=self.kms)

    def create(self, *buckets: str) -> None:
        """Plain versioned buckets (no Object Lock)."""
        region = self.s3.meta.region_name
        for b in buckets:
            self.s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": region})
            self.s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})

    def delete(self, bucket: str, key: str) -> None:
        """What a writer without version rights can do: add a delete marker."""
        self.s3.delete_object(Bucket=bucket, Key=key)

    def keys(self, bucket: str = LOCKED_BUCKET, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def open_uploads(self, bucket: str = LOCKED_BUCKET) -> list[str]:
        """Upload state that could still become an object (must be none after a failure)."""
        return [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        args = {"VersionId": version_id} if version_id else {}
        return self.s3.get_object(Bucket=bucket, Key=key, **args)["Body"].read()

    def overwrite(self, bucket: str, key: str, data: bytes, encrypted: bool = False) -> str | None:
        """A new latest version, as anyone with write access can make."""
        args = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_id} if encrypted else {}
        return self.s3.put_object(Bucket=bucket, Key=key, Body=data, **args).get("VersionId")

    def first_version_id(self, bucket: str, key: str) -> str | None:
        """The key's oldest version (S3 lists versions newest first)."""
        return self.s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][-1]["VersionId"]

    def replace_stored_bytes(self, bucket: str, key: str, version_id: str | None, data: bytes) -> None:
        """Change the stored bytes of that very version (bit rot, or a manifest written wrong), inside moto."""
        from moto.s3.models import s3_backends
        from moto.s3.utils import compute_checksum

        stored = s3_backends["123456789012"]["aws"].get_object(bucket, key, version_id)
        stored.value = data
        if stored.checksum_algorithm:  # else the SDK's own checksum check reports the edit first
            stored.checksum_value = compute_checksum(data, stored.checksum_algorithm).decode()

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        args = {"VersionId": version_id} if version_id else {}
        return {t["Key"]: t["Value"] for t in self.s3.get_object_tagging(Bucket=bucket, Key=key, **args)["TagSet"]}

    def lock(self, bucket: str, key: str, version_id: str | None = None) -> tuple[str | None, datetime | None]:
        args = {"VersionId": version_id} if version_id else {}
        head = self.s3.head_object(Bucket=bucket, Key=key, **args)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    def encryption(self, bucket: str, key: str, version_id: str | None = None) -> str | None:
        args = {"VersionId": version_id} if version_id else {}
        head = self.s3.head_object(Bucket=bucket, Key=key, **args)
        assert head["ServerSideEncryption"] == "aws:kms"
        return head.get("SSEKMSKeyId")

    def store_failing_part(self, failing: int):
        """(a store whose UploadPart `failing` gets a 500 from the SDK's transport, parts seen, the error code)"""
        import boto3

        s3 = boto3.session.Session().client("s3")
        seen: list[int] = []

        def fail(params, **_kw):
            number = int(params["query_string"]["partNumber"])
            seen.append(number)
            if number == failing:
                error = {"Code": "InternalError", "Message": "injected part failure"}
                http = SimpleNamespace(status_code=500, headers={}, content=b"")
                return http, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}
            return None

        s3.meta.events.register("before-call.s3.UploadPart", fail)
        return self.store(s3=s3), seen, "InternalError"

    def unusable(self, case: int):
        """(store, kms_key_id, expected cause) for the two unusable-key cases of this store."""
        if case == 0:  # a key that does not exist
            return self.store(), "arn:aws:kms:eu-west-3:123456789012:key/00000000-0000-0000-0000-000000000000", \
                "kms_key_unusable"
        self.kms.disable_key(KeyId=self.other_key_id.rsplit("/", 1)[1])
        return self.store(), self.other_key_id, "kms_key_unusable"


class ServiceFake:
    """Raw response hook that adds what a real Blob service reports and Azurite does not.

    Headers as the Blob REST API documents them: Get Container Properties
    `x-ms-immutable-storage-with-versioning-enabled`; Get Blob Properties
    `x-ms-encryption-scope`, `x-ms-immutability-policy-until-date`, `x-ms-immutability-policy-mode`.
    It also records the headers of the writes (Put Blob, Put Block List) the adapter sends.
    """

    def __init__(self, *, container_immutable: bool = False, scope: str | None = None,
                 report_policies: bool = False) -> None:
        self.container_immutable, self.scope, self.report_policies = container_immutable, scope, report_policies
        self.policies: dict[str, tuple[str, str]] = {}  # blob path -> (until, mode) sent on its write
        self.writes: list[dict[str, str]] = []

    def on_request(self, pipeline_request) -> None:
        r = pipeline_request.http_request
        if r.method == "PUT" and "x-ms-immutability-policy-until-date" in r.headers:
            path = r.url.split("?", 1)[0]
            self.policies[path] = (r.headers["x-ms-immutability-policy-until-date"],
                                   r.headers.get("x-ms-immutability-policy-mode", ""))
        if r.method == "PUT" and ("comp=blocklist" in r.url or r.headers.get("x-ms-blob-type") == "BlockBlob"):
            self.writes.append(dict(r.headers))

    def on_response(self, pipeline_response) -> None:
        req, resp = pipeline_response.http_request, pipeline_response.http_response
        if req.method not in ("HEAD", "GET") or resp.status_code >= 300:
            return
        if "restype=container" in req.url and self.container_immutable:
            resp.headers["x-ms-immutable-storage-with-versioning-enabled"] = "true"
        elif "restype=container" not in req.url and "comp=" not in req.url:
            if self.scope:
                resp.headers["x-ms-encryption-scope"] = self.scope
            sent = self.policies.get(req.url.split("?", 1)[0])
            if self.report_policies and sent:
                resp.headers["x-ms-immutability-policy-until-date"] = sent[0]
                resp.headers["x-ms-immutability-policy-mode"] = sent[1].lower()


@dataclass
class AzureHarness:
    server: Any  # drill.azurite.AzuriteServer
    key_id: str = AZURE_SCOPE
    other_key_id: str = AZURE_OTHER_SCOPE
    audit: list = field(default_factory=list)
    name: str = "azure"
    versioned: bool = False  # Azurite: no blob versioning
    locks: bool = False  # Azurite: no version-level immutability
    reports_encryption: bool = False  # Azurite: no x-ms-encryption-scope on reads

    @property
    def env(self) -> dict[str, str]:
        return {"BACKUP_KMS_KEY_ID": self.key_id, "BACKUP_STORE": "azure",
                "AZURE_STORAGE_CONNECTION_STRING": self.server.connection_string()}

    def service(self, fake: ServiceFake | None = None, **kw):
        from azure.storage.blob import BlobServiceClient

        from lambdas.adapters.azure_blob import AzureBlobStore

        if fake is not None:
            kw.update(raw_request_hook=fake.on_request, raw_response_hook=fake.on_response)
        return BlobServiceClient.from_connection_string(
            kw.pop("connection_string", self.server.connection_string()), **{**AzureBlobStore.client_options(), **kw})

    def store(self, bucket: str = LOCKED_BUCKET, fake: ServiceFake | None = None, **kw):
        from lambdas.adapters.azure_blob import AzureBlobStore

        return AzureBlobStore(bucket, service=self.service(fake, **kw))

    def create(self, *containers: str) -> None:
        svc = self.service()
        for c in containers:
            svc.create_container(c)

    def _blob(self, bucket: str, key: str):
        return self.service().get_blob_client(bucket, key)

    def keys(self, bucket: str = LOCKED_BUCKET, prefix: str = "") -> list[str]:
        return list(self.service().get_container_client(bucket).list_blob_names(name_starts_with=prefix))

    def open_uploads(self, bucket: str = LOCKED_BUCKET) -> list[str]:
        """Blobs with committed content that are not listed (must be none). Staged blocks of a
        failed run stay in the service (no API discards them) but are no blob: each such name
        answers 404 to a read. A name that is readable without being listed would be a leak."""
        cc = self.service().get_container_client(bucket)
        listed = set(cc.list_blob_names())
        readable = []
        for b in cc.list_blobs(include=["uncommittedblobs"]):
            if b.name in listed:
                continue
            try:
                cc.get_blob_client(b.name).get_blob_properties()
            except Exception:  # noqa: S112 - ResourceNotFoundError: staged blocks only, as it must be
                continue
            readable.append(b.name)
        return readable

    def delete(self, bucket: str, key: str) -> None:
        """Azurite has no versioning (nor soft delete): the blob is gone."""
        self._blob(bucket, key).delete_blob()

    def staged_only(self, bucket: str = LOCKED_BUCKET) -> list[str]:
        cc = self.service().get_container_client(bucket)
        listed = set(cc.list_blob_names())
        return [b.name for b in cc.list_blobs(include=["uncommittedblobs"]) if b.name not in listed]

    def read(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self._blob(bucket, key).download_blob(version_id=version_id).readall()

    def overwrite(self, bucket: str, key: str, data: bytes, encrypted: bool = False) -> str | None:
        args = {"encryption_scope": self.key_id} if encrypted else {}
        return self._blob(bucket, key).upload_blob(data, overwrite=True, **args).get("version_id")

    def first_version_id(self, bucket: str, key: str) -> str | None:
        return None  # Azurite: no versions, the blob is all there is

    def replace_stored_bytes(self, bucket: str, key: str, version_id: str | None, data: bytes) -> None:
        """Azurite has no versions: the damaged bytes replace the blob (same scope, same tags)."""
        assert version_id is None, "Azurite returned a version id: update the harness"
        blob = self._blob(bucket, key)
        tags = blob.get_blob_tags()
        blob.upload_blob(data, overwrite=True, encryption_scope=self.key_id, tags=tags)

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        return self._blob(bucket, key).get_blob_tags(version_id=version_id)

    def lock(self, bucket: str, key: str, version_id: str | None = None) -> tuple[str | None, datetime | None]:
        policy = self._blob(bucket, key).get_blob_properties(version_id=version_id).immutability_policy
        return policy.policy_mode, policy.expiry_time

    def encryption(self, bucket: str, key: str, version_id: str | None = None) -> str | None:
        props = self._blob(bucket, key).get_blob_properties(version_id=version_id)
        assert props.server_encrypted is True
        return props.encryption_scope  # None on Azurite (not reported)

    def store_failing_part(self, failing: int):
        """A store whose block `failing` is damaged in transit (one bit flipped after its MD5 was
        computed): Azurite itself refuses it, as Blob Storage refuses a Content-MD5 mismatch."""
        from lambdas.adapters.azure_blob import block_id

        seen: list[int] = []
        target = base64.b64encode(block_id(failing).encode()).decode()

        def damage(pipeline_request):
            r = pipeline_request.http_request
            if r.method == "PUT" and "comp=block&" in r.url + "&" and "blockid=" in r.url:
                from urllib.parse import parse_qs, urlparse

                bid = parse_qs(urlparse(r.url).query)["blockid"][0]
                seen.append(int(base64.b64decode(bid)))
                if bid == target:
                    data = bytearray(r.data)
                    data[len(data) // 2] ^= 0x01
                    r.data = bytes(data)

        return self.store(raw_request_hook=damage), seen, "InvalidOperation"

    def unusable(self, case: int):
        if case == 0:  # an AWS key where an encryption scope is expected
            return self.store(), "arn:aws:kms:eu-west-3:123456789012:key/00000000", "kms_key_unusable"
        # the wrong account key: every request is refused by the service's signature check
        from drill.azurite import ACCOUNT_KEY

        wrong = base64.b64encode(bytes(reversed(base64.b64decode(ACCOUNT_KEY)))).decode()
        return self.store(connection_string=self.server.connection_string(key=wrong)), self.key_id, "access_denied"


def manifest_body(harness, bucket: str, key: str) -> dict:
    return json.loads(harness.read(bucket, key))


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)
