"""Object replication between the two sites' twin accounts, each site owning the half in its
own region (components/azure/object_replication.py says why and in which order).

Peer outputs: the DR site exports `<base>Account` (id, name, features) and, once it has its
destination half, `<base>ReplicationPolicy` (policy and rule ids); the primary exports
`<base>Account`. An activated DR site has no destination half: its containers take writes.
"""

from __future__ import annotations

from components.azure.object_replication import (
    ContainerPair,
    DestinationPolicyArgs,
    ReplicationDestination,
    ReplicationSource,
    SourcePolicyArgs,
)
from components.azure.storage_account import ProtectedStorageAccount
from infra.azure.foundation import Foundation
from infra.site import Site


def replicate(
    site: Site, base: Foundation, key: str, account: ProtectedStorageAccount, containers: list[str]
) -> ReplicationSource | ReplicationDestination | None:
    """Export `account` as `<key>Account` and build this site's half of its replication."""
    site.export(f"{key}Account", account.output())
    pairs = [ContainerPair(c, c) for c in containers]
    if site.is_dr:
        if site.cfg.activated:
            # Promoted: no destination half (its containers refuse writes while it exists).
            site.export(f"{key}Replication", {"enabled": False, "role": "primary since activation"})
            return None
        source = site.peer.get(f"{key}Account")
        if source is None:
            site.export(f"{key}Replication", {"enabled": False, "role": "destination (waiting for the primary)"})
            return None
        half = ReplicationDestination(
            site.name(f"{key}-replication"),
            DestinationPolicyArgs(
                resource_group_name=base.group.name,
                destination_account_name=account.name,
                source_account_id=source.apply(lambda s: s["id"]),
                destination_account_id=account.versioned_id,
                pairs=pairs,
                source_features=_known_features(source),
                destination_features=account.features,
            ),
            opts=base.opts,
        )
        site.export(f"{key}ReplicationPolicy", half.output())
        site.export(f"{key}Replication", {"enabled": True, "role": "destination", "from": site.cfg.peer_region})
        return half
    peer = site.peer.require_all(f"{key}Account", f"{key}ReplicationPolicy")
    if peer is None:
        site.export(f"{key}Replication", {"enabled": False, "to": site.cfg.peer_region})
        return None
    destination = peer[f"{key}Account"]
    half = ReplicationSource(
        site.name(f"{key}-replication"),
        SourcePolicyArgs(
            resource_group_name=base.group.name,
            source_account_name=account.name,
            source_account_id=account.versioned_id,
            destination_account_id=destination.apply(lambda d: d["id"]),
            pairs=pairs,
            destination_policy=peer[f"{key}ReplicationPolicy"],
            source_features=account.features,
            destination_features=_known_features(destination),
        ),
        opts=base.opts,
    )
    site.export(f"{key}Replication", {"enabled": True, "to": site.cfg.peer_region, "sla": None})
    return half


def _known_features(peer_account) -> dict:
    """The peer account's features, as its site declared them (this site's program needs them now,
    to refuse a replication Azure would refuse): from the peer's outputs, read once."""
    from infra import sdk

    value = sdk.sync_await(peer_account.future()) or {}
    return {k: value.get(k) for k in ("versioning", "changeFeed")}
