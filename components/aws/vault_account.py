"""The backup-only account's stores: a compliance-locked vault per site region with its own key,
and the policies that let the production account copy in but never delete.

Why a standard vault under Vault Lock (compliance mode) with a customer key of the vault
account, not a logically air-gapped vault, is argued in docs/vault.md. In short: its access
policy and its key policy are ours to write, test and gate with the policy pack (the
pinned `aws.backup.LogicallyAirGappedVault` takes no access policy), and restoring out of it
into a clean account is the same cross-account copy the sites use to copy in (no RAM share).

The policies here are pure functions of account ids, regions and ARNs, so the tests read
them as documents; the components only place them.

Sources of the statements (cited again in tests/infra/test_vault_account.py):
- AWS Backup developer guide, "Creating backup copies across AWS accounts": the destination
  vault's resource-based access policy allows `backup:CopyIntoBackupVault` from the source
  accounts; the copy is re-encrypted with the destination vault's customer managed key.
- Amazon S3 user guide, "Configuring replication for buckets in different accounts" and
  "Changing the replica owner": the destination bucket policy grants the source's replication
  role the replicate actions and `s3:ObjectOwnerOverrideToBucketOwner`; the owner of the
  destination KMS key lets the source use it to encrypt replicas ("Granting additional
  permissions for cross-account scenarios").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pulumi

from drplan.retention import Retention

from .backup_plan import BackupVault, BackupVaultArgs
from .kms import CustomerKey, CustomerKeyArgs

# What a site may do with the vault: copy a recovery point into it, nothing else.
COPY_ACTIONS = ("backup:CopyIntoBackupVault",)
# Refused to every principal (the lifecycle alone expires recovery points, as in the sites' vaults).
EARLY_DELETION = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle")
# Refused to every principal of another account: deleting or re-configuring the vault.
OTHER_ACCOUNTS_NEVER = (
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultNotifications",
    "backup:PutBackupVaultAccessPolicy",
    "backup:PutBackupVaultLockConfiguration",
    "backup:PutBackupVaultNotifications",
    "backup:StartCopyJob",
)
# The copies must stay readable: nobody schedules the key's deletion or disables it.
KEY_DESTRUCTION = ("kms:ScheduleKeyDeletion", "kms:DisableKey")
# What the sites may do with a vault key: encrypt, never decrypt, grant or administer.
SITE_KEY_ACTIONS = ("kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext")
# What a site's replication role may do in the vault bucket. No s3:ReplicateDelete: the rule into
# the vault replicates no delete markers (a deletion in the compromised account must not hide the
# vault's current versions), so S3 never needs it.
REPLICA_WRITE_ACTIONS = ("s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner")
# Refused in the vault bucket to every principal of another account.
BUCKET_OTHER_ACCOUNTS_NEVER = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:ReplicateDelete",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutReplicationConfiguration",
    "s3:DeleteBucket",
)


def root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def _not_from(account: str) -> dict:
    return {"StringNotEquals": {"aws:PrincipalAccount": account}}


def vault_access_policy(vault_account: str, site_account: str) -> Callable[[str], str]:
    """The vault's access policy: the sites' account copies in; early deletion is refused to
    everyone, and deleting or re-configuring the vault to every other account."""

    def policy(_vault_arn: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "SitesCopyIntoThisVault",
                        "Effect": "Allow",
                        "Principal": {"AWS": root(site_account)},
                        "Action": list(COPY_ACTIONS),
                        "Resource": "*",  # in a vault access policy "*" is this vault
                    },
                    {
                        "Sid": "RetentionIsEnforcedByTheLifecycleOnly",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": list(EARLY_DELETION),
                        "Resource": "*",
                    },
                    {
                        "Sid": "NoOtherAccountDeletesOrReconfigures",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": list(OTHER_ACCOUNTS_NEVER),
                        "Resource": "*",
                        "Condition": _not_from(vault_account),
                    },
                ],
            }
        )

    return policy


def vault_key_statements(
    region: str, site_account: str, recovery_accounts: Sequence[str] = ()
) -> Callable[[str], list[dict]]:
    """The vault key beyond its own account's administration: the sites encrypt through AWS
    Backup in this region only; nobody destroys the key; a recovery account (set at incident
    time, docs/runbooks/ransomware.md) may use it to take a copy out."""

    def statements(_vault_account: str) -> list[dict]:
        out = [
            {
                "Sid": "SitesEncryptCopiesThroughAwsBackup",
                "Effect": "Allow",
                "Principal": {"AWS": root(site_account)},
                "Action": list(SITE_KEY_ACTIONS),
                "Resource": "*",  # a key policy governs only its key
                "Condition": {"StringEquals": {"kms:ViaService": f"backup.{region}.amazonaws.com"}},
            },
            _deny_key_destruction(),
        ]
        if recovery_accounts:
            # What a cross-account copy of an encrypted snapshot needs of its key (Amazon RDS user
            # guide, "Allowing access to an AWS KMS key"): use it, and create grants for AWS resources.
            principals = {"AWS": sorted(root(a) for a in recovery_accounts)}
            out += [
                {
                    "Sid": "RecoveryAccountsCopyOut",
                    "Effect": "Allow",
                    "Principal": principals,
                    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                    "Resource": "*",
                },
                {
                    "Sid": "RecoveryAccountsGrantToAwsServices",
                    "Effect": "Allow",
                    "Principal": principals,
                    "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": "*",
                    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
            ]
        return out

    return statements


def _deny_key_destruction() -> dict:
    return {
        "Sid": "NobodyDestroysTheCopiesKey",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": list(KEY_DESTRUCTION),
        "Resource": "*",
    }


def bucket_key_statements(
    region: str, site_account: str, replication_roles: Sequence[str]
) -> Callable[[str], list[dict]]:
    """The vault bucket's key: the sites' replication roles encrypt replicas through S3 in this
    region only (cross-account SSE-KMS replication); nobody destroys the key."""

    def statements(_vault_account: str) -> list[dict]:
        return [
            {
                "Sid": "SiteReplicationRolesEncryptReplicas",
                "Effect": "Allow",
                "Principal": {"AWS": root(site_account)},
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {
                    # The account as principal, the roles by condition: the vault deploys first,
                    # before the roles exist (KMS refuses a policy naming a principal that does not).
                    "ArnEquals": {"aws:PrincipalArn": sorted(replication_roles)},
                    "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                },
            },
            _deny_key_destruction(),
        ]

    return statements


def bucket_statements(
    vault_account: str, site_account: str, replication_roles: Sequence[str]
) -> Callable[[str, str], list[dict]]:
    """The vault bucket's policy beyond TLS-and-this-key-only (ReplicatedBucket): the sites'
    replication roles write replicas and take ownership of them; every other account is
    refused every delete and every change to the lock, the lifecycle or this policy."""

    def statements(bucket_arn: str, _account: str) -> list[dict]:
        roles = {"ArnEquals": {"aws:PrincipalArn": sorted(replication_roles)}}
        return [
            {
                "Sid": "SiteReplicationRolesWriteReplicas",
                "Effect": "Allow",
                "Principal": {"AWS": root(site_account)},
                "Action": list(REPLICA_WRITE_ACTIONS),
                "Resource": f"{bucket_arn}/*",
                "Condition": roles,
            },
            {
                "Sid": "SiteReplicationRolesSeeVersioning",
                "Effect": "Allow",
                "Principal": {"AWS": root(site_account)},
                "Action": ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"],
                "Resource": bucket_arn,
                "Condition": roles,
            },
            {
                "Sid": "NoOtherAccountDeletes",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": list(BUCKET_OTHER_ACCOUNTS_NEVER),
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": _not_from(vault_account),
            },
        ]

    return statements


@dataclass
class AccountVaultArgs:
    region: str
    retention: Retention  # the GFS retention the copies keep (the lock admits exactly it)
    vault_account: str
    site_account: str
    recovery_accounts: list[str] = field(default_factory=list)
    physical_name: str | None = None


class AccountVault(pulumi.ComponentResource):
    """`postoucancer:aws:AccountVault`: a vault of the backup-only account in one region, under
    Vault Lock in compliance mode, encrypted with a key of its own that the sites may only
    encrypt with."""

    key: CustomerKey
    vault: BackupVault
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: AccountVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:AccountVault", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = CustomerKey(
            f"{name}-key",
            CustomerKeyArgs(
                region=args.region,
                description=f"Post Ou Cancer vault-account copies ({args.region})",
                extra_statements=vault_key_statements(args.region, args.site_account, args.recovery_accounts),
            ),
            opts=child,
        )
        self.vault = BackupVault(
            name,
            BackupVaultArgs(
                region=args.region,
                kms_key=self.key,
                retention=args.retention,
                locked=True,
                physical_name=args.physical_name,
                access_policy=vault_access_policy(args.vault_account, args.site_account),
                # The copies are the GFS generations (the continuous backups' copy is the daily
                # snapshot): nothing shorter than the shortest generation is accepted.
                lock_bounds=(args.retention.shortest.days, args.retention.longest.days),
            ),
            opts=child,
        )
        self.arn = self.vault.arn
        self.register_outputs({"arn": self.arn})
