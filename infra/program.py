"""The stack program: validate, check the objectives, build the site, export."""

from __future__ import annotations

import pulumi

from drplan.periods import format_duration
from infra import config
from infra.config import Cloud, Role
from infra.peer import Peer
from infra.site import Site


def _objectives_table(achieved, declared: bool) -> dict[str, dict[str, object]]:
    return {
        a.scenario.value: {
            "objectiveRpo": format_duration(a.objective.rpo),
            "objectiveRto": format_duration(a.objective.rto),
            "achievedRpo": format_duration(a.rpo) if a.source else None,
            "achievedRto": format_duration(a.rto) if a.source else None,
            "recoverySource": a.source.name if a.source else None,
            "derivation": a.source.derivation if a.source else None,
            "met": a.met,
            # Staging declares no objectives unless configured: its table is information only.
            "declared": declared,
        }
        for a in achieved
    }


def main() -> None:
    if config.raw_config().get("role") == Role.VAULT.value:
        from infra.vault.program import main as vault_main  # the backup-only account's stack

        vault_main()
        return
    cfg = config.load()  # raises ConfigError before anything is registered
    achieved = config.check_objectives(cfg)
    stack = pulumi.get_stack()
    vault = (
        Peer(stack_name=cfg.vault_stack, what="vault account's stack") if cfg.vault_stack is not None else None
    )
    site = Site(cfg=cfg, stack=stack, peer=Peer(cfg), vault=vault)
    # Each cloud's SDK loads only for its own stacks (an AWS stack never imports
    # pulumi_azure_native, an Azure stack never pulumi_aws: tests/infra/azure/test_sdk_isolation.py).
    if cfg.cloud is Cloud.AZURE:
        from infra.azure import build as build_azure

        build_azure(site)
    else:
        from infra.aws import build as build_aws

        build_aws(site)

    site.export(
        "site",
        {
            "role": cfg.role.value,
            "tier": cfg.tier.value,
            "cloud": cfg.cloud.value,
            "region": cfg.region,
            "peerRegion": cfg.peer_region,
            # The effective retention (the tier's, with this stack's overrides): the policy pack's floors.
            "retention": {c.value: str(cfg.retention_policy.for_class(c)) for c in cfg.retention_policy.classes},
        },
    )
    site.export("objectives", _objectives_table(achieved, cfg.scenario_objectives is not None))
    # The vault stack needs nothing of the sites: it is deployed first, and its step comes first.
    steps = [p.next_step(stack) for p in (site.vault, site.peer) if p is not None]
    next_step = " ".join(s for s in steps if s)
    if next_step:
        pulumi.log.warn(next_step)
        site.export("nextStep", next_step)
