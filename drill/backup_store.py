"""The drill's backup store: an Object-Lock bucket on the loopback S3 API, fed by barman-cloud.

The same commands a CloudNativePG / VM realisation runs against real S3; only the endpoint
differs. PostgreSQL runs archive_command and restore_command as `postgres`, in an
environment without our AWS variables, so the hooks are tiny wrapper scripts that carry them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drill.local import MotoServer, PgCluster

SERVER_NAME = "postoucancer"


def barman_tool(name: str) -> str:
    """A barman-cloud executable next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install barman[cloud] (drill/requirements.txt)")
    return found


@dataclass
class BackupStore:
    """One bucket, compliance-locked by default, holding one barman server's backups and WAL."""

    moto: MotoServer
    bucket: str
    hooks_dir: Path
    lock_retention: timedelta = timedelta(days=1)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/pg"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.moto.client_env()}

    def _cloud_args(self) -> list[str]:
        return ["--cloud-provider", "aws-s3", "--endpoint-url", self.moto.endpoint]

    def s3(self):
        import boto3

        creds = self.moto.client_env()
        return boto3.client(
            "s3",
            endpoint_url=self.moto.endpoint,
            region_name=creds["AWS_DEFAULT_REGION"],
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )

    def create(self) -> BackupStore:
        s3 = self.s3()
        region = self.moto.client_env()["AWS_DEFAULT_REGION"]
        # Object Lock can only be switched on at creation; it implies versioning.
        s3.create_bucket(
            Bucket=self.bucket,
            CreateBucketConfiguration={"LocationConstraint": region},
            ObjectLockEnabledForBucket=True,
        )
        # Compliance mode: nobody, not even the account root, can shorten or lift it. The
        # retention is the drill's own (a day); production uses the model's retention.
        s3.put_object_lock_configuration(
            Bucket=self.bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": self.lock_retention.days}},
            },
        )
        self._write_hooks()
        return self

    def _write_hooks(self) -> None:
        self.hooks_dir.mkdir(parents=True, exist_ok=True)
        self.hooks_dir.chmod(0o755)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.moto.client_env().items())
        common = " ".join(shlex.quote(a) for a in self._cloud_args())
        scripts = {
            "wal-archive": f"{shlex.quote(barman_tool('barman-cloud-wal-archive'))} {common} --gzip "
            f"{self.url} {SERVER_NAME} \"$1\"",
            "wal-restore": f"{shlex.quote(barman_tool('barman-cloud-wal-restore'))} {common} "
            f"{self.url} {SERVER_NAME} \"$1\" \"$2\"",
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

    def base_backup(self, cluster: PgCluster) -> str:
        """A barman-cloud base backup of a running cluster; returns its backup id."""
        subprocess.run(
            [barman_tool("barman-cloud-backup"), *self._cloud_args(), "--gzip", "--immediate-checkpoint",
             "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", self.url, SERVER_NAME],
            env=self.env, check=True, capture_output=True, text=True,
        )
        return self.latest_backup_id()

    def latest_backup_id(self) -> str:
        out = subprocess.run(
            [barman_tool("barman-cloud-backup-list"), *self._cloud_args(), "--format", "json",
             self.url, SERVER_NAME],
            env=self.env, check=True, capture_output=True, text=True,
        ).stdout
        backups = [b for b in json.loads(out)["backups_list"] if b.get("status") == "DONE"]
        if not backups:
            raise RuntimeError("no completed base backup in the store")
        return max(backups, key=lambda b: b["backup_id"])["backup_id"]

    def restore(self, backup_id: str, into: PgCluster) -> None:
        """Download a base backup into an empty cluster directory (WAL comes via restore_command)."""
        subprocess.run(
            [barman_tool("barman-cloud-restore"), *self._cloud_args(), self.url, SERVER_NAME, backup_id,
             str(into.data_dir)],
            env=self.env, check=True, capture_output=True, text=True,
        )
        into.adopt_data_dir()

    # --- what the ransomware scenario does to the store ----------------------------------

    def _listed(self, kind: str) -> list[dict]:
        """Every entry of `kind` (Versions, DeleteMarkers) of ListObjectVersions on the bucket."""
        s3 = self.s3()
        found: list[dict] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            found.extend(page.get(kind, []))
        return found

    def versions(self) -> list[dict]:
        return self._listed("Versions")

    def delete_markers(self) -> list[dict]:
        return self._listed("DeleteMarkers")

    def attack(self) -> tuple[int, int, int]:
        """What an attacker holding the account's keys does: permanently delete every object
        version, then hide what is left behind delete markers.

        Returns (versions, permanent deletions refused, delete markers placed)."""
        from botocore.exceptions import ClientError

        s3 = self.s3()
        versions = self.versions()
        refused = 0
        for v in versions:
            try:
                # Bypassing governance mode is what an admin-level attacker would try; a
                # compliance-mode lock has no bypass.
                s3.delete_object(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"],
                                 BypassGovernanceRetention=True)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "AccessDenied":
                    raise
                refused += 1
        markers = 0
        for key in sorted({v["Key"] for v in versions}):
            # A plain DELETE on a versioned bucket is allowed even under a lock: it only hides.
            s3.delete_object(Bucket=self.bucket, Key=key)
            markers += 1
        return len(versions), refused, markers

    def remove_delete_markers(self) -> int:
        """Recovery step: a delete marker is not locked data, removing it uncovers the copy."""
        s3 = self.s3()
        markers = self.delete_markers()
        for m in markers:
            s3.delete_object(Bucket=self.bucket, Key=m["Key"], VersionId=m["VersionId"])
        return len(markers)

    def seal_unlocked(self) -> int:
        """Give every object version that carries no lock the bucket's default retention.

        Real S3 applies the bucket default to every new version; moto 5 skips multipart
        uploads (barman-cloud's base backup tarballs), so the drill applies the same
        compliance retention to those explicitly. Returns how many it had to seal."""
        s3 = self.s3()
        until = datetime.now(UTC) + self.lock_retention
        sealed = 0
        for v in self.versions():
            head = s3.head_object(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"])
            if head.get("ObjectLockMode") != "COMPLIANCE":
                s3.put_object_retention(
                    Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"],
                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
                )
                sealed += 1
        return sealed

    def lock_until(self, key: str) -> datetime | None:
        # moto has no GetObjectRetention; head_object carries the lock fields.
        head = self.s3().head_object(Bucket=self.bucket, Key=key)
        until = head.get("ObjectLockRetainUntilDate")
        return until.astimezone(UTC) if until else None
