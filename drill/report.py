"""What a scenario measured, judged against the DR model's objective, as a table or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from drplan.objectives import SCENARIO_OBJECTIVES, Scenario
from drplan.periods import format_duration


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not rehearsed, because the emulator does not implement it
    detail: str = ""
    not_emulated_by: str | None = None  # the emulator that lacks the feature

    @property
    def status(self) -> str:
        if self.not_emulated_by:
            return f"not emulated by {self.not_emulated_by}"
        return "pass" if self.ok else "fail"


@dataclass
class ScenarioResult:
    scenario: Scenario
    rto: timedelta | None = None  # incident -> service back (first write / verified restore)
    rpo: timedelta | None = None  # span of acknowledged writes the recovered service lacks
    rows_lost: int | None = None  # acknowledged rows the recovered service lacks
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)  # what happened, for the record
    error: str | None = None  # the scenario could not run to the end

    @property
    def objective(self):
        return SCENARIO_OBJECTIVES[self.scenario]

    @property
    def rto_met(self) -> bool:
        return self.rto is not None and self.rto <= self.objective.rto

    @property
    def rpo_met(self) -> bool:
        return self.rpo is not None and self.rpo <= self.objective.rpo

    @property
    def passed(self) -> bool:
        return self.error is None and self.rto_met and self.rpo_met and all(c.ok for c in self.rehearsed)

    @property
    def rehearsed(self) -> list[Check]:
        """The checks the drill could run; the others are reported, never passed."""
        return [c for c in self.checks if c.not_emulated_by is None]

    @property
    def not_emulated(self) -> list[Check]:
        return [c for c in self.checks if c.not_emulated_by is not None]

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return ok

    def not_rehearsed(self, name: str, emulator: str, detail: str) -> None:
        """A guarantee of the cloud that the emulator does not implement: stated, not passed."""
        self.checks.append(Check(name, None, detail, not_emulated_by=emulator))

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario.value,
            "passed": self.passed,
            "rto_seconds": _secs(self.rto),
            "rpo_seconds": _secs(self.rpo),
            "rpo_rows": self.rows_lost,
            "objective": {
                "rto_seconds": _secs(self.objective.rto),
                "rpo_seconds": _secs(self.objective.rpo),
            },
            "rto_met": self.rto_met,
            "rpo_met": self.rpo_met,
            "checks": [{"name": c.name, "ok": c.ok, "status": c.status, "detail": c.detail} for c in self.checks],
            "facts": self.facts,
            "error": self.error,
        }


def _secs(d: timedelta | None) -> float | None:
    return None if d is None else round(d.total_seconds(), 3)


def _measured(d: timedelta | None) -> str:
    if d is None:
        return "-"
    s = d.total_seconds()
    return f"{s:.2f}s" if s < 60 else format_duration(d)


def as_json(results: list[ScenarioResult], total: timedelta, options: dict) -> str:
    return json.dumps(
        {
            "passed": all(r.passed for r in results) and bool(results),
            "total_seconds": _secs(total),
            "options": options,
            "scenarios": [r.as_dict() for r in results],
        },
        indent=2,
        default=str,
    )


def as_table(results: list[ScenarioResult], total: timedelta, store: str | None = None) -> str:
    header = ("scenario", "RTO", "RTO objective", "RPO", "rows lost", "RPO objective", "checks", "result")
    rows = []
    for r in results:
        ok = sum(bool(c.ok) for c in r.rehearsed)
        checks = f"{ok}/{len(r.rehearsed)}" + (f" +{len(r.not_emulated)} not emulated" if r.not_emulated else "")
        rows.append((
            r.scenario.title,
            _measured(r.rto),
            format_duration(r.objective.rto),
            _measured(r.rpo),
            "-" if r.rows_lost is None else str(r.rows_lost),
            format_duration(r.objective.rpo),
            checks,
            "PASS" if r.passed else "FAIL",
        ))
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join
    out = [f"store: {store}"] if store else []
    out += [line(h.ljust(w) for h, w in zip(header, widths, strict=True)),
           line("-" * w for w in widths)]
    out += [line(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        failed = [c for c in r.rehearsed if not c.ok]
        if r.error:
            out.append(f"{r.scenario.title}: ERROR {r.error}")
        for c in failed:
            out.append(f"{r.scenario.title}: FAILED {c.name}: {c.detail}")
        for c in r.not_emulated:
            out.append(f"{r.scenario.title}: NOT EMULATED by {c.not_emulated_by}, not passed: {c.name}: {c.detail}")
        if r.rto is not None and not r.rto_met:
            out.append(f"{r.scenario.title}: RTO {_measured(r.rto)} exceeds {format_duration(r.objective.rto)}")
        if r.rpo is not None and not r.rpo_met:
            out.append(f"{r.scenario.title}: RPO {_measured(r.rpo)} exceeds {format_duration(r.objective.rpo)}")
    verdict = "PASS" if results and all(r.passed for r in results) else "FAIL"
    out.append(f"drill {verdict} in {total.total_seconds():.1f}s")
    return "\n".join(out)
