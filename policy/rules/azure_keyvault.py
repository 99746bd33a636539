"""Azure Key Vault rules: the vaults that hold the customer-managed keys and the credentials."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._util import as_list, get, number

VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
# What a deleted vault, key or secret must stay recoverable for: Key Vault's maximum, 90 days,
# which is also the plan's deleted-files retention.
SOFT_DELETE_DAYS = 90
MIN_RSA_BITS = 3072
_EVERY_ADDRESS = ("0.0.0.0/0", "0.0.0.0")  # noqa: S104 - compared against, never bound


def _vault_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != VAULT:
        return
    props = get(args.props, "properties") or {}
    if get(props, "enablePurgeProtection") is not True:
        report("enablePurgeProtection is not true: a deleted vault or key could be purged at once (crypto-shredding)")
    if get(props, "enableSoftDelete") is False:
        report("enableSoftDelete is false")
    if (number(get(props, "softDeleteRetentionInDays")) or SOFT_DELETE_DAYS) < SOFT_DELETE_DAYS:
        report(f"softDeleteRetentionInDays is {get(props, 'softDeleteRetentionInDays')}, below {SOFT_DELETE_DAYS}")
    if get(props, "enableRbacAuthorization") is not True:
        report("enableRbacAuthorization is not true: access policies grant vault-wide rights, not per key or secret")


azure_keyvault_protected = ResourceValidationPolicy(
    name="azure-keyvault-protected",
    description=(
        "Key Vaults have purge protection, soft delete for 90 days (the most Key Vault allows) and RBAC "
        "authorization (roles scoped to a key or a secret, not vault-wide access policies). Mandatory: losing "
        "a customer-managed key makes every backup encrypted with it unreadable."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_vault_protected,
)


def _vault_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != VAULT:
        return
    props = get(args.props, "properties") or {}
    acls = get(props, "networkAcls") or {}
    if get(acls, "defaultAction") != "Deny":
        report("networkAcls.defaultAction is not Deny: the vault's data plane is reachable from every network")
    for rule in as_list(get(acls, "ipRules")):
        if str(get(rule, "value")) in _EVERY_ADDRESS:
            report("networkAcls.ipRules allows every address")


azure_keyvault_private = ResourceValidationPolicy(
    name="azure-keyvault-private",
    description=(
        "Key Vaults deny every network by default (networkAcls.defaultAction Deny): their private endpoint, "
        "trusted Azure services and the listed deployer addresses only. Mandatory: the vault holds the keys "
        "of every backup and the database credentials; a reachable data plane is one stolen token away."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_vault_private,
)


def _key_rotates(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != KEY:
        return
    props = get(args.props, "properties") or {}
    policy = get(props, "rotationPolicy") or {}
    actions = [str(get(a, "action", "type")).lower() for a in as_list(get(policy, "lifetimeActions"))]
    if "rotate" not in actions:
        report("the key has no rotation policy with a rotate action")
    if not get(policy, "attributes", "expiryTime"):
        report("the key's rotation policy sets no expiry for new versions")
    if str(get(props, "kty", default="")).startswith("RSA") and (number(get(props, "keySize")) or 2048) < MIN_RSA_BITS:
        report(f"RSA key of {get(props, 'keySize') or 2048} bits: at least {MIN_RSA_BITS}")
    if get(props, "attributes", "exportable") is True:
        report("the key is exportable")


azure_keyvault_key_rotation = ResourceValidationPolicy(
    name="azure-keyvault-key-rotation",
    description=(
        "Customer-managed keys rotate automatically (a rotation policy with a rotate action and an expiry for "
        "new versions), are RSA of at least 3072 bits, and not exportable. Mandatory: the plan's keys are "
        "rotated, and the consumers (storage, PostgreSQL, the backup vault) follow versionless keys."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_key_rotates,
)

POLICIES = [azure_keyvault_protected, azure_keyvault_private, azure_keyvault_key_rotation]
