"""What DR activation changes: the dr stack with `activated: false` vs `true`, offline.

    diff_activation(pair) -> list[Change]

Both the activation wrapper (`python -m infra.activate --dry-run`) and the offline plan
(`python -m infra.plan`) call it. Each side is the real program under Pulumi's mock
runtime, reading the primary's outputs exactly as a real `pulumi up -s dr` would; the
resources are matched by URN (a changed URN is a delete plus a create, as for the engine).

The mock runtime has no provider to say whether a change replaces a resource, so
`REPLACED_BY` names, per resource type this project uses, the input properties whose
change makes the provider replace it (from the providers' schemas: `ForceNew` in
terraform-provider-aws, immutable fields in Kubernetes). A replacement or deletion of a
protected (stateful) resource is what activation must never do; `Change.risky` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.mockrun import PairRun, Recorded, StackRun, run_stack

ACTIVATED = "postoucancer-dr:activated"
ACTIVATED_AT = "postoucancer-dr:activatedAt"
COMPLETE = "postoucancer-dr:activationComplete"

# Input property paths (prefixes) whose change replaces the resource.
REPLACED_BY: dict[str, tuple[str, ...]] = {
    "aws:rds/instance:Instance": (
        "identifier",
        "engine",
        "kmsKeyId",
        "storageEncrypted",
        "dbName",
        "username",
        "characterSetName",
        "availabilityZone",
        "snapshotIdentifier",
        "restoreToPointInTime",
        "timezone",
    ),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keySpec", "keyUsage", "multiRegion"),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "replicationGroupId",
        "atRestEncryptionEnabled",
        "kmsKeyId",
        "subnetGroupName",
        "snapshotArns",
        "snapshotName",
    ),
    "aws:backup/vault:Vault": ("name", "kmsKeyArn"),
    "aws:route53/record:Record": ("zoneId", "name", "setIdentifier"),
    "aws:route53/healthCheck:HealthCheck": ("type", "referenceName", "requestInterval", "measureLatency"),
    "aws:ssm/parameter:Parameter": ("name",),
    # azure-native: the names and locations of ARM resources, and what Azure accepts only when a
    # resource is created (infrastructure encryption, account- and container-level version-level
    # immutability: the storage SDK's own docs say "can only be set ... at creation time").
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "location"),
    "azure-native:storage:StorageAccount": (
        "accountName",
        "resourceGroupName",
        "location",
        "encryption.requireInfrastructureEncryption",
        "immutableStorageWithVersioning.enabled",
        "isHnsEnabled",
    ),
    "azure-native:storage:BlobContainer": ("containerName", "accountName", "immutableStorageWithVersioning.enabled"),
    "azure-native:storage:EncryptionScope": ("encryptionScopeName", "accountName"),
    "azure-native:storage:ObjectReplicationPolicy": ("accountName", "objectReplicationPolicyId"),
    "azure-native:keyvault:Vault": ("vaultName", "resourceGroupName", "location"),
    "azure-native:keyvault:Key": ("keyName", "vaultName", "properties.kty", "properties.keySize"),
    "azure-native:keyvault:Secret": ("secretName", "vaultName"),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceName", "resourceGroupName", "location"),
    # The data tier: names, regions, and what the services accept only at creation (the
    # components know them: components/azure/postgres.py CREATE_ONLY, i.e. geo-redundant backup,
    # the key type, a replica's source and create mode; a Traffic Manager profile's DNS name; the
    # jobs environment's subnet and zone redundancy, "Networking in Container Apps").
    "azure-native:dbforpostgresql:Server": (
        "serverName",
        "resourceGroupName",
        "location",
        "backup.geoRedundantBackup",
        "dataEncryption.type",
        "sourceServerResourceId",
        "createMode",
        "network.delegatedSubnetResourceId",
        "network.privateDnsZoneArmResourceId",
    ),
    "azure-native:dataprotection:BackupVault": ("vaultName", "resourceGroupName", "location"),
    "azure-native:dataprotection:BackupPolicy": ("backupPolicyName", "vaultName"),
    "azure-native:dataprotection:BackupInstance": (
        "backupInstanceName",
        "vaultName",
        "properties.dataSourceInfo.resourceID",
    ),
    "azure-native:redis:Redis": ("name", "resourceGroupName", "location", "zones"),
    "azure-native:trafficmanager:Profile": ("profileName", "resourceGroupName", "dnsConfig.relativeName"),
    "azure-native:trafficmanager:Endpoint": ("endpointName", "profileName", "endpointType"),
    "azure-native:app:ManagedEnvironment": (
        "environmentName",
        "location",
        "vnetConfiguration.infrastructureSubnetId",
        "vnetConfiguration.internal",
        "zoneRedundant",
    ),
    "azure-native:app:Job": ("jobName", "resourceGroupName", "location"),
    "azure-native:containerregistry:Registry": ("registryName", "resourceGroupName", "location"),
    "azure-native:operationalinsights:Workspace": ("workspaceName", "resourceGroupName", "location"),
    "azure-native:authorization:RoleDefinition": ("roleDefinitionId", "scope"),
    "azure-native:authorization:RoleAssignment": ("roleAssignmentName", "scope", "principalId", "roleDefinitionId"),
    "kubernetes:apps/v1:Deployment": ("metadata.name", "metadata.namespace", "spec.selector"),
    "kubernetes:core/v1:Service": ("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
    "kubernetes:networking.k8s.io/v1:Ingress": ("metadata.name", "metadata.namespace"),
    "kubernetes:policy/v1:PodDisruptionBudget": ("metadata.name", "metadata.namespace"),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("metadata.name", "metadata.namespace"),
}


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.before)} → {_show(self.after)}"


# A line per resource stays readable; a dashboard body alone can differ in dozens of paths.
SHOWN_PROPERTIES = 4


# Updates that look harmless in a diff but that the provider refuses, with its words: an
# instance that is (or was) a primary cannot be made a replica (terraform-provider-aws,
# resourceInstanceUpdate: "cannot elect new source database for replication"); a new
# replica is a new instance (config database.generation, docs/failback.md).
REFUSED: dict[tuple[str, str], str] = {
    ("aws:rds/instance:Instance", "replicateSourceDb"): "cannot elect new source database for replication",
}


@dataclass
class Change:
    action: str  # "create" | "delete" | "update" | "replace"
    type: str
    name: str
    urn: str
    stateful: bool  # protected or retained on delete
    properties: list[PropertyChange] = field(default_factory=list)

    @property
    def refused(self) -> str | None:
        """Why the provider would refuse this update, if it would."""
        if self.action != "update":
            return None
        for p in self.properties:
            why = REFUSED.get((self.type, p.path))
            if why and p.before is _ABSENT and p.after is not _ABSENT:
                return why
        return None

    @property
    def risky(self) -> bool:
        """A stateful resource replaced or deleted, or an update the provider refuses."""
        return (self.stateful and self.action in ("delete", "replace")) or self.refused is not None

    @property
    def paths(self) -> set[str]:
        return {p.path for p in self.properties}

    def __str__(self) -> str:
        sign = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}[self.action]
        flag = (" [STATEFUL]" if self.stateful else "") + (f" [REFUSED: {self.refused}]" if self.refused else "")
        head = f"{sign} {self.action:<7} {self.type.split(':')[-1]} {self.name}{flag}"
        if self.action in ("update", "replace"):
            shown = self.properties[:SHOWN_PROPERTIES]
            more = len(self.properties) - len(shown)
            return head + ": " + "; ".join(str(p) for p in shown) + (f"; (+{more} more)" if more else "")
        return head


def _show(value: Any, limit: int = 80) -> str:
    if value is _ABSENT:
        return "(unset)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Absent:
    def __repr__(self) -> str:
        return "(unset)"


_ABSENT = _Absent()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested inputs as {"spec.replicas": 3, "records[0]": "..."}; lists of scalars stay whole."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(value, str) and value[:1] in ("{", "[") and prefix:
        # JSON documents (policies, dashboards): show what changed inside, not the whole text.
        try:
            return _flatten(json.loads(value), prefix)
        except json.JSONDecodeError:
            pass
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _changes(before: Any, after: Any) -> list[PropertyChange]:
    """The flattened paths whose values differ between two documents, sorted."""
    a, b = _flatten(before), _flatten(after)
    return [
        PropertyChange(k, a.get(k, _ABSENT), b.get(k, _ABSENT))
        for k in sorted(set(a) | set(b))
        if a.get(k, _ABSENT) != b.get(k, _ABSENT)
    ]


def property_changes(before: Recorded, after: Recorded) -> list[PropertyChange]:
    # The engine keeps a property listed in ignore_changes at its recorded value: not a change
    # (e.g. the activation test's record, written by the on-call and not by `pulumi up`).
    ignored = tuple(after.ignore_changes)
    return [c for c in _changes(before.inputs, after.inputs)
            if not any(c.path == p or c.path.startswith((p + ".", p + "[")) for p in ignored)]


def _replaces(type_: str, changes: list[PropertyChange]) -> bool:
    prefixes = REPLACED_BY.get(type_, ())
    return any(c.path == p or c.path.startswith((p + ".", p + "[")) for c in changes for p in prefixes)


def diff_runs(before: StackRun, after: StackRun) -> list[Change]:
    """Every custom resource created, deleted, updated or replaced between two runs."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    changes: list[Change] = []
    for urn, r in old.items():
        if urn not in new:
            changes.append(Change("delete", r.type, r.name, urn, r.protect or r.retain_on_delete))
    for urn, r in new.items():
        if urn not in old:
            changes.append(Change("create", r.type, r.name, urn, r.protect or r.retain_on_delete))
            continue
        props = property_changes(old[urn], r)
        if props:
            action = "replace" if _replaces(r.type, props) else "update"
            changes.append(Change(action, r.type, r.name, urn, old[urn].protect or old[urn].retain_on_delete, props))
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    return sorted(changes, key=lambda c: (order[c.action], c.type, c.name))


