"""The S3 realisation of the drill's store: Object-Lock buckets on moto's S3 server, in two
accounts (the production account and the backup-only vault account, `drill.vault`)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from drill.backup_store import BackupStore, StoreService
from drill.local import MotoServer


@dataclass
class Attack:
    """What a delete-everything attack on a bucket achieved."""

    versions: int = 0  # object versions the attacker aimed at
    keys: int = 0  # object names among them (a plain DELETE names a key, not a version)
    permanent_refused: int = 0  # DELETE ?versionId= (with BypassGovernanceRetention) refused
    markers_placed: int = 0  # plain DELETEs (one per key) that succeeded: they only hide
    markers_refused: int = 0  # plain DELETEs refused
    other_refused: list[str] = field(default_factory=list)  # bucket-level attempts refused
    other_allowed: list[str] = field(default_factory=list)  # bucket-level attempts that worked

    @property
    def tried(self) -> int:
        return self.versions + self.markers_placed + self.markers_refused + len(self.other_refused + self.other_allowed)

    @property
    def refused(self) -> int:
        return self.permanent_refused + self.markers_refused + len(self.other_refused)

    def as_fact(self) -> dict[str, object]:
        return {"versions": self.versions, "keys": self.keys, "permanent_deletes_refused": self.permanent_refused,
                "plain_deletes_refused": self.markers_refused, "delete_markers_placed": self.markers_placed,
                "bucket_changes_refused": self.other_refused, "bucket_changes_allowed": self.other_allowed}


def _denied(exc) -> bool:
    return exc.response["Error"]["Code"] == "AccessDenied"


@dataclass
class S3BackupStore(BackupStore):
    """One bucket, compliance-locked by default, holding one barman server's backups and WAL."""

    kind: ClassVar[str] = "s3"

    endpoint: str
    creds: dict[str, str]  # AWS_* variables of the account that owns the bucket
    bucket: str
    hooks_dir: Path
    lock_retention: timedelta = timedelta(days=1)
    sealed: int = 0  # object versions the drill had to lock itself (see `seal_unlocked`)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/pg"

    def cloud_args(self) -> list[str]:
        return ["--cloud-provider", "aws-s3", "--endpoint-url", self.endpoint]

    def credentials(self) -> dict[str, str]:
        return dict(self.creds)

    def s3(self, creds: dict[str, str] | None = None):
        """A client with this bucket's owner's credentials, or with `creds` (someone else's)."""
        import boto3

        creds = creds or self.creds
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=creds["AWS_DEFAULT_REGION"],
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )

    def create(self) -> S3BackupStore:
        s3 = self.s3()
        # Object Lock can only be switched on at creation; it implies versioning.
        s3.create_bucket(
            Bucket=self.bucket,
            CreateBucketConfiguration={"LocationConstraint": self.creds["AWS_DEFAULT_REGION"]},
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
        self.write_hooks()
        return self

    def after_base_backup(self) -> None:
        self.sealed += self.seal_unlocked()

    # --- what the ransomware scenario does to the store ----------------------------------

    def _listed(self, kind: str) -> list[dict]:
        """Every entry of `kind` (Versions, DeleteMarkers) of ListObjectVersions on the bucket."""
        found: list[dict] = []
        for page in self.s3().get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            found.extend(page.get(kind, []))
        return found

    def versions(self) -> list[dict]:
        return self._listed("Versions")

    def delete_markers(self) -> list[dict]:
        return self._listed("DeleteMarkers")

    def attack(self, creds: dict[str, str] | None = None, hide: bool = True) -> Attack:
        """What an attacker holding `creds` (default: this bucket's own account's keys) does:
        permanently delete every object version, then (`hide`) hide what is left behind delete
        markers, and with foreign keys try to lift the lock or expire everything at the
        bucket level."""
        from botocore.exceptions import ClientError

        s3 = self.s3(creds)
        versions = self.versions()  # the owner lists: the attacker is assumed to know every name
        result = Attack(versions=len(versions), keys=len({v["Key"] for v in versions}))
        for v in versions:
            try:
                # Bypassing governance mode is what an admin-level attacker would try; a
                # compliance-mode lock has no bypass.
                s3.delete_object(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"],
                                 BypassGovernanceRetention=True)
            except ClientError as exc:
                if not _denied(exc):
                    raise
                result.permanent_refused += 1
        for key in sorted({v["Key"] for v in versions}) if hide else ():
            # A plain DELETE on a versioned bucket is allowed even under a lock: it only hides.
            try:
                s3.delete_object(Bucket=self.bucket, Key=key)
                result.markers_placed += 1
            except ClientError as exc:
                if not _denied(exc):
                    raise
                result.markers_refused += 1
        if creds is not None:
            self._attack_bucket(s3, result)
        return result

    def _attack_bucket(self, s3, result: Attack) -> None:
        """Bucket-level changes that would let a foreign attacker destroy the copies later."""
        from botocore.exceptions import ClientError

        rule = {"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}
        attempts = {
            "lift the default retention": lambda: s3.put_object_lock_configuration(
                Bucket=self.bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}),
            "expire every object (lifecycle)": lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [rule]}),
            "replace the bucket policy": lambda: s3.put_bucket_policy(
                Bucket=self.bucket, Policy='{"Version": "2012-10-17", "Statement": []}'),
            "delete the bucket": lambda: s3.delete_bucket(Bucket=self.bucket),
        }
        for what, attempt in attempts.items():
            try:
                attempt()
                result.other_allowed.append(what)
            except ClientError as exc:
                if not _denied(exc):
                    raise
                result.other_refused.append(what)

    def seal_unlocked(self) -> int:
        """Give every object version that carries no lock the bucket's default retention.

        Real S3 applies the bucket default to every new version; moto 5 skips multipart
        uploads (barman-cloud's base backup tarballs), so the drill applies the same
        compliance retention to those explicitly. Returns how many it had to seal."""
        s3 = self.s3()
        until = datetime.now(UTC) + self.lock_retention
        sealed = 0
        for v in self.versions():
            if self.lock_mode(v["Key"], v["VersionId"]) != "COMPLIANCE":
                s3.put_object_retention(
                    Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"],
                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
                )
                sealed += 1
        return sealed

    def lock_mode(self, key: str, version_id: str) -> str | None:
        # moto has no GetObjectRetention; head_object carries the lock fields.
        return self.s3().head_object(Bucket=self.bucket, Key=key, VersionId=version_id).get("ObjectLockMode")


