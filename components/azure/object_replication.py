"""Object replication of block blobs from a site's account into the DR site's twin: Azure's
equivalent of S3 replication.

How Azure builds it (object-replication-overview, "Replication policies"): the policy is first
created on the *destination* account with the policy id `default`; Azure answers with the
policy id and one rule id per rule; the same policy, with those ids, is then created on the
*source* account. So each site owns the half in its own region: the DR stack creates the
destination half (it needs the source account's id, from the primary's outputs), the primary
the source half (it needs the policy and rule ids, from the DR stack's outputs). Bootstrap:
dr, primary, dr, primary.

Documented constraints encoded here:
- blob versioning on both accounts and the change feed on the source (object-replication-overview,
  "Prerequisites"): `check_prerequisites`;
- with cross-tenant replication disallowed (our accounts' `allow_cross_tenant_replication` is
  false) the policy must name both accounts by full resource id ("Specify full resource IDs"):
  `full_account_id`;
- while a destination policy exists, writes to its destination containers fail with 409
  ("Replication rules"): the DR site removes its destination half when it is activated, so
  that the promoted site can write to its own containers;
- replicated: block blobs, their versions, metadata and properties; not snapshots; and a
  version-level immutability policy on a destination version makes the replication of a
  delete or an overwrite of it fail (which is the point: the copy is locked on arrival by the
  destination account's default policy).

RPO: Azure documents no time bound for standard object replication ("There's currently no SLA
on how long it takes to replicate data to the destination account"). Priority replication
(`priorityReplication` in newer storage API versions, with its own time objective) is not in
the API version of the pinned azure-native's default storage module (2024-01-01), so it is not
used: REPLICATION_SLA is None, the objectives table cannot count on a bound for the files'
copy, and replication lag is watched instead (the policy's replication metrics below; the
alert is the monitoring concern's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from .storage_account import AccountFeatures

# Azure states no bound for standard object replication; see the module docstring.
REPLICATION_SLA = None

_ACCOUNT_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$"
)


def full_account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value or ""):
        raise ValueError(
            f"{value!r} is not a storage account's full resource id: with cross-tenant replication "
            "disallowed, Azure requires full ids in an object replication policy"
        )
    return value


def check_prerequisites(source: AccountFeatures | dict, destination: AccountFeatures | dict) -> None:
    """Versioning on both sides, change feed on the source (object-replication-overview)."""
    src = source.to_output() if isinstance(source, AccountFeatures) else source
    dst = destination.to_output() if isinstance(destination, AccountFeatures) else destination
    if not src.get("versioning"):
        raise ValueError("object replication needs blob versioning on the source account")
    if not src.get("changeFeed"):
        raise ValueError("object replication needs the change feed on the source account")
    if not dst.get("versioning"):
        raise ValueError("object replication needs blob versioning on the destination account")


@dataclass(frozen=True)
class ContainerPair:
    source: str
    destination: str


def _rules(pairs: list[ContainerPair], rule_ids: list[str] | None) -> list[dict]:
    rules = []
    for i, pair in enumerate(pairs):
        rule: dict = {
            "source_container": pair.source,
            "destination_container": pair.destination,
            # Every blob, existing ones included (the default copies only blobs created later).
            "filters": {"min_creation_time": "1601-01-01T00:00:00Z"},
        }
        if rule_ids is not None:
            rule["rule_id"] = rule_ids[i]
        rules.append(rule)
    return rules


@dataclass
class DestinationPolicyArgs:
    resource_group_name: pulumi.Input[str]
    destination_account_name: pulumi.Input[str]
    source_account_id: pulumi.Input[str]
    destination_account_id: pulumi.Input[str]
    pairs: list[ContainerPair]
    source_features: dict
    destination_features: AccountFeatures


class ReplicationDestination(pulumi.ComponentResource):
    """`postoucancer:azure:ReplicationDestination`: the half on the DR site's account."""

    policy: azure_native.storage.ObjectReplicationPolicy

    def __init__(self, name: str, args: DestinationPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:ReplicationDestination", name, None, opts)
        check_prerequisites(args.source_features, args.destination_features)
        self.policy = azure_native.storage.ObjectReplicationPolicy(
            name,
            resource_group_name=args.resource_group_name,
            account_name=args.destination_account_name,
            object_replication_policy_id="default",  # Azure assigns the id on the destination
            source_account=pulumi.Output.from_input(args.source_account_id).apply(full_account_id),
            destination_account=pulumi.Output.from_input(args.destination_account_id).apply(full_account_id),
            rules=_rules(args.pairs, None),
            metrics={"enabled": True},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"policyId": self.policy.policy_id})

    def output(self) -> pulumi.Output[dict]:
        """What the source side needs: the policy id and each rule's id, per container pair."""
        return pulumi.Output.all(self.policy.policy_id, self.policy.rules).apply(
            lambda a: {
                "policyId": a[0],
                "rules": [
                    {
                        "ruleId": _field(r, "rule_id", "ruleId"),
                        "sourceContainer": _field(r, "source_container", "sourceContainer"),
                        "destinationContainer": _field(r, "destination_container", "destinationContainer"),
                    }
                    for r in (a[1] or [])
                ],
            }
        )


def _field(rule, snake: str, camel: str):
    """A rule of the policy's outputs: an output type, or a dict keyed either way."""
    if isinstance(rule, dict):
        return rule.get(snake, rule.get(camel))
    return getattr(rule, snake)


@dataclass
class SourcePolicyArgs:
    resource_group_name: pulumi.Input[str]
    source_account_name: pulumi.Input[str]
    source_account_id: pulumi.Input[str]
    destination_account_id: pulumi.Input[str]
    pairs: list[ContainerPair]
    # The destination half's answer (ReplicationDestination.output(), through the peer's outputs).
    destination_policy: pulumi.Input[dict]
    source_features: AccountFeatures
    destination_features: dict


def _source_rules(pairs: list[ContainerPair], answer: dict) -> list[dict]:
    by_pair = {(r["sourceContainer"], r["destinationContainer"]): r["ruleId"] for r in answer.get("rules") or []}
    missing = [p for p in pairs if (p.source, p.destination) not in by_pair]
    if missing:
        raise ValueError(f"the destination policy has no rule for {missing}: run `pulumi up` on the DR stack first")
    return _rules(pairs, [by_pair[(p.source, p.destination)] for p in pairs])


class ReplicationSource(pulumi.ComponentResource):
    """`postoucancer:azure:ReplicationSource`: the half on the primary site's account."""

    policy: azure_native.storage.ObjectReplicationPolicy

    def __init__(self, name: str, args: SourcePolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:ReplicationSource", name, None, opts)
        check_prerequisites(args.source_features, args.destination_features)
        answer = pulumi.Output.from_input(args.destination_policy)
        self.policy = azure_native.storage.ObjectReplicationPolicy(
            name,
            resource_group_name=args.resource_group_name,
            account_name=args.source_account_name,
            object_replication_policy_id=answer.apply(lambda a: a["policyId"]),
            source_account=pulumi.Output.from_input(args.source_account_id).apply(full_account_id),
            destination_account=pulumi.Output.from_input(args.destination_account_id).apply(full_account_id),
            rules=answer.apply(lambda a: _source_rules(args.pairs, a)),
            metrics={"enabled": True},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"policyId": self.policy.policy_id})
