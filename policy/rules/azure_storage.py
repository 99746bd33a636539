"""Azure storage rules: the accounts that hold user files and backups (pulumi-azure-native).

Resource rules judge a StorageAccount's own inputs; stack rules join an account to its blob
service properties, containers, lifecycle policy and object replication halves (joined by the
account name, as Azure does). Numbers come from the site's retention (drplan, with the stack's
overrides): soft delete and previous versions at least `deleted_files`, GFS expiry of backups
at least each generation's retention, the default immutability at least the shortest one.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from drplan import layout
from drplan.names import PURPOSE_TAG_KEY, Role

from ._util import SITE_SCHEMA, STACK_TYPE, Stack, as_list, each_known, get, label, number, stack_policy, tags, truthy

ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
LIFECYCLE = "azure-native:storage:ManagementPolicy"
REPLICATION = "azure-native:storage:ObjectReplicationPolicy"
# What the accounts hold (their purpose tag, components/azure): both must survive the region.
FILES, BACKUPS = "user-files", "backups"
DATA_PURPOSES = (FILES, BACKUPS)
# Azure Cache for Redis' RDB persistence account (components/azure/cache_storage.py): soft delete
# is what Azure strongly discourages there, and it holds no data of the plan (the cache is
# regenerable). Exempt from soft delete and versioning only; every other rule applies.
CACHE_PERSISTENCE = "cache-persistence"
_TLS_OK = ("TLS1_2", "TLS1_3")


def _purpose(r: PolicyResource) -> str | None:
    return tags(r.props).get(PURPOSE_TAG_KEY)


# --- transport, public access, shared keys, customer key: one account at a time ------------


def _transport(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ACCOUNT:
        return
    tls = get(args.props, "minimumTlsVersion")
    if tls not in _TLS_OK:
        report(f"minimumTlsVersion is {tls or 'unset (Azure then accepts TLS 1.0)'}: set TLS1_2")
    if get(args.props, "enableHttpsTrafficOnly") is False:
        report("enableHttpsTrafficOnly is false: plain HTTP would be accepted")


azure_storage_tls = ResourceValidationPolicy(
    name="azure-storage-tls",
    description=(
        "Every Azure storage account accepts TLS 1.2 or later only (minimumTlsVersion TLS1_2; unset means "
        "TLS 1.0) and HTTPS only. Mandatory: personal data in transit is encrypted (the plan, security)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_transport,
)


def _not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CONTAINER:
        access = get(args.props, "publicAccess")
        if access not in (None, "None"):
            report(f"publicAccess is {access}: the container's blobs would be readable anonymously")
        return
    if args.resource_type != ACCOUNT:
        return
    if get(args.props, "allowBlobPublicAccess") is not False:
        report("allowBlobPublicAccess is not false: containers could be made public")
    if get(args.props, "networkRuleSet", "defaultAction") != "Deny":
        report("networkRuleSet.defaultAction is not Deny: every network reaches the account's endpoints")
    if truthy(get(args.props, "allowCrossTenantReplication")):
        report("allowCrossTenantReplication is true: objects could be replicated out of the tenant")


azure_storage_private = ResourceValidationPolicy(
    name="azure-storage-no-public-access",
    description=(
        "Azure storage accounts allow no public blob access (allowBlobPublicAccess false), deny every "
        "network by default (networkRuleSet.defaultAction Deny: private endpoints and trusted Azure "
        "services only), replicate within the tenant only; containers are not public. Mandatory: the "
        "accounts hold user uploads and database dumps."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_not_public,
)


def _no_shared_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ACCOUNT and get(args.props, "allowSharedKeyAccess") is not False:
        report("allowSharedKeyAccess is not false: the account keys (and SAS signed with them) would authorize access")


azure_storage_no_shared_key = ResourceValidationPolicy(
    name="azure-storage-no-shared-key",
    description=(
        "Azure storage accounts refuse Shared Key authorization (allowSharedKeyAccess false; unset means "
        "allowed): only Microsoft Entra identities with RBAC roles reach the data. Mandatory: an account key "
        "is a credential that bypasses every role, and cannot be scoped."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_shared_key,
)


def _customer_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ACCOUNT:
        return
    enc = get(args.props, "encryption") or {}
    if get(enc, "keySource") != "Microsoft.Keyvault":
        report(f"encryption.keySource is {get(enc, 'keySource') or 'unset'}: not a customer-managed key")
        return
    if not (get(enc, "keyVaultProperties", "keyName") and get(enc, "keyVaultProperties", "keyVaultUri")):
        report("encryption.keyVaultProperties names no key (keyName and keyVaultUri)")
    if get(enc, "keyVaultProperties", "keyVersion"):
        report("encryption.keyVaultProperties.keyVersion pins a key version: the account would not follow rotation")
    if get(enc, "requireInfrastructureEncryption") is not True:
        report("encryption.requireInfrastructureEncryption is not true (Azure sets it at account creation only)")
    if not get(enc, "encryptionIdentity", "encryptionUserAssignedIdentity"):
        report("encryption.encryptionIdentity names no user-assigned identity to reach the key with")


azure_storage_cmk = ResourceValidationPolicy(
    name="azure-storage-cmk",
    description=(
        "Azure storage accounts encrypt with a customer-managed Key Vault key (keySource Microsoft.Keyvault), "
        "versionless so that they follow the key's rotation, through a user-assigned identity, with "
        "infrastructure encryption (a second layer; Azure accepts it at account creation only). Mandatory: "
        "the plan requires encryption at rest under keys the project controls."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_customer_key,
)


# --- joined checks -------------------------------------------------------------------------


def _by_account(stack: Stack, type_: str) -> dict[str, list[PolicyResource]]:
    """Account URN → its resources of `type_` (joined by accountName, as Azure joins them)."""
    out: dict[str, list[PolicyResource]] = {}
    for r in stack.of_type(type_):
        account = stack.find(r, "accountName", ACCOUNT, ("accountName", "name"))
        if account is not None:
            out.setdefault(account.urn, []).append(r)
    return out


def _days(value: Any) -> float:
    n = number(value)
    return n if n is not None else -1


@stack_policy
def _soft_delete(stack: Stack, report: ReportViolation) -> None:
    floor = stack.site().retention.deleted_files.days
    services = _by_account(stack, BLOB_SERVICE)

    def check(account: PolicyResource) -> None:
        if _purpose(account) == CACHE_PERSISTENCE:
            return
        found = services.get(account.urn, [])
        if not found:
            report(f"{label(account)} has no BlobServiceProperties (versioning, soft delete)", account.urn)
            return
        props = found[0].props
        if get(props, "isVersioningEnabled") is not True:
            report(f"{label(account)}: blob versioning is off", account.urn)
        for key, what in (("deleteRetentionPolicy", "blob"), ("containerDeleteRetentionPolicy", "container")):
            policy = get(props, key) or {}
            if get(policy, "enabled") is not True or _days(get(policy, "days")) < floor:
                kept = get(policy, "days") if get(policy, "enabled") else "nothing"
                report(
                    f"{label(account)}: {what} soft delete keeps {kept}, the plan keeps deleted files {floor} days",
                    account.urn,
                )
        if truthy(get(props, "deleteRetentionPolicy", "allowPermanentDelete")):
            report(f"{label(account)}: allowPermanentDelete lets soft-deleted versions be purged early", account.urn)

    each_known(stack.of_type(ACCOUNT), check)


azure_storage_soft_delete = StackValidationPolicy(
    name="azure-storage-soft-delete",
    description=(
        "Every Azure storage account has blob versioning on, and blob and container soft delete for at least "
        "the plan's deleted-files retention (90 days in both tiers), without permanent delete (a Redis persistence "
        "account excepted: Azure discourages soft delete there and it holds only the regenerable cache). "
        "Mandatory: the accidental-deletion scenario restores from them."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_soft_delete,
)


@stack_policy
def _point_in_time(stack: Stack, report: ReportViolation) -> None:
    services = _by_account(stack, BLOB_SERVICE)

    def check(account: PolicyResource) -> None:
        if _purpose(account) != FILES:
            return
        for service in services.get(account.urn, []):
            restore = get(service.props, "restorePolicy") or {}
            soft = _days(get(service.props, "deleteRetentionPolicy", "days"))
            if get(restore, "enabled") is not True:
                report(f"{label(account)} (user files) has no point-in-time restore", account.urn)
            elif not 1 <= _days(get(restore, "days")) <= soft - 1:
                report(
                    f"{label(account)}: point-in-time restore of {get(restore, 'days')} days is not at least a day "
                    f"shorter than soft delete ({soft:g} days), which Azure requires",
                    account.urn,
                )
            if get(service.props, "changeFeed", "enabled") is not True:
                report(f"{label(account)}: point-in-time restore needs the change feed", account.urn)

    each_known(stack.of_type(ACCOUNT), check)


azure_storage_point_in_time_restore = StackValidationPolicy(
    name="azure-storage-point-in-time-restore",
    description=(
        "User-files accounts have point-in-time restore for block blobs, with a window at least one day shorter "
        "than blob soft delete and the change feed on (Azure's prerequisites). Mandatory: a bulk deletion or "
        "corruption of files is undone in one operation."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_point_in_time,
)


def _stack_outputs(stack: Stack) -> dict:
    roots = stack.of_type(STACK_TYPE)
    return dict(roots[0].props) if roots else {}


@stack_policy
def _immutable_backups(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    floor = site.retention.shortest.days
    lock_pending = bool(_stack_outputs(stack).get("immutabilityNextStep"))

    def check(account: PolicyResource) -> None:
        if _purpose(account) != BACKUPS:
            return
        immutable = get(account.props, "immutableStorageWithVersioning") or {}
        policy = get(immutable, "immutabilityPolicy") or {}
        if get(immutable, "enabled") is not True:
            report(f"{label(account)} (backups) has no version-level immutability", account.urn)
            return
        state = get(policy, "state")
        if state not in ("Locked", "Unlocked"):
            report(f"{label(account)}: the default immutability policy is {state or 'unset'}", account.urn)
        if _days(get(policy, "immutabilityPeriodSinceCreationInDays")) < floor:
            report(
                f"{label(account)}: versions are immutable for {get(policy, 'immutabilityPeriodSinceCreationInDays')} "
                f"days, shorter than the shortest generation ({floor} days)",
                account.urn,
            )
        if truthy(get(policy, "allowProtectedAppendWrites")):
            report(f"{label(account)}: protected append writes let locked blobs grow", account.urn)
        if site.tier.value == "prod" and state == "Unlocked" and not lock_pending:
            report(
                f"{label(account)}: the production backups' immutability policy is Unlocked (it can be shortened "
                "or removed) and the stack does not declare the documented first step (immutabilityNextStep)",
                account.urn,
            )

    each_known(stack.of_type(ACCOUNT), check)


azure_backup_immutability = StackValidationPolicy(
    name="azure-backup-immutability",
    description=(
        "Backup accounts have version-level immutability with a default policy of at least the shortest GFS "
        "generation, without protected append writes; in prod the policy is Locked (Azure creates it Unlocked: "
        "only the stack's declared first step, its immutabilityNextStep output, may be Unlocked). Mandatory: "
        "the ransomware scenario needs backups nobody can delete, the account's owner included."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_immutable_backups,
)


def _deletes(rule: Any) -> list[tuple[str, float, dict]]:
    """(what, days, filters) for each delete action of a lifecycle rule."""
    definition = get(rule, "definition") or {}
    filters = get(definition, "filters") or {}
    found = []
    for what, key in (("baseBlob", "daysAfterCreationGreaterThan"), ("version", "daysAfterCreationGreaterThan")):
        action = get(definition, "actions", what, "delete")
        if action:
            days = get(action, key)
            if days is None:
                days = get(action, "daysAfterModificationGreaterThan")
            found.append((what, _days(days), dict(filters)))
    return found


def _gfs_tag(filters: dict) -> str | None:
    matches = as_list(get(filters, "blobIndexMatch"))
    return next((get(m, "value") for m in matches if get(m, "name") == layout.GFS_TAG_KEY), None)


@stack_policy
def _retention(stack: Stack, report: ReportViolation) -> None:
    retention = stack.site().retention
    classes = {c.value: c for c in retention.classes}
    policies = _by_account(stack, LIFECYCLE)

    def check(account: PolicyResource) -> None:
        purpose = _purpose(account)
        if purpose not in DATA_PURPOSES:
            return
        rules = [r for p in policies.get(account.urn, []) for r in as_list(get(p.props, "policy", "rules"))]
        for rule in rules:
            if get(rule, "enabled") is False:
                continue
            for what, days, filters in _deletes(rule):
                tag = _gfs_tag(filters)
                if purpose == FILES:
                    floor = retention.deleted_files.days
                elif tag in classes:
                    floor = retention.for_class(classes[tag]).days
                elif tag is None and what == "version":
                    floor = retention.shortest.days
                else:
                    floor = retention.longest.days  # untagged (or unknown tag) current backups
                if days < floor:
                    report(
                        f"{label(account)}: lifecycle rule {get(rule, 'name')} deletes {what} after {days:g} days, "
                        f"before the plan's {floor} days",
                        account.urn,
                    )
        if purpose == FILES and not any(w == "version" for r in rules for w, _, _ in _deletes(r)):
            report(f"{label(account)}: no lifecycle rule removes previous versions (kept forever)", account.urn)
        if purpose == BACKUPS:
            tagged = {
                get(m, "value")
                for r in rules
                for _, _, f in _deletes(r)
                for m in as_list(get(f, "blobIndexMatch"))
                if get(m, "name") == layout.GFS_TAG_KEY
            }
            missing = [c.value for c in retention.classes if c.value not in tagged]
            if missing:
                report(f"{label(account)}: no GFS expiry by index tag for {', '.join(missing)}", account.urn)

    each_known(stack.of_type(ACCOUNT), check)


azure_storage_retention = StackValidationPolicy(
    name="azure-storage-retention",
    description=(
        "Lifecycle rules of the data accounts keep what the plan says: on user-files accounts previous versions "
        "are removed, never before the deleted-files retention; on backup accounts each GFS generation expires "
        "by its blob index tag (drplan.layout.GFS_TAG_KEY) no earlier than its retention, previous versions no "
        "earlier than the shortest generation, untagged current blobs no earlier than the longest. Mandatory: "
        "retention is enforced by the storage, and too short a rule would destroy backups the plan keeps."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_retention,
)


@stack_policy
def _replicated(stack: Stack, report: ReportViolation) -> None:
    site = stack.site()
    outputs = _stack_outputs(stack)
    waiting = str(outputs.get("nextStep") or "")
    halves = _by_account(stack, REPLICATION)

    def check(account: PolicyResource) -> None:
        purpose = _purpose(account)
        if purpose not in DATA_PURPOSES:
            return
        mine = halves.get(account.urn, [])
        source = [h for h in mine if get(h.props, "objectReplicationPolicyId") not in (None, "default")]
        destination = [h for h in mine if get(h.props, "objectReplicationPolicyId") == "default"]
        key = "files" if purpose == FILES else "backups"
        if site.role is Role.PRIMARY:
            if not source and f"{key}ReplicationPolicy" not in waiting:
                report(f"{label(account)} ({purpose}) is not replicated to the DR region", account.urn)
            for h in destination:
                report(f"{label(h)}: a primary site's account is a destination of replication", h.urn)
        else:
            activated = truthy(outputs.get("activated"))
            if not activated and not destination and f"{key}Account" not in waiting:
                report(f"{label(account)} ({purpose}) receives no replication from the primary", account.urn)
            if activated and destination:
                report(f"{label(account)}: activated, yet a destination half still refuses writes (409)", account.urn)
        for h in mine:
            for rule in as_list(get(h.props, "rules")):
                if get(rule, "filters", "prefixMatch"):
                    report(f"{label(h)}: a prefix filter leaves part of the container unreplicated", h.urn)

    each_known(stack.of_type(ACCOUNT), check)


azure_storage_replicated = StackValidationPolicy(
    name="azure-storage-replicated",
    description=(
        "On the primary site every user-files and backup account is the source of an object replication policy "
        "to the DR site (unless the stack's nextStep says the DR half is still to be made, the documented "
        "bootstrap); on a DR site standing by each is the destination of one, and an activated DR site has none "
        "(its containers must take writes). No prefix filters. Mandatory: without it a region loss loses the "
        "files and the backup copies (the data-centre-loss scenario)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_replicated,
)


POLICIES = [
    azure_storage_tls,
    azure_storage_private,
    azure_storage_no_shared_key,
    azure_storage_cmk,
    azure_storage_soft_delete,
    azure_storage_point_in_time_restore,
    azure_backup_immutability,
    azure_storage_retention,
    azure_storage_replicated,
]
