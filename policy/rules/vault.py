"""The backup-only account (the `vault` stack, infra/vault): locked in compliance mode, and no
other account may delete what it holds.

Ransomware with stolen administrator rights in the production account: whatever that account
can delete, shorten or make unreadable is not a backup. So the vault stack's vaults are under
Vault Lock in compliance mode, its keys cannot be scheduled for deletion, and every access,
key and bucket policy refuses deletes to principals of other accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, StackValidationPolicy

from drplan.names import Role

from ._util import (
    BUCKET,
    BUCKET_POLICY,
    OBJECT_LOCK,
    SITE_SCHEMA,
    STACK_TYPE,
    Stack,
    action_matches,
    actions,
    as_list,
    each_known,
    get,
    label,
    number,
    policy_statements,
    stack_policy,
)
from .backup import AIR_GAPPED_VAULT, VAULT, VAULT_LOCK, is_backup_bucket

VAULT_POLICY = "aws:backup/vaultPolicy:VaultPolicy"
KEY = "aws:kms/key:Key"

# What no principal of another account may do to a vault's recovery points.
RECOVERY_POINT_DELETES = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle")
VAULT_RECONFIGURING = (
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:PutBackupVaultLockConfiguration",
)
# ... to a key that protects copies (destroying it makes them unreadable).
KEY_DESTROYING = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:DeleteImportedKeyMaterial")
# ... in a bucket that stores backups.
OBJECT_DELETES = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateDelete",
    "s3:BypassGovernanceRetention",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
)
_ACCOUNT_IN_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")


def _own_account(stack: Stack) -> str | None:
    """The stack's account: the vault stack's `site.account` export, else the account of its keys."""
    for root in stack.of_type(STACK_TYPE):
        account = get(root.props, "site", "account")
        if account:
            return str(account)
    for key in stack.of_type(KEY):
        m = _ACCOUNT_IN_ARN.match(str(get(key.props, "arn") or ""))
        if m:
            return m.group(1)
    return None


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in as_list(principal.get("AWS"))]
    return []  # service principals act for this account


def _foreign(principal: str, own: str | None) -> bool:
    """A principal of another account ('*' is every account)."""
    if principal == "*":
        return True
    m = re.match(r"^(?:arn:aws[a-z-]*:iam::)?(\d{12})(?::|$)", principal)
    return m is not None and m.group(1) != own


def foreign_grants(documents: Iterable[Any], own: str | None, forbidden: Iterable[str]) -> list[str]:
    """The `forbidden` actions that Allow statements grant to principals of other accounts."""
    forbidden = tuple(forbidden)
    found: list[str] = []
    for d in documents:
        for s in policy_statements(d):
            if s.get("Effect") != "Allow" or not any(_foreign(p, own) for p in _principals(s)):
                continue
            for action in forbidden:
                if any(action_matches(p, action) for p in actions(s)) and action not in found:
                    found.append(action)
    return found


def _covers_every_other_account(statement: dict[str, Any], own: str | None) -> bool:
    """A Deny for every principal ('*'), unconditional or exempting only this account."""
    if statement.get("Effect") != "Deny" or "*" not in _principals(statement):
        return False
    condition = statement.get("Condition")
    if not condition:
        return True
    if set(condition) != {"StringNotEquals"}:
        return False
    exempt = condition["StringNotEquals"]
    return set(exempt) == {"aws:PrincipalAccount"} and as_list(exempt["aws:PrincipalAccount"]) == [own]


def denies_every_other_account(documents: Iterable[Any], own: str | None, required: Iterable[str]) -> list[str]:
    """The `required` actions that no Deny statement refuses to every other account."""
    statements = [s for d in documents for s in policy_statements(d) if _covers_every_other_account(s, own)]
    return [a for a in required if not any(any(action_matches(p, a) for p in actions(s)) for s in statements)]


# --- deletes denied to other accounts --------------------------------------------------


@stack_policy
def _deletes_denied(stack: Stack, report: ReportViolation) -> None:
    own = _own_account(stack)
    vault_stack = stack.site().role is Role.VAULT
    policies_of: dict[str, list[PolicyResource]] = {}
    for p in stack.of_type(VAULT_POLICY):
        target = stack.find(p, "backupVaultName", VAULT, ("name", "id"))
        if target is not None:
            policies_of.setdefault(target.urn, []).append(p)

    def check_vault(v: PolicyResource) -> None:
        docs = [get(p.props, "policy") for p in policies_of.get(v.urn, [])]
        if not docs:
            report(f"{label(v)} has no access policy: nothing refuses deleting its recovery points", v.urn)
            return
        missing = denies_every_other_account(docs, own, RECOVERY_POINT_DELETES)
        if missing:
            report(f"{label(v)}'s access policy does not deny {', '.join(missing)} to every other account", v.urn)
        granted = foreign_grants(docs, own, (*RECOVERY_POINT_DELETES, *VAULT_RECONFIGURING))
        if granted:
            report(f"{label(v)}'s access policy allows another account {', '.join(granted)}", v.urn)

    def check_key(k: PolicyResource) -> None:
        doc = get(k.props, "policy")
        granted = foreign_grants([doc], own, KEY_DESTROYING)
        if granted:
            report(f"{label(k)}'s key policy allows another account {', '.join(granted)}", k.urn)
        if vault_stack and denies_every_other_account([doc], own, KEY_DESTROYING[:2]):
            report(
                f"{label(k)} (backup-only account) does not deny kms:ScheduleKeyDeletion and kms:DisableKey to every "
                "principal: its copies could be made unreadable",
                k.urn,
            )

    bucket_policies = stack.configs_by_bucket(BUCKET_POLICY)

    def check_bucket(b: PolicyResource) -> None:
        docs = [get(p.props, "policy") for p in bucket_policies.get(b.urn, [])]
        granted = foreign_grants(docs, own, OBJECT_DELETES)
        if granted:
            report(f"{label(b)}'s bucket policy allows another account {', '.join(granted)}", b.urn)
        if vault_stack and is_backup_bucket(b):
            missing = denies_every_other_account(docs, own, OBJECT_DELETES)
            if missing:
                report(
                    f"{label(b)} (backup-only account) does not deny {', '.join(missing)} to every other account",
                    b.urn,
                )

    each_known(stack.of_type(VAULT), check_vault)
    each_known(stack.of_type(KEY), check_key)
    each_known(stack.of_type(BUCKET), check_bucket)


backup_deletes_denied_to_other_accounts = StackValidationPolicy(
    name="backup-deletes-denied-to-other-accounts",
    description=(
        "Every backup vault's access policy denies backup:DeleteRecoveryPoint and "
        "UpdateRecoveryPointLifecycle to every principal of another account ('*', unconditional or exempting "
        "only the vault's own account) and allows another account no delete; no key policy allows another "
        "account to schedule a key's deletion, disable it or replace its policy; no bucket policy allows "
        "another account to delete objects, replicate deletes, bypass governance retention or change the "
        "lifecycle or the policy. In the backup-only account (role vault) every key also denies its deletion "
        "and disabling to everyone, and every backup bucket denies those deletes to every other account. "
        "Mandatory: the ransomware scenario with stolen admin rights in the production account; what that "
        "account can delete is no backup."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_deletes_denied,
)


# --- the backup-only account locked in compliance mode -----------------------------------


@stack_policy
def _locked(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    if site.role is not Role.VAULT:
        return
    retention = site.retention
    locks = stack.of_type(VAULT_LOCK)

    def check_vault(v: PolicyResource) -> None:
        name = get(v.props, "name")
        mine = [
            lk
            for lk in locks
            if stack.find(lk, "backupVaultName", VAULT, ("name", "id")) is v or get(lk.props, "backupVaultName") == name
        ]
        compliance = [lk for lk in mine if get(lk.props, "changeableForDays") is not None]
        if not compliance:
            report(f"{label(v)} (backup-only account) has no Vault Lock in compliance mode (changeableForDays)", v.urn)
            return
        for lk in compliance:
            low = number(get(lk.props, "minRetentionDays"))
            if low is None or low < retention.shortest.days:
                report(
                    f"{label(lk)} minRetentionDays {low} admits copies kept less than the shortest GFS generation "
                    f"({retention.shortest.days} d): a compromised site could copy in what expires at once",
                    lk.urn,
                )

    def check_air_gapped(v: PolicyResource) -> None:
        low = number(get(v.props, "minRetentionDays"))  # always compliance-locked; its bounds still count
        if low is None or low < retention.shortest.days:
            report(f"{label(v)} minRetentionDays {low} < {retention.shortest.days} d", v.urn)

    object_locks = stack.configs_by_bucket(OBJECT_LOCK)

    def check_bucket(b: PolicyResource) -> None:
        if not is_backup_bucket(b):
            return
        modes = [get(c.props, "rule", "defaultRetention", "mode") for c in object_locks.get(b.urn, [])]
        if "COMPLIANCE" not in modes:
            report(f"{label(b)} (backup-only account) has no Object Lock in COMPLIANCE mode (found {modes})", b.urn)

    vaults = stack.of_type(VAULT, AIR_GAPPED_VAULT)
    if not vaults:
        report("the backup-only account's stack declares no backup vault", None)
    each_known(stack.of_type(VAULT), check_vault)
    each_known(stack.of_type(AIR_GAPPED_VAULT), check_air_gapped)
    each_known(stack.of_type(BUCKET), check_bucket)


vault_account_locked_in_compliance_mode = StackValidationPolicy(
    name="vault-account-locked-in-compliance-mode",
    description=(
        "In the backup-only account's stack (site role vault): it declares a vault, every backup vault has a "
        "Vault Lock in compliance mode (changeableForDays set) whose minRetentionDays is at least the "
        "shortest GFS generation (logically air-gapped vaults are always in compliance mode; their minimum "
        "counts too), and every backup bucket has Object Lock in COMPLIANCE mode. Mandatory: in compliance "
        "mode nobody, the vault account's root included, deletes a copy early or lifts the lock."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_locked,
)


POLICIES = [vault_account_locked_in_compliance_mode, backup_deletes_denied_to_other_accounts]
