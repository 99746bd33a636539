"""The Azure data tier (azure-native): PostgreSQL flexible server, the Backup vault and its
policy, Azure Cache for Redis, the audit containers, the functions' custom role.

Numbers come from drplan (the site's effective retention, the audit retention); the engine sees
the SDK's camelCase names (e.g. `redisConfiguration.rdbBackupEnabled`, which the provider writes
as `rdb-backup-enabled`).
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from drplan.periods import Period, Unit
from drplan.retention import RETENTION, GfsClass, Tier

from ._util import SITE_SCHEMA, Stack, as_list, each_known, get, label, number, stack_policy, truthy

PG_SERVER = "azure-native:dbforpostgresql:Server"
PG_CONFIG = "azure-native:dbforpostgresql:Configuration"
BACKUP_VAULT = "azure-native:dataprotection:BackupVault"
BACKUP_POLICY = "azure-native:dataprotection:BackupPolicy"
REDIS = "azure-native:redis:Redis"
CONTAINER_POLICY = "azure-native:storage:BlobContainerImmutabilityPolicy"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
PG_DATASOURCE = "Microsoft.DBforPostgreSQL/flexibleServers"
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
MIN_TLS = "TLSv1.2"
_ISO = re.compile(r"^P(\d+)([DWMY])$")
_ISO_UNITS = {"D": Unit.DAYS, "W": Unit.WEEKS, "M": Unit.MONTHS, "Y": Unit.YEARS}
# Blob data actions that destroy or move backups (Azure permissions for Storage).
DESTRUCTIVE = ("/delete", "deleteBlobVersion/action", "permanentDelete/action", "move/action")


def iso_days(duration: Any) -> int | None:
    """An ISO 8601 duration (P30D, P12W, P12M, P7Y) in whole days, rounded as drplan rounds."""
    m = _ISO.match(str(duration or ""))
    return Period(int(m.group(1)), _ISO_UNITS[m.group(2)]).days if m else None


def _is_replica(props) -> bool:
    return get(props, "createMode") == "Replica"


# --- PostgreSQL flexible server -------------------------------------------------------------


def _postgres(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != PG_SERVER:
        return
    p = args.props
    if get(p, "dataEncryption", "type") != "AzureKeyVault":
        report("dataEncryption.type is not AzureKeyVault: data, WAL and backups under Microsoft's key only")
    if get(p, "network", "publicNetworkAccess") != "Disabled" or not get(p, "network", "delegatedSubnetResourceId"):
        report("not private: network.publicNetworkAccess must be Disabled with a delegated subnet")
    if _is_replica(p):
        return  # replicas take no backups and support no HA
    if get(p, "highAvailability", "mode") != "ZoneRedundant":
        report("highAvailability.mode is not ZoneRedundant: a zone failure takes the primary down")
    if get(p, "backup", "geoRedundantBackup") != "Enabled":
        report("backup.geoRedundantBackup is not Enabled (it can only be set when the server is created)")
    cmk = get(p, "dataEncryption", "type") == "AzureKeyVault"
    geo_cmk = cmk and get(p, "backup", "geoRedundantBackup") == "Enabled"
    if geo_cmk and not get(p, "dataEncryption", "geoBackupKeyURI"):
        report("geo-redundant backups without dataEncryption.geoBackupKeyURI: the paired region's copy has no key")
    wal = RETENTION[Tier.PROD].wal.days
    days = number(get(p, "backup", "backupRetentionDays"))
    if days is None or days < wal:
        report(f"backup.backupRetentionDays {days} is below the plan's WAL retention of {wal} days")


azure_postgres_hardened = ResourceValidationPolicy(
    name="azure-postgres-hardened",
    description=(
        "Every PostgreSQL flexible server is encrypted with a customer-managed key and private (no public network "
        "access, a delegated subnet); a primary is zone-redundant, keeps point-in-time backups at least the plan's "
        "WAL retention and geo-redundant backups (with a key for the paired region's copy). Mandatory: these are "
        "the database's own recovery sources, and most of them can only be chosen when the server is created."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_postgres,
)


@stack_policy
def _postgres_tls(stack: Stack, report: ReportViolation) -> None:
    configs = stack.of_type(PG_CONFIG)

    def check(server: PolicyResource) -> None:
        mine = {
            get(c.props, "configurationName"): str(get(c.props, "value") or "").lower()
            for c in configs
            if stack.find(c, "serverName", PG_SERVER, ("name", "serverName")) is server
        }
        if mine.get("require_secure_transport") != "on":
            report(f"{label(server)}: no Configuration require_secure_transport=on (plain-text connections allowed)",
                   server.urn)
        version = mine.get("ssl_min_protocol_version", "")
        known = [v.lower() for v in TLS_VERSIONS]
        if version not in known or known.index(version) < known.index(MIN_TLS.lower()):
            report(f"{label(server)}: ssl_min_protocol_version is {version or 'not set'}, not at least {MIN_TLS}",
                   server.urn)

    each_known(stack.of_type(PG_SERVER), check)


azure_postgres_tls = StackValidationPolicy(
    name="azure-postgres-tls",
    description=(
        "Every PostgreSQL flexible server has the server parameters require_secure_transport=on and "
        f"ssl_min_protocol_version at least {MIN_TLS} (a replica too: later parameter changes are not replicated). "
        "Mandatory: the plan requires encryption in transit."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_postgres_tls,
)


# --- Backup vault and its policy --------------------------------------------------------------


@stack_policy
def _vault(stack: Stack, report: ReportViolation) -> None:
    locked = stack.site().tier is Tier.PROD

    def check(v: PolicyResource) -> None:
        props = get(v.props, "properties") or {}
        sec = get(props, "securitySettings") or {}
        state = get(sec, "immutabilitySettings", "state")
        if locked and state != "Locked":
            report(f"{label(v)}: immutabilitySettings.state is {state}, not Locked (prod)", v.urn)
        elif state in (None, "Disabled"):
            report(f"{label(v)}: immutability is disabled", v.urn)
        soft = get(sec, "softDeleteSettings", "state")
        if soft not in ("On", "AlwaysOn") or (locked and soft != "AlwaysOn"):
            report(f"{label(v)}: softDeleteSettings.state is {soft}, not {'AlwaysOn' if locked else 'On'}", v.urn)
        storage = [get(s, "type") for s in as_list(get(props, "storageSettings"))]
        if "GeoRedundant" not in storage:
            report(f"{label(v)}: vault storage is {storage}, not GeoRedundant", v.urn)
        if get(props, "featureSettings", "crossRegionRestoreSettings", "state") != "Enabled":
            report(f"{label(v)}: Cross Region Restore is not enabled (restores to the paired region)", v.urn)

    each_known(stack.of_type(BACKUP_VAULT), check)


azure_backup_vault_immutable = StackValidationPolicy(
    name="azure-backup-vault-immutable",
    description=(
        "Every Azure Backup vault is immutable (Locked in the prod tier), keeps soft-deleted backups (AlwaysOn in "
        "prod), stores them geo-redundantly and allows Cross Region Restore. Mandatory: the ransomware scenario "
        "needs backups an account holder cannot delete, and region loss needs them in the paired region."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_vault,
)


@stack_policy
def _policy_retention(stack: Stack, report: ReportViolation) -> None:
    retention = stack.site().retention
    want = {"Default": retention.for_class(GfsClass.DAILY)}
    want |= {c.value.capitalize(): retention.for_class(c) for c in retention.classes if c is not GfsClass.DAILY}

    def check(p: PolicyResource) -> None:
        props = get(p.props, "properties") or {}
        if PG_DATASOURCE not in as_list(get(props, "datasourceTypes")):
            return
        kept = {}
        for rule in as_list(get(props, "policyRules")):
            if get(rule, "objectType") == "AzureRetentionRule":
                durations = [iso_days(get(lc, "deleteAfter", "duration")) for lc in as_list(get(rule, "lifecycles"))]
                kept[get(rule, "name")] = max((d for d in durations if d is not None), default=None)
        for name, floor in want.items():
            got = kept.get(name)
            if got is None:
                report(f"{label(p)}: no retention rule {name} (the plan keeps {floor})", p.urn)
            elif got < floor.days:
                report(f"{label(p)}: rule {name} keeps {got:g} days, less than the plan's {floor}", p.urn)

    each_known(stack.of_type(BACKUP_POLICY), check)


azure_backup_policy_retention = StackValidationPolicy(
    name="azure-backup-policy-retention",
    description=(
        "Every Azure Backup policy for PostgreSQL flexible server keeps each generation of the site's tier at least "
        "as long as the plan (drplan.retention, with the stack's overrides): Default = daily, Weekly, Monthly, "
        "Yearly. Mandatory: retention minimums are the plan's, and the compliance copies are the yearly ones."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SITE_SCHEMA,
    validate=_policy_retention,
)


# --- Redis --------------------------------------------------------------------------------------


def _redis(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REDIS:
        return
    p = args.props
    if get(p, "enableNonSslPort") is True:
        report("enableNonSslPort: the plain-text port 6379 is open")
    if get(p, "minimumTlsVersion") != "1.2":
        report(f"minimumTlsVersion is {get(p, 'minimumTlsVersion')}, not 1.2")
    if get(p, "publicNetworkAccess") != "Disabled":
        report("publicNetworkAccess is not Disabled: the cache answers on a public endpoint")
    if get(p, "sku", "name") != "Premium" or not truthy(get(p, "redisConfiguration", "rdbBackupEnabled")):
        report("no RDB persistence (Premium, redisConfiguration rdb-backup-enabled): the plan's daily snapshot")


azure_redis_hardened = ResourceValidationPolicy(
    name="azure-redis-hardened",
    description=(
        "Every Azure Cache for Redis is TLS 1.2+ only (no non-TLS port), not publicly reachable, and Premium with "
        "RDB persistence (the plan's daily snapshot). Mandatory: the cache holds sessions and personal data in "
        "transit; plain text or a public endpoint would expose them."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_redis,
)


# --- audit archive and the functions' role -------------------------------------------------------


def _audit_container(args: ResourceValidationArgs, report: ReportViolation) -> None:
    container = str(get(args.props, "containerName") or "")
    if args.resource_type != CONTAINER_POLICY or not container.startswith("insights-"):
        return
    floor = RETENTION[Tier.PROD].audit_logs
    days = number(get(args.props, "immutabilityPeriodSinceCreationInDays"))
    if days is None or days < floor.days:
        report(f"immutabilityPeriodSinceCreationInDays {days} is below the plan's audit retention of {floor}")
    appends = ("allowProtectedAppendWrites", "allowProtectedAppendWritesAll")
    if not any(truthy(get(args.props, a)) for a in appends):
        report("allowProtectedAppendWrites is off: Azure Monitor writes append blobs, which the policy would refuse")


azure_audit_container_retention = ResourceValidationPolicy(
    name="azure-audit-container-retention",
    description=(
        "The immutability policy of every Azure Monitor export container (insights-*) keeps blobs at least the "
        "plan's audit retention and allows protected append writes (diagnostic settings write append blobs). "
        "Mandatory: audit logs are kept 7 years, unalterable."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_audit_container,
)


def _custom_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE_DEFINITION:
        return
    for perm in as_list(get(args.props, "permissions")):
        for action in as_list(get(perm, "dataActions")) + as_list(get(perm, "actions")):
            if "*" in str(action) or (
                "blobServices" in str(action) and any(str(action).endswith(d) for d in DESTRUCTIVE)
            ):
                report(f"grants {action}: a custom role of this project never deletes, moves or wildcards blobs")


azure_custom_role_no_delete = ResourceValidationPolicy(
    name="azure-custom-role-no-delete",
    description=(
        "No custom role definition grants a wildcard or a blob delete, version delete, permanent delete or move. "
        "Mandatory: the functions write and read backups and never delete them; retention is the storage's job."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_custom_role,
)


POLICIES = [
    azure_postgres_hardened,
    azure_postgres_tls,
    azure_backup_vault_immutable,
    azure_backup_policy_retention,
    azure_redis_hardened,
    azure_audit_container_retention,
    azure_custom_role_no_delete,
]
