"""The documents' generated parts: tables of the plan's numbers, rendered from drplan.

    python -m infra.docs --check     # exit 1 if a generated block is stale
    python -m infra.docs --write     # regenerate the blocks

A block sits between `<!-- BEGIN <name> ... -->` and `<!-- END <name> -->`; the text around
it is written by hand, and tests/drplan/test_docs_quote_the_model.py checks that no number in
that prose disagrees with drplan. A retention change is one line in drplan/retention.py,
then `--write`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from components.aws import cron
from components.aws.backup_plan import lock_bounds
from drplan.objectives import SCENARIO_OBJECTIVES
from drplan.periods import Period, format_duration
from drplan.retention import COLD_STORAGE_AFTER, RETENTION, GfsClass, Retention, Tier
from drplan.schedules import SCHEDULES, WEEKDAYS

ROOT = Path(__file__).resolve().parent.parent
PROD, STAGING = RETENTION[Tier.PROD], RETENTION[Tier.STAGING]


def _kept(p: Period | None) -> str:
    if p is None:
        return "–"
    return f"{p}" if p.unit.value == "d" else f"{p} ({p.days} d)"


def retention_table() -> str:
    rows = [("daily backups", "daily"), ("weekly backups", "weekly"), ("monthly backups", "monthly"),
            ("yearly backups", "yearly"), ("incremental backups, WAL (point-in-time recovery)", "wal"),
            ("Redis snapshots", "redis"),
            ("deleted / overwritten files (noncurrent versions of the user-files bucket)", "deleted_files"),
            ("audit logs (backup, verify, restore, erasure and export events)", "audit_logs")]
    lines = ["| copy | prod | staging |", "| --- | --- | --- |"]
    lines += [f"| {what} | {_kept(getattr(PROD, f))} | {_kept(getattr(STAGING, f))} |" for what, f in rows]
    return "\n".join(lines)


def plan_numbers() -> str:
    s = SCHEDULES

    def tier(r: Retention) -> str:
        return ", ".join(f"{c.value} {r.for_class(c)}" for c in r.classes)

    objectives = "; ".join(
        f"{sc.title} RTO {format_duration(o.rto)} / RPO {format_duration(o.rpo)}"
        for sc, o in SCENARIO_OBJECTIVES.items()
    )
    return "\n".join([
        "| what | the plan's number (drplan) |",
        "| --- | --- |",
        f"| objectives | {objectives} |",
        f"| full backup | daily at {s.full_backup_at_utc:%H:%M} UTC; weekly on {WEEKDAYS[s.weekly_on].title()} |",
        f"| incremental / WAL | every {format_duration(s.incremental_every)} / shipped at least every "
        f"{format_duration(s.wal_archive_every)} |",
        f"| retention, prod | {tier(PROD)} |",
        f"| retention, staging | {tier(STAGING)} |",
        f"| WAL, incrementals, Redis | {PROD.wal}, {PROD.incremental}, {PROD.redis} |",
        f"| deleted files / audit logs | {PROD.deleted_files} / {PROD.audit_logs} |",
        f"| testing | restore test every {format_duration(s.restore_test_every)}, DR drill every "
        f"{format_duration(s.dr_drill_every)}, activation test every {format_duration(s.activation_test_every)}, "
        f"plan review every {format_duration(s.plan_review_every)} |",
    ])


def gfs_rules() -> str:
    s = SCHEDULES
    at = f"{s.full_backup_at_utc:%H:%M}"
    when = {GfsClass.DAILY: at, GfsClass.WEEKLY: f"{WEEKDAYS[s.weekly_on].title()} {at}",
            GfsClass.MONTHLY: f"1st {at}", GfsClass.YEARLY: f"Jan 1 {at}"}
    lines = [
        "| rule | schedule (UTC) | AWS cron | kept | notes |",
        "| --- | --- | --- | --- | --- |",
        f"| continuous | daily {at} | `{cron.daily(s)}` | `wal` {PROD.wal} | "
        "continuous backup: point-in-time restore |",
        f"| incremental | every {format_duration(s.incremental_every)} from {at} | `{cron.incremental(s)}` | "
        f"`incremental` {PROD.incremental} | bounds the DR copies' RPO |",
    ]
    for c in GfsClass:
        staging = f" (staging {STAGING.for_class(c)})" if c in STAGING.classes else ""
        note = "prod only" if c not in STAGING.classes else ""
        if c is GfsClass.YEARLY:
            note = f"prod only; cold storage after {COLD_STORAGE_AFTER} where supported"
        lines.append(f"| {c.value} | {when[c]} | `{cron.for_class(s, c)}` | `{c.value}` {PROD.for_class(c)}{staging} "
                     f"| {note} |")
    low, high = lock_bounds(PROD)
    lines.append("")
    lines.append(f"Vault Lock bounds in prod (`backup_plan.lock_bounds`): {low} d … {high} d.")
    return "\n".join(lines)


BLOCKS: dict[str, tuple[Path, Callable[[], str]]] = {
    "plan-numbers": (ROOT / "README.md", plan_numbers),
    "retention-table": (ROOT / "docs" / "gdpr.md", retention_table),
    "gfs-rules": (ROOT / "docs" / "data-tier.md", gfs_rules),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- BEGIN {re.escape(name)}\b[^>]*-->\n(?:.*?\n)?<!-- END {re.escape(name)} -->", re.S)


def _block(name: str, body: str) -> str:
    begin = f"<!-- BEGIN {name} (generated by `python -m infra.docs --write`; do not edit) -->"
    return f"{begin}\n{body}\n<!-- END {name} -->"


def stale() -> list[str]:
    out = []
    for name, (path, render) in BLOCKS.items():
        found = _pattern(name).search(path.read_text())
        if not found or found.group(0) != _block(name, render()):
            out.append(f"{path.relative_to(ROOT)}: {name}")
    return out


def write() -> list[str]:
    changed = []
    for name, (path, render) in BLOCKS.items():
        text = path.read_text()
        if not _pattern(name).search(text):
            raise ValueError(f"{path} has no block {name}: add <!-- BEGIN {name} --> and <!-- END {name} --> lines")
        new = _pattern(name).sub(lambda _m, n=name, r=render: _block(n, r()), text)
        if new != text:
            path.write_text(new)
            changed.append(f"{path.relative_to(ROOT)}: {name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.docs", description=__doc__.split("\n\n")[0])
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale")
    action.add_argument("--write", action="store_true", help="regenerate the blocks")
    args = p.parse_args(argv)
    if args.write:
        for what in write():
            print(f"updated {what}")
        return 0
    bad = stale()
    for what in bad:
        print(f"stale: {what} (run python -m infra.docs --write)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