def _config_of(run: StackRun) -> dict[str, Any]:
    # The run's config as it was given (secrets arrive as placeholders; the program reads
    # them with require_secret, which marks them secret again).
    return {k: v for k, v in run.config.items() if k not in (ACTIVATED, ACTIVATED_AT)}


def activation_runs(pair: PairRun, at: datetime | None = None) -> tuple[StackRun, StackRun]:
    """The dr stack of `pair`, not activated and activated, both reading the primary's outputs.

    `at`: the activation time to configure (`activatedAt`); None leaves it to the program.
    """
    config = _config_of(pair.dr)
    peer = pair.primary.outputs
    if pair.dr.config.get(ACTIVATED, "false") == "false":
        before = pair.dr
    else:
        before = run_stack(pair.dr.stack, config=config, peer_outputs=peer, overrides={ACTIVATED: False})
    overrides: dict[str, Any] = {ACTIVATED: True}
    if at is not None:
        overrides[ACTIVATED_AT] = at.isoformat().replace("+00:00", "Z")
    after = run_stack(pair.dr.stack, config=config, peer_outputs=peer, overrides=overrides)
    return before, after


def diff_activation(pair: PairRun, at: datetime | None = None) -> list[Change]:
    """What `pulumi config set activated true -s <dr> && pulumi up -s <dr>` changes."""
    before, after = activation_runs(pair, at)
    return diff_runs(before, after)


def diff_completion(pair: PairRun, at: datetime | None = None) -> list[Change]:
    """The second step, `pulumi config set activationComplete true && pulumi up`: the promoted
    database becomes Multi-AZ at production size; nothing else changes."""
    _before, promoted = activation_runs(pair, at)
    # The same activation time as the first step recorded (the program takes `now` if unset).
    stamp = at.isoformat().replace("+00:00", "Z") if at is not None else promoted.outputs.get("activatedAt")
    overrides: dict[str, Any] = {ACTIVATED: True, COMPLETE: True, ACTIVATED_AT: stamp}
    complete = run_stack(pair.dr.stack, config=_config_of(pair.dr), peer_outputs=pair.primary.outputs,
                         overrides=overrides)
    return diff_runs(promoted, complete)


def output_changes(before: StackRun, after: StackRun) -> list[PropertyChange]:
    """Stack outputs that activation changes (e.g. dns.primaryTarget, app.replicas)."""
    return _changes(before.outputs, after.outputs)
