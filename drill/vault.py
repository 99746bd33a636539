"""The backup-only vault account, on the same moto server as the production account.

What the vault stack builds in AWS: a second account whose bucket receives the backups by
cross-account replication, with Object Lock in COMPLIANCE mode and a bucket policy that
refuses deletes from every other account. What moto gives the drill to rehearse it (read in
moto 5.2.5's source, then measured by the drill itself):

- Accounts. A request belongs to the account whose IAM access key signed it
  (`moto.core.responses.get_current_account`); the production account is moto's default one
  (keys `testing`), the vault account gets an IAM user and key of its own here.
- No access across accounts. With `MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS=false` moto answers
  AccessDenied to every request on a bucket of another account (`S3Backend.get_bucket`). Real
  S3 does the same for a request no bucket policy grants; the vault's policy grants the
  production account nothing but replication, and denies it deletes outright.
- Not the bucket policy itself: moto evaluates a bucket policy without the caller's principal
  or condition keys ("For now, Moto only verifies principal == *",
  `moto.iam.access_control.IAMPolicyStatement.is_unknown_principal`), so a "deny deletes from
  other accounts" statement cannot be rehearsed as written; the account boundary above stands
  in for it.
- Object Lock COMPLIANCE: deleting a locked version is refused to everyone, the vault account
  included.
- No replication: moto does not run replication rules. The drill performs the copy that
  replication would do (every object with its retention, into the vault bucket, as the
  vault account) and says so in its report.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from drill.local import MotoServer
from drill.s3_store import S3BackupStore

PROD_ACCOUNT_ID = "123456789012"  # moto's default account: the keys `testing`
VAULT_ACCOUNT_ID = "222233334444"
VAULT_USER = "vault-recovery"  # the vault account's own recovery identity


@dataclass
class VaultAccount:
    moto: MotoServer
    creds: dict[str, str]  # AWS_* variables of the vault account's recovery user

    @classmethod
    def open(cls, moto: MotoServer) -> VaultAccount:
        """Create the vault account's recovery user and its access key."""
        import boto3

        prod = moto.client_env()
        iam = boto3.client("iam", endpoint_url=moto.endpoint, region_name=prod["AWS_DEFAULT_REGION"],
                           aws_access_key_id=prod["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=prod["AWS_SECRET_ACCESS_KEY"])

        # moto's way to act in an account that has no key yet (its bootstrap, like the
        # account's root user creating the first IAM user).
        def in_vault_account(request, **_):
            request.headers["x-moto-account-id"] = VAULT_ACCOUNT_ID

        iam.meta.events.register("before-sign.iam.*", in_vault_account)
        iam.create_user(UserName=VAULT_USER)
        key = iam.create_access_key(UserName=VAULT_USER)["AccessKey"]
        creds = {**prod, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        return cls(moto, creds)

    def account_of(self, creds: dict[str, str]) -> str:
        """The account a set of keys acts in, as the server sees it (STS GetCallerIdentity)."""
        import boto3

        sts = boto3.client("sts", endpoint_url=self.moto.endpoint, region_name=creds["AWS_DEFAULT_REGION"],
                           aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
        return sts.get_caller_identity()["Account"]

    def replicate(self, source: S3BackupStore, hooks_dir: Path) -> tuple[S3BackupStore, int]:
        """Copy every object version of `source` into a new locked bucket of the vault account,
        with the source's retention, as cross-account replication would; returns the vault's
        store (its hooks carry the vault account's keys) and how many versions it copied."""
        vault = S3BackupStore(endpoint=self.moto.endpoint, creds=self.creds,
                              bucket=f"vault-{source.bucket}-{secrets.token_hex(2)}"[:63], hooks_dir=hooks_dir,
                              lock_retention=source.lock_retention).create()
        reader, writer = source.s3(), vault.s3()
        # Replication copies each version as it is written: oldest first (S3 lists newest first).
        versions = sorted(source.versions(), key=lambda v: (v["Key"], v["LastModified"], not v["IsLatest"]))
        for v in versions:
            got = reader.get_object(Bucket=source.bucket, Key=v["Key"], VersionId=v["VersionId"])
            until = got.get("ObjectLockRetainUntilDate") or datetime.now(UTC) + source.lock_retention
            # Replication carries the object's retention over; a single PUT (not the
            # multipart upload barman made) also gets moto to apply it.
            writer.put_object(Bucket=vault.bucket, Key=v["Key"], Body=got["Body"].read(),
                              ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
        return vault, len(versions)
