"""The drill's backup store: one barman server's base backups and WAL in an object store,
written and read by barman-cloud, on a loopback emulator (moto's S3 or Azurite's Blob service).

The same barman-cloud commands a CloudNativePG / VM realisation runs against the cloud; only
the endpoint and the credentials differ. PostgreSQL runs archive_command and restore_command
as `postgres`, in an environment without ours, so the hooks are tiny wrapper scripts that
carry the store's credentials.

What a store does beyond barman-cloud (how it is created and locked, what it refuses an
attacker) is the realisation's own: `drill.s3_store`, `drill.azure_store`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from drill.local import PgCluster

SERVER_NAME = "postoucancer"
# `--store` choices, and what the report calls each.
STORE_TITLES = {
    "s3": "S3 (moto): Object-Lock buckets, a copy in the vault account",
    "azure": "Azure Blob Storage (Azurite)",
}
STORES = tuple(STORE_TITLES)


def barman_tool(name: str) -> str:
    """A barman-cloud executable next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install barman[cloud,azure,lz4] (drill/requirements.txt)")
    return found


class BackupStore(ABC):
    """barman-cloud's view of a store: a URL, the cloud arguments and the credentials."""

    kind: ClassVar[str]
    hooks_dir: Path

    @property
    @abstractmethod
    def url(self) -> str:
        """barman-cloud's destination URL (bucket or container, then a prefix)."""

    @abstractmethod
    def cloud_args(self) -> list[str]:
        """The barman-cloud options that select the provider and the endpoint."""

    @abstractmethod
    def credentials(self) -> dict[str, str]:
        """Environment variables that give barman-cloud this store's credentials."""

    @abstractmethod
    def create(self) -> BackupStore:
        """Create the bucket / container with its protection, then the hooks."""

    def after_base_backup(self) -> None:
        """What the emulator needs done to the fresh backup objects (nothing, by default)."""
        return None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.credentials()}

    def write_hooks(self) -> None:
        self.hooks_dir.mkdir(parents=True, exist_ok=True)
        self.hooks_dir.chmod(0o755)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.credentials().items())
        common = " ".join(shlex.quote(a) for a in self.cloud_args())
        scripts = {
            "wal-archive": f"{shlex.quote(barman_tool('barman-cloud-wal-archive'))} {common} --gzip "
            f"{shlex.quote(self.url)} {SERVER_NAME} \"$1\"",
            "wal-restore": f"{shlex.quote(barman_tool('barman-cloud-wal-restore'))} {common} "
            f"{shlex.quote(self.url)} {SERVER_NAME} \"$1\" \"$2\"",
        }
        for name, command in scripts.items():
            path = self.hooks_dir / name
            path.write_text(f"#!/bin/sh\nexport {exports}\nexec {command}\n")
            path.chmod(0o755)

    @property
    def archive_command(self) -> str:
        return f"'{self.hooks_dir / 'wal-archive'} %p'"

    @property
    def restore_command(self) -> str:
        return f"'{self.hooks_dir / 'wal-restore'} %f %p'"

    def _barman(self, tool: str, *args: str) -> str:
        done = subprocess.run([barman_tool(tool), *self.cloud_args(), *args], env=self.env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            # barman-cloud's own message says what went wrong (credentials, endpoint, URL).
            raise RuntimeError(f"{tool} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
        return done.stdout

    def base_backup(self, cluster: PgCluster) -> str:
        """A barman-cloud base backup of a running cluster; returns its backup id."""
        # lz4, not gzip: tarfile's gzip runs at level 9 and was a third of the backup's CPU.
        self._barman("barman-cloud-backup", "--lz4", "--immediate-checkpoint", "-h", "127.0.0.1",
                     "-p", str(cluster.port), "-U", "postgres", self.url, SERVER_NAME)
        self.after_base_backup()
        return self.latest_backup_id()

    def latest_backup_id(self) -> str:
        out = self._barman("barman-cloud-backup-list", "--format", "json", self.url, SERVER_NAME)
        backups = [b for b in json.loads(out)["backups_list"] if b.get("status") == "DONE"]
        if not backups:
            raise RuntimeError("no completed base backup in the store")
        return max(backups, key=lambda b: b["backup_id"])["backup_id"]

    def restore(self, backup_id: str, into: PgCluster) -> None:
        """Download a base backup into an empty cluster directory (WAL comes via restore_command)."""
        self._barman("barman-cloud-restore", self.url, SERVER_NAME, backup_id, str(into.data_dir))
        into.adopt_data_dir()


class StoreService(ABC):
    """The emulator a drill's stores live in, started once per drill and always stopped."""

    kind: ClassVar[str]

    @property
    def title(self) -> str:
        return STORE_TITLES[self.kind]

    @abstractmethod
    def start(self, root: Path) -> StoreService: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def new_store(self, name: str, hooks_dir: Path) -> BackupStore:
        """A store for the site `name` (not created yet: call `create()`)."""


def service(kind: str) -> StoreService:
    """The emulator for `--store kind`; its SDKs load only when chosen."""
    if kind == "s3":
        from drill.s3_store import S3Service

        return S3Service()
    if kind == "azure":
        from drill.azure_store import AzureService

        return AzureService()
    raise ValueError(f"unknown store {kind!r}: choose one of {', '.join(STORES)}")
