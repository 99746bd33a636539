"""How a stack hands its effective numbers to the functions.

The functions' image carries no per-deployment number: the stack (Lambda environment,
CronJob environment, Container Apps Job environment) sets BACKUP_POLICY to this JSON, and the
functions lock, tag and expire by it. A retention override on a stack therefore reaches the
object lock date the backup function sets, exactly as it reaches the lifecycle rules.

    {"tier": "prod", "slotUtc": "02:00", "weeklyOn": "sunday",
     "retention": {"daily": "30d", "weekly": "16w", "monthly": "12mo", "yearly": "7y"}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

from .periods import parse_period
from .retention import RETENTION, GfsClass, Retention, Tier
from .schedules import SCHEDULES, WEEKDAYS, Schedules

ENV_VAR = "BACKUP_POLICY"


@dataclass(frozen=True)
class BackupPolicy:
    """What the functions need of the plan for one deployment."""

    tier: Tier
    retention: Retention
    schedules: Schedules = SCHEDULES

    def to_json(self) -> str:
        return json.dumps(
            {
                "tier": self.tier.value,
                "slotUtc": self.schedules.full_backup_at_utc.strftime("%H:%M"),
                "weeklyOn": WEEKDAYS[self.schedules.weekly_on],
                "retention": {c.value: str(self.retention.for_class(c)) for c in self.retention.classes},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> BackupPolicy:
        """Parse and validate; ValueError names the field and what it expects."""
        if isinstance(text, str):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
        else:
            data = text
        if not isinstance(data, dict):
            raise ValueError("a JSON object with tier, slotUtc, weeklyOn and retention")
        unknown = set(data) - {"tier", "slotUtc", "weeklyOn", "retention"}
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        try:
            tier = Tier(data["tier"])
        except (KeyError, ValueError):
            raise ValueError(f"tier: one of {', '.join(t.value for t in Tier)}") from None
        try:
            hh, mm = str(data["slotUtc"]).split(":")
            slot = time(int(hh), int(mm))
        except (KeyError, ValueError):
            raise ValueError("slotUtc: a UTC time HH:MM, e.g. 02:00") from None
        try:
            weekly_on = WEEKDAYS.index(str(data["weeklyOn"]).lower())
        except (KeyError, ValueError):
            raise ValueError(f"weeklyOn: one of {', '.join(WEEKDAYS)}") from None
        given = data.get("retention")
        if not isinstance(given, dict):
            raise ValueError("retention: an object like {\"daily\": \"30d\", \"weekly\": \"12w\"}")
        base = RETENTION[tier]
        periods = {}
        for gen, value in given.items():
            if gen not in {c.value for c in GfsClass}:
                raise ValueError(f"retention.{gen}: not a GFS generation ({', '.join(c.value for c in GfsClass)})")
            try:
                periods[gen] = parse_period(value)
            except ValueError as exc:
                raise ValueError(f"retention.{gen}: {exc}") from None
        missing = [c.value for c in base.classes if c.value not in periods]
        extra = [g for g in periods if getattr(base, g) is None]
        if missing or extra:
            raise ValueError(
                f"retention: the {tier.value} tier keeps exactly {', '.join(c.value for c in base.classes)}"
            )
        short = [g for g, p in periods.items() if p.days < getattr(base, g).days]
        if short:
            g = short[0]
            raise ValueError(f"retention.{g}: {periods[g]} is shorter than the plan's {getattr(base, g)}")
        return cls(tier, base.with_overrides(periods), replace(SCHEDULES, full_backup_at_utc=slot, weekly_on=weekly_on))