@dataclass
class S3Service(StoreService):
    """moto's S3 on loopback: the production account (moto's default account, the keys
    `testing`) and the vault account (`drill.vault`)."""

    kind: ClassVar[str] = "s3"
    moto: MotoServer | None = None
    vault: object = None  # drill.vault.VaultAccount
    _crossaccount: str | None = None

    def start(self, root: Path) -> S3Service:
        from drill.vault import VaultAccount

        # moto lets any account use any bucket unless told otherwise; real S3 refuses a request
        # from another account that no bucket policy grants. The moto server runs in this
        # process and reads the switch on every request.
        self._crossaccount = os.environ.get("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS")
        os.environ["MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS"] = "false"
        self.moto = MotoServer().start()
        self.vault = VaultAccount.open(self.moto)
        return self

    def stop(self) -> None:
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self._crossaccount is None:
            os.environ.pop("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", None)
        else:
            os.environ["MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS"] = self._crossaccount

    def new_store(self, name: str, hooks_dir: Path) -> S3BackupStore:
        # Unique: moto keeps its buckets per process, across servers.
        return S3BackupStore(endpoint=self.moto.endpoint, creds=self.moto.client_env(),
                             bucket=f"drill-{name}-{secrets.token_hex(4)}", hooks_dir=hooks_dir)
