"""The plan's objectives: restore within 4 h, lose at most 1 h; tighter per scenario."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from .periods import HOUR


class Scenario(enum.Enum):
    DATABASE_CORRUPTION = "database-corruption"
    DATACENTRE_LOSS = "datacentre-loss"
    RANSOMWARE = "ransomware"
    ACCIDENTAL_DELETION = "accidental-deletion"

    @property
    def title(self) -> str:
        return self.value.replace("-", " ").replace("datacentre", "data-centre")


@dataclass(frozen=True)
class Objective:
    rto: timedelta
    rpo: timedelta


# Plan, "Objectives": restore within 4 h, lose at most 1 h.
PLAN_OBJECTIVE = Objective(rto=4 * HOUR, rpo=1 * HOUR)

# Plan, "Disaster Recovery Scenarios": per-scenario objectives.
SCENARIO_OBJECTIVES: dict[Scenario, Objective] = {
    Scenario.DATABASE_CORRUPTION: Objective(rto=2 * HOUR, rpo=PLAN_OBJECTIVE.rpo),
    Scenario.DATACENTRE_LOSS: PLAN_OBJECTIVE,
    Scenario.RANSOMWARE: PLAN_OBJECTIVE,
    Scenario.ACCIDENTAL_DELETION: Objective(rto=1 * HOUR, rpo=PLAN_OBJECTIVE.rpo),
}
