"""Resource protection and IAM: stateful resources protected, no admin wildcards, and the
backup functions' roles cannot delete backups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from ._util import (
    Stack,
    action_matches,
    actions,
    allows,
    as_list,
    each_known,
    get,
    label,
    policy_statements,
    resources,
    stack_policy,
)

# Resources whose loss loses data (or the keys to data), across the clouds of this project.
STATEFUL_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:kms/replicaKey:ReplicaKey",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:backup/vault:Vault",
        "aws:backup/logicallyAirGappedVault:LogicallyAirGappedVault",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/cluster:Cluster",
        "aws:secretsmanager/secret:Secret",
        "aws:dynamodb/table:Table",
        "aws:efs/fileSystem:FileSystem",
        "aws:route53/zone:Zone",
        "kubernetes:core/v1:PersistentVolumeClaim",
        "kubernetes:core/v1:PersistentVolume",
    }
)


def _protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in STATEFUL_TYPES and not args.opts.protect:
        report(f"stateful {args.resource_type} is not protected: pass ResourceOptions(protect=True)")


stateful_protected = ResourceValidationPolicy(
    name="stateful-protected",
    description=(
        "Stateful resources (buckets, KMS keys, databases, backup vaults, caches, secrets, DNS zones, "
        "persistent volumes) carry the `protect` resource option. Mandatory: a refactor that renames or "
        "drops one must fail the preview instead of deleting the data (DESIGN: stateful resources cannot "
        "be destroyed by accident)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_protected,
)


# --- IAM: no admin wildcards -------------------------------------------------------------

ADMIN_POLICY_ARNS = frozenset(
    {"arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/PowerUserAccess"}
)
_POLICY_DOC_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
# Resource-based policies: an Allow of everything on them is as bad.
_RESOURCE_POLICY_TYPES = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:backup/vaultPolicy:VaultPolicy": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
}
ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")


def documents_of(resource_type: str, props: Any) -> list[Any]:
    """The IAM policy documents a resource carries."""
    if resource_type in _POLICY_DOC_TYPES:
        return [get(props, _POLICY_DOC_TYPES[resource_type])]
    if resource_type == ROLE:
        return [get(p, "policy") for p in as_list(get(props, "inlinePolicies"))]
    return []


def wildcard_statements(documents: Iterable[Any]) -> list[dict[str, Any]]:
    bad = []
    for d in documents:
        for s in policy_statements(d):
            if allows(s) and any(a in ("*", "*:*") for a in actions(s)) and "*" in resources(s):
                bad.append(s)
    return bad


def _no_wildcards(args: ResourceValidationArgs, report: ReportViolation) -> None:
    documents = documents_of(args.resource_type, args.props)
    if args.resource_type in _RESOURCE_POLICY_TYPES:
        documents.append(get(args.props, _RESOURCE_POLICY_TYPES[args.resource_type]))
    for s in wildcard_statements(documents):
        report(f"statement {s.get('Sid') or ''} allows every action on every resource")
    arns = []
    if args.resource_type == ROLE:
        arns = [str(a) for a in as_list(get(args.props, "managedPolicyArns"))]
    elif args.resource_type in ATTACHMENT_TYPES:
        arns = [str(get(args.props, "policyArn") or "")]
    for arn in arns:
        if arn in ADMIN_POLICY_ARNS:
            report(f"attaches {arn}")


iam_no_wildcard_admin = ResourceValidationPolicy(
    name="iam-no-wildcard-admin",
    description=(
        "No IAM policy (inline, managed, role/user/group policy) and no resource policy (bucket, vault, key, "
        "queue, topic) has an Allow statement with action '*' on resource '*', and no role gets "
        "AdministratorAccess or PowerUserAccess. Mandatory: one leaked credential with such a grant defeats "
        "every other control of the pack."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_no_wildcards,
)


# --- backup functions cannot delete backups ------------------------------------------------

FUNCTION = "aws:lambda/function:Function"
# The Kubernetes CronJob realisation of the same functions gets its AWS role this way.
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
# Every action that deletes a backup, shortens its retention or lifts its lock.
BACKUP_DESTROYING_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketVersioning",
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:DeleteBackupPlan",
    "rds:DeleteDBSnapshot",
    "rds:DeleteDBClusterSnapshot",
    "rds:DeleteDBInstanceAutomatedBackup",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
)
# AWS managed policies that grant some of the above.
DESTROYING_MANAGED_POLICIES = frozenset(
    {
        *ADMIN_POLICY_ARNS,
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
        "arn:aws:iam::aws:policy/AWSBackupFullAccess",
        "arn:aws:iam::aws:policy/AmazonRDSFullAccess",
    }
)


def destroying_grants(documents: Iterable[Any]) -> list[str]:
    """The backup-destroying actions that the Allow statements of `documents` grant."""
    granted = []
    for d in documents:
        for s in policy_statements(d):
            if not allows(s):
                continue
            for action in BACKUP_DESTROYING_ACTIONS:
                if any(action_matches(p, action) for p in actions(s)) and action not in granted:
                    granted.append(action)
    return granted


@stack_policy
def _backup_functions(stack: Stack, report: ReportViolation) -> None:
    roles = stack.of_type(ROLE)

    def attached_to(role: PolicyResource) -> tuple[list[Any], list[str]]:
        documents = documents_of(ROLE, role.props)
        managed = [str(a) for a in as_list(get(role.props, "managedPolicyArns"))]
        for t in _POLICY_DOC_TYPES:
            if t == "aws:iam/policy:Policy":
                continue
            for p in stack.of_type(t):
                if stack.find(p, "role", ROLE, ("name", "id")) is role:
                    documents.append(get(p.props, "policy"))
        for att in stack.of_type(*ATTACHMENT_TYPES):
            if stack.find(att, "role", ROLE, ("name", "id")) is not role:
                continue
            arn = get(att.props, "policyArn")
            managed.append(str(arn))
            policy = stack.find(att, "policyArn", "aws:iam/policy:Policy", ("arn",))
            if policy is not None:
                documents.append(get(policy.props, "policy"))
        return documents, managed

    def check(fn: PolicyResource) -> None:
        key = "roleArn" if fn.resource_type == POD_IDENTITY else "role"
        role = stack.find(fn, key, ROLE, ("arn",))
        if role is None:
            if roles:
                report(f"{label(fn)}: its role {get(fn.props, key)} is not declared in this stack", fn.urn)
            return
        documents, managed = attached_to(role)
        granted = destroying_grants(documents)
        bad_managed = sorted(set(managed) & DESTROYING_MANAGED_POLICIES)
        if granted or bad_managed:
            report(
                f"{label(fn)}: role {label(role)} may delete or unprotect backups "
                f"({', '.join(granted + bad_managed)})",
                fn.urn,
            )

    each_known(stack.of_type(FUNCTION, POD_IDENTITY), check)


backup_function_cannot_delete_backups = StackValidationPolicy(
    name="backup-function-cannot-delete-backups",
    description=(
        "The role of every function (the backup, verify and GDPR functions, as Lambda functions or as "
        "Kubernetes CronJobs through an EKS Pod Identity association) grants no action that deletes a "
        "backup, shortens its retention or lifts its lock (s3:DeleteObject*, lifecycle/Object Lock/versioning "
        "changes, governance bypass, backup:DeleteRecoveryPoint, RDS snapshot deletion, KMS key deletion, or "
        "wildcards covering them, or managed policies granting them). Mandatory: retention is enforced by the "
        "storage, never by code that deletes (DESIGN); a compromised function must not be able to destroy "
        "the backups it writes."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_backup_functions,
)


POLICIES = [stateful_protected, iam_no_wildcard_admin, backup_function_cannot_delete_backups]
