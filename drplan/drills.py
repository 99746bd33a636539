"""What the monthly DR drill must show: how long the restore may take, how old the data may be.

The drill restores the latest locked copy of the database in the DR vault into a temporary
instance in the DR region: the recovery source `recovery.DR_VAULT_COPY`, the way back for the
scenarios that need the DR region's copies (data-centre loss, ransomware). Its bounds come from
the model, not from the drill:

- restore time: the strictest of those scenarios' RTO, less the steps of the way back that are
  not the restore (detection, verification and cut-over, scaling the application, DNS; the
  estimator's assumptions). A slower restore leaves the RTO no room.
- data age (restore start minus the copy's original creation time): the RPO the estimator claims
  for this source, one snapshot interval. The plan's 1 h RPO is met by other sources (WAL-based
  point-in-time restore, the warm standby; `recovery.achieved_objectives`); the snapshot copies
  are the last resort, and the drill checks that they are as fresh as the model says. Alarming on
  1 h would page every month by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .objectives import SCENARIO_OBJECTIVES, Objective, Scenario
from .periods import format_duration
from .recovery import ASSUMPTIONS, DR_VAULT_COPY, Assumptions, Topology, recovery_sources

# The scenarios whose way back runs through the DR region's locked copies.
DRILL_SCENARIOS = (Scenario.DATACENTRE_LOSS, Scenario.RANSOMWARE)


@dataclass(frozen=True)
class DrillBounds:
    restore_within: timedelta
    data_age_within: timedelta
    derivation: str


def dr_drill_bounds(
    topology: Topology,
    objectives: dict[Scenario, Objective] | None = None,
    a: Assumptions = ASSUMPTIONS,
) -> DrillBounds:
    objectives = objectives or SCENARIO_OBJECTIVES
    rto = min(objectives[s].rto for s in DRILL_SCENARIOS)
    around = a.detection + a.verify_and_cutover + a.scale_application + a.dns_switch
    restore = rto - around
    if restore <= timedelta(0):
        raise ValueError(f"an RTO of {format_duration(rto)} leaves no time to restore after "
                         f"{format_duration(around)} of detection, verification, scaling and DNS")
    source = next((s for s in recovery_sources(topology, a) if s.name == DR_VAULT_COPY), None)
    if source is None:
        raise ValueError("the topology keeps no copies in the DR vault (dr_copies): there is nothing to drill")
    fmt = format_duration
    return DrillBounds(
        restore_within=restore,
        data_age_within=source.rpo,
        derivation=(
            f"restore within RTO {fmt(rto)} - detect {fmt(a.detection)} - verify {fmt(a.verify_and_cutover)} - "
            f"scale app {fmt(a.scale_application)} - DNS {fmt(a.dns_switch)} = {fmt(restore)}; data no older than "
            f"the {source.name!r} RPO {fmt(source.rpo)}"
        ),
    )
