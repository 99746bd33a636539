"""The Azure Blob Storage realisation of the drill's store: a container on Azurite.

barman-cloud (`--cloud-provider azure-blob-storage`) reaches an emulator by a URL of the form
`http://127.0.0.1:PORT/<account>/<container>/<prefix>` and needs a connection string in
AZURE_STORAGE_CONNECTION_STRING (barman/cloud_providers/azure_blob_storage.py). The drill's
connection string carries a container SAS that can read, add, create, write and list, never
delete: the backup writer (WAL archiver, base backup) cannot destroy a backup, and Azurite
enforces SAS permissions.

What protects the backups from someone holding the account key in Azure (version-level
immutability with a locked time-based policy on a versioned account; soft delete) Azurite does
not emulate. `probe()` finds that out on every run instead of assuming it, and the ransomware
scenario reports each as "not emulated by Azurite".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import ClassVar

from drill.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteServer
from drill.backup_store import BackupStore, StoreService

# Read, add, create, write, list: everything the archiver and barman-cloud-backup need; no delete.
WRITER_PERMISSIONS = "racwl"


@dataclass
class Probe:
    """Whether the emulator implements a protection, as measured on a probe blob."""

    feature: str  # what Azure offers
    emulated: bool
    detail: str


def _refused(exc) -> str:
    """`501 Not Implemented`, `409 Conflict (BlobImmutableDueToPolicy)`: the answer, briefly."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = type(exc).__name__
    return f"{status} {phrase}" + (f" ({code})" if code else "")


@dataclass
class AzureBackupStore(BackupStore):
    """One container of the emulator's account holding one barman server's backups and WAL."""

    kind: ClassVar[str] = "azure"

    azurite: AzuriteServer
    container: str
    hooks_dir: Path
    sas_lifetime: timedelta = timedelta(days=1)
    writer_sas: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return f"{self.azurite.account_url}/{self.container}/pg"

    def cloud_args(self) -> list[str]:
        return ["--cloud-provider", "azure-blob-storage"]

    def writer_connection_string(self) -> str:
        return f"BlobEndpoint={self.azurite.account_url};SharedAccessSignature={self.writer_sas}"

    def credentials(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.writer_connection_string()}

    def account(self):
        """The account key holder's view: the container as its owner (or an attacker) sees it."""
        from azure.storage.blob import ContainerClient

        return ContainerClient.from_connection_string(self.azurite.connection_string(), self.container)

    def writer(self):
        from azure.storage.blob import ContainerClient

        return ContainerClient.from_connection_string(self.writer_connection_string(), self.container)

    def create(self) -> AzureBackupStore:
        from azure.storage.blob import generate_container_sas

        self.account().create_container()
        self.writer_sas = generate_container_sas(
            ACCOUNT, self.container, account_key=ACCOUNT_KEY, permission=WRITER_PERMISSIONS,
            expiry=datetime.now(UTC) + self.sas_lifetime)
        self.write_hooks()
        return self

    def blobs(self) -> list[str]:
        return [b.name for b in self.account().list_blobs()]

    # --- what the ransomware scenario does to the store ----------------------------------

    def writer_deletes(self) -> tuple[int, int]:
        """Try to delete every backup blob with the backup writer's own credential;
        returns (blobs, deletes refused)."""
        from azure.core.exceptions import HttpResponseError

        writer, names = self.writer(), self.blobs()
        refused = 0
        for name in names:
            try:
                writer.delete_blob(name, delete_snapshots="include")
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise
                refused += 1
        return len(names), refused

    def probe(self) -> list[Probe]:
        """What stands between the account key and the backups, tried on a probe container:
        blob versioning, a locked immutability policy (and legal hold), soft delete. The
        backups themselves are not attacked with the account key: where nothing refuses it,
        it would only destroy the copy the recovery needs."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.storage.blob import BlobServiceClient, ImmutabilityPolicy, RetentionPolicy

        svc = BlobServiceClient.from_connection_string(self.azurite.connection_string())
        probe = svc.create_container(f"{self.container[:50]}-probe-{secrets.token_hex(2)}")
        blob = probe.get_blob_client("probe")
        results: list[Probe] = []
        written = blob.upload_blob(b"probe")
        version = written.get("version_id")
        results.append(Probe("blob versioning", version is not None,
                             f"a write returns version id {version}" if version else
                             "a write returns no version id; none is listed"))
        try:
            blob.set_immutability_policy(ImmutabilityPolicy(
                expiry_time=datetime.now(UTC) + timedelta(days=1), policy_mode="Locked"))
            blob.delete_blob()
            immutable, detail = False, "a locked immutability policy was accepted, yet the blob could be deleted"
        except HttpResponseError as exc:
            immutable = exc.status_code == 409  # BlobImmutableDueToPolicy: what Azure answers
            detail = (f"a locked policy refused the account key's delete ({_refused(exc)})" if immutable else
                      f"Set Blob Immutability Policy answers {_refused(exc)}")
        try:
            blob.set_legal_hold(True)
            detail += "; Set Legal Hold accepted"
        except HttpResponseError as exc:
            detail += f"; Set Legal Hold answers {_refused(exc)}"
        results.append(Probe("version-level immutability (locked policy)", immutable, detail))
        # Soft delete is an account setting: switch it on, delete, look for the deleted blob.
        svc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=7))
        gone = probe.get_blob_client("soft-deleted")
        gone.upload_blob(b"probe")
        gone.delete_blob()
        kept = [b.name for b in probe.list_blobs(include=["deleted"]) if b.name == "soft-deleted"]
        try:
            gone.undelete_blob()
            undelete = "Undelete Blob accepted"
        except (HttpResponseError, ResourceNotFoundError) as exc:
            undelete = f"Undelete Blob answers {_refused(exc)}"
        results.append(Probe("soft delete", bool(kept), (
            "with a 7-day delete retention policy on, a deleted blob is "
            + ("still listed as deleted" if kept else "gone from the listing (include=deleted)")
            + f"; {undelete}")))
        svc.delete_container(probe.container_name)
        return results


@dataclass
class AzureService(StoreService):
    """Azurite's blob service on loopback, its data under the drill's work directory."""

    kind: ClassVar[str] = "azure"
    azurite: AzuriteServer | None = None

    def start(self, root: Path) -> AzureService:
        self.azurite = AzuriteServer(location=root / "azurite").start()
        return self

    def stop(self) -> None:
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None

    def version(self) -> str:
        return self.azurite.version() if self.azurite else "?"

    def new_store(self, name: str, hooks_dir: Path) -> AzureBackupStore:
        # Container names: 3-63 lowercase letters, digits and single hyphens.
        return AzureBackupStore(azurite=self.azurite, container=f"drill-{name}-{secrets.token_hex(4)}"[:63],
                                hooks_dir=hooks_dir)
