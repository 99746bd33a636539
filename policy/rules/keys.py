"""KMS keys: rotation and explicit policies; copies encrypted with a key of their own region."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from ._util import (
    REPLICATION,
    Stack,
    arn_region,
    as_list,
    each_known,
    get,
    label,
    policy_statements,
    resource_region,
    stack_policy,
)
from .rds import RDS_CLUSTER, RDS_INSTANCE, is_replica

KEY = "aws:kms/key:Key"
REPLICA_KEY = "aws:kms/replicaKey:ReplicaKey"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
VAULT = "aws:backup/vault:Vault"
REDIS_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
SYMMETRIC = "SYMMETRIC_DEFAULT"


# --- rotation and explicit policy -------------------------------------------------------


@stack_policy
def _rotation_and_policy(stack: Stack, report: ReportViolation) -> None:
    separate_policies = stack.of_type(KEY_POLICY)

    def check(key: PolicyResource) -> None:
        spec = get(key.props, "customerMasterKeySpec") or get(key.props, "keySpec") or SYMMETRIC
        if key.resource_type == KEY and spec == SYMMETRIC and get(key.props, "enableKeyRotation") is not True:
            report(f"{label(key)} does not rotate (enableKeyRotation is not true)", key.urn)
        documents = [get(key.props, "policy")]
        documents += [
            get(p.props, "policy")
            for p in separate_policies
            if stack.find(p, "keyId", key.resource_type, ("keyId", "arn", "id")) is key
        ]
        if not any(policy_statements(d) for d in documents):
            report(f"{label(key)} has no explicit key policy (the default grants the whole account)", key.urn)

    each_known(stack.of_type(KEY, REPLICA_KEY), check)


kms_key_rotation_and_policy = StackValidationPolicy(
    name="kms-key-rotation-and-policy",
    description=(
        "Every customer-managed KMS key rotates (enableKeyRotation, for symmetric keys) and has an explicit "
        "key policy, inline or as a KeyPolicy resource (replica keys rotate with their primary). Mandatory: "
        "these keys protect every backup; an implicit default policy and a never-rotated key are audit findings."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rotation_and_policy,
)


# --- copies encrypted with a key of their own region ------------------------------------


def key_region_problems(resource_type: str, props, region: str | None) -> list[str]:
    """Key references of a copy/replica that are not in the copy's own region."""
    problems: list[str] = []

    def same_region(what: str, key, where: str | None, must_be_arn: bool) -> None:
        if not key:
            if must_be_arn:
                problems.append(f"{what} has no KMS key")
            return
        key_region = arn_region(key)
        if key_region is None:
            if must_be_arn:
                problems.append(f"{what} key {key} is not a key ARN, its region cannot be checked")
            return
        if where is not None and key_region != where:
            problems.append(f"{what} is encrypted with a key in {key_region}, not in its own region {where}")

    if resource_type in (RDS_INSTANCE, RDS_CLUSTER):
        replica = is_replica(props)
        same_region("storage", get(props, "kmsKeyId"), region, replica)
        same_region("Performance Insights", get(props, "performanceInsightsKmsKeyId"), region, False)
    elif resource_type == BACKUP_REPLICATION:
        same_region("replicated automated backups", get(props, "kmsKeyId"), region, True)
    elif resource_type == VAULT:
        same_region("vault", get(props, "kmsKeyArn"), region, False)
    elif resource_type == REDIS_GROUP:
        same_region("cache", get(props, "kmsKeyId"), region, False)
    elif resource_type == SECRET:
        same_region("secret", get(props, "kmsKeyId"), region, False)
        for rep in as_list(get(props, "replicas")):
            same_region(f"secret replica in {get(rep, 'region')}", get(rep, "kmsKeyId"), get(rep, "region"), True)
    elif resource_type == REPLICATION:
        for rule in as_list(get(props, "rules")):
            key = get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId")
            if not key:
                problems.append(f"replication rule {get(rule, 'id')} names no replica KMS key")
            elif region is not None and arn_region(key) == region:
                problems.append(
                    f"replication rule {get(rule, 'id')} encrypts replicas with a key of the source region {region}"
                )
    return problems


def _replica_keys(args: ResourceValidationArgs, report: ReportViolation) -> None:
    region = resource_region(args.props, args.provider)
    for problem in key_region_problems(args.resource_type, args.props, region):
        report(problem)


replica_key_in_own_region = ResourceValidationPolicy(
    name="replica-key-in-own-region",
    description=(
        "Replicas and DR copies are encrypted with a KMS key of their own region: RDS read replicas and "
        "instances, replicated automated backups, backup vaults, ElastiCache groups and Secrets Manager "
        "secret replicas name a key ARN in the region they live in, and S3 replication never encrypts "
        "replicas with a source-region key. Mandatory: a copy whose key lives in the failed region "
        "cannot be decrypted when that region is gone, so the DR copy would be useless."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replica_keys,
)


POLICIES = [kms_key_rotation_and_policy, replica_key_in_own_region]
