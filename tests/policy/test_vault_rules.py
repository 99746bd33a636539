"""The backup-only account's rules (policy/rules/vault.py): each catches a bad resource and
passes a good one; what the components write passes."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.aws.backup_plan import deny_early_deletion_policy
from components.aws.vault_account import vault_access_policy
from drplan.retention import RETENTION, Tier
from policy.rules import vault as rules
from tests.policy.harness import ACCOUNT, DR_REGION, doc, names, statement, violations

PROD = RETENTION[Tier.PROD]
OTHER = "999999999999"  # the sites' account, seen from the vault account
VAULT_SITE = {"role": "vault", "tier": "prod", "account": ACCOUNT}
PRIMARY_SITE = {"role": "primary", "tier": "prod"}
DENY_DESTRUCTION = statement("Deny", ["kms:ScheduleKeyDeletion", "kms:DisableKey"], "*", Principal={"AWS": "*"})
ADMIN = statement("Allow", "kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})


def vault(lock: str | None = "compliance", min_days: int = PROD.shortest.days, policy: str | None = "good") -> None:
    key = aws.kms.Key("vault-key", region=DR_REGION, enable_key_rotation=True, policy=doc(ADMIN, DENY_DESTRUCTION))
    v = aws.backup.Vault("vault", region=DR_REGION, name="postoucancer-vault", kms_key_arn=key.arn)
    if lock:
        aws.backup.VaultLockConfiguration(
            "vault-lock",
            region=DR_REGION,
            backup_vault_name=v.name,
            min_retention_days=min_days,
            max_retention_days=PROD.longest.days,
            changeable_for_days=3 if lock == "compliance" else None,
        )
    documents = {
        "good": vault_access_policy(ACCOUNT, OTHER)("arn"),
        "site": deny_early_deletion_policy("arn"),
        "exempts-another-account": doc(
            statement(
                "Deny",
                ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"],
                "*",
                Principal={"AWS": "*"},
                Condition={"StringNotEquals": {"aws:PrincipalAccount": OTHER}},
            )
        ),
        "allows-another-account": doc(
            statement("Allow", "backup:*", "*", Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}),
            *json.loads(deny_early_deletion_policy("arn"))["Statement"],
        ),
    }
    if policy:
        aws.backup.VaultPolicy("vault-policy", region=DR_REGION, backup_vault_name=v.name, policy=documents[policy])


def bucket(mode: str = "COMPLIANCE", policy: str = "good") -> None:
    b = aws.s3.Bucket(
        "dumps",
        region=DR_REGION,
        object_lock_enabled=True,
        tags={"purpose": "database-backups"},
        opts=pulumi.ResourceOptions(protect=True),
    )
    aws.s3.BucketObjectLockConfiguration(
        "dumps-lock", region=DR_REGION, bucket=b.id, rule={"default_retention": {"mode": mode, "days": 30}}
    )
    arn = "arn:aws:s3:::dumps"
    deny = statement(
        "Deny",
        list(rules.OBJECT_DELETES),
        [arn, f"{arn}/*"],
        Principal={"AWS": "*"},
        Condition={"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}},
    )
    documents = {
        "good": doc(deny),
        "no-deny": doc(),
        "allows-another-account": doc(
            deny,
            statement("Allow", "s3:DeleteObjectVersion", f"{arn}/*", Principal={"AWS": f"arn:aws:iam::{OTHER}:root"}),
        ),
    }
    aws.s3.BucketPolicy("dumps-policy", region=DR_REGION, bucket=b.id, policy=documents[policy])


def key(policy: str) -> None:
    documents = {
        "good": doc(ADMIN, DENY_DESTRUCTION),
        "no-deny": doc(ADMIN),
        "lets-another-account-delete": doc(
            ADMIN,
            DENY_DESTRUCTION,
            statement(
                "Allow",
                ["kms:Encrypt", "kms:ScheduleKeyDeletion"],
                "*",
                Principal={"AWS": f"arn:aws:iam::{OTHER}:root"},
            ),
        ),
    }
    aws.kms.Key("copies-key", region=DR_REGION, enable_key_rotation=True, policy=documents[policy])


# --- vault-account-locked-in-compliance-mode ------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "culprit"),
    [
        (lambda: vault(lock=None), "vault"),
        (lambda: vault(lock="governance"), "vault"),
        (lambda: vault(min_days=7), "vault-lock"),
        (lambda: (vault(), bucket(mode="GOVERNANCE")), "dumps"),
    ],
    ids=["no-lock", "governance", "admits-short-copies", "bucket-governance"],
)
def test_the_vault_accounts_stores_must_be_locked_in_compliance_mode(program, culprit):
    assert names(violations(rules.vault_account_locked_in_compliance_mode, program, site=VAULT_SITE)) == {culprit}


def test_a_compliance_locked_vault_account_passes_and_sites_are_not_judged_by_this_rule():
    good = lambda: (vault(), bucket())  # noqa: E731
    assert violations(rules.vault_account_locked_in_compliance_mode, good, site=VAULT_SITE) == []
    assert violations(rules.vault_account_locked_in_compliance_mode, lambda: vault(lock=None), site=PRIMARY_SITE) == []
    found = violations(rules.vault_account_locked_in_compliance_mode, bucket, site=VAULT_SITE)
    assert [v.message for v in found] == ["the backup-only account's stack declares no backup vault"]


# --- backup-deletes-denied-to-other-accounts --------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "site", "culprit"),
    [
        (lambda: vault(policy=None), PRIMARY_SITE, "vault"),
        (lambda: vault(policy="exempts-another-account"), PRIMARY_SITE, "vault"),
        (lambda: vault(policy="allows-another-account"), PRIMARY_SITE, "vault"),
        (lambda: key("lets-another-account-delete"), PRIMARY_SITE, "copies-key"),
        (lambda: bucket(policy="allows-another-account"), PRIMARY_SITE, "dumps"),
        (lambda: key("no-deny"), VAULT_SITE, "copies-key"),
        (lambda: bucket(policy="no-deny"), VAULT_SITE, "dumps"),
    ],
    ids=[
        "vault-no-policy",
        "deny-exempts-other",
        "allows-other",
        "key-other-deletes",
        "bucket-other-deletes",
        "vault-key-destroyable",
        "vault-bucket-no-deny",
    ],
)
def test_deletes_by_other_accounts_are_caught(program, site, culprit):
    assert names(violations(rules.backup_deletes_denied_to_other_accounts, program, site=site)) == {culprit}


def test_the_components_policies_pass_the_delete_rule():
    """The vault account's (vault_access_policy) and the sites' own (deny_early_deletion_policy)."""
    good = lambda: (vault(), key("good"), bucket())  # noqa: E731
    assert violations(rules.backup_deletes_denied_to_other_accounts, good, site=VAULT_SITE) == []
    assert (
        violations(rules.backup_deletes_denied_to_other_accounts, lambda: vault(policy="site"), site=PRIMARY_SITE) == []
    )
    # A site's key without the deny is fine (its account may delete its own keys; the copies are elsewhere).
    assert violations(rules.backup_deletes_denied_to_other_accounts, lambda: key("no-deny"), site=PRIMARY_SITE) == []
