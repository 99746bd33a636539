"""The `drill` command: build the environment, run the scenarios, report, always tear down."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from drill.backup_store import STORE_TITLES, STORES
from drill.environment import DrillEnvironment, drill_workspace
from drill.report import ScenarioResult, as_json, as_table
from drill.scenarios import FAULTS, RUNNERS, Options
from drplan.objectives import Scenario

# Scenarios that leave the primary in service share one site, in this order: the
# data-centre loss destroys the primary, so it comes last. Ransomware wipes everything and
# gets a site of its own.
SHARED_SITE = (Scenario.ACCIDENTAL_DELETION, Scenario.DATABASE_CORRUPTION, Scenario.DATACENTRE_LOSS)
OWN_SITE = (Scenario.RANSOMWARE,)
RESTORES_FROM_BACKUP = (Scenario.DATABASE_CORRUPTION, Scenario.ACCIDENTAL_DELETION, Scenario.RANSOMWARE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m drill",
        description="Rehearse the DR plan's four scenarios on real PostgreSQL (barman-cloud to a "
        "loopback S3 API or Azure Blob emulator) and measure RTO and RPO against the DR model's objectives.",
    )
    p.add_argument("--store", choices=STORES, default="s3",
                   help="where WAL and base backups go: s3 (moto's S3, with a vault account) or azure "
                   "(Azurite's Blob service); default s3")
    p.add_argument("--scenario", action="append", choices=[s.value for s in Scenario],
                   help="run only this scenario (repeatable; default: all four)")
    p.add_argument("--rows", type=int, default=20000,
                   help="posts (and as many comments) in the database before the base backup (default 20000)")
    p.add_argument("--load-seconds", type=float, default=8.0,
                   help="seconds of steady write load before each incident (default 8)")
    p.add_argument("--rate", type=float, default=200.0,
                   help="write transactions per second of the load (default 200)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--inject-fault", choices=FAULTS,
                   help="break the drill on purpose to see it fail: standby-stall makes the standby "
                   "asynchronous and stalls replication to it before the data-centre loss")
    p.add_argument("--workdir", type=Path,
                   help="put the clusters under this directory (default: a temp dir, removed at the end)")
    args = p.parse_args(argv)
    if args.rows < 1 or args.load_seconds <= 0 or args.rate <= 0:
        p.error("--rows, --load-seconds and --rate must be positive")
    return args


def run(
    scenarios: list[Scenario],
    rows: int,
    options: Options,
    rate: float,
    progress: Callable[[str], None],
    workdir: Path | None = None,
    store: str = "s3",
) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    with drill_workspace(workdir, store) as (services, root):
        for site, group, kwargs in (
            ("site", SHARED_SITE, {"synchronous_standby": options.fault != "standby-stall"}),
            ("ransomware-site", OWN_SITE, {"with_standby": False}),
        ):
            todo = [s for s in group if s in scenarios]
            if not todo:
                continue
            kwargs["base_backup"] = any(s in RESTORES_FROM_BACKUP for s in todo)
            env = DrillEnvironment(services, root, site, rows, rate, progress=progress, **kwargs)
            try:
                progress(f"building {site}: primary with WAL archiving to {services.title}"
                         + (", synchronous standby" if env.with_standby and env.synchronous_standby else
                            ", asynchronous standby" if env.with_standby else ""))
                env.build()
                for scenario in todo:
                    progress(f"scenario {scenario.title}")
                    results.append(run_one(scenario, env, options, progress))
            except Exception as exc:
                if INTERRUPTED.is_set():
                    raise KeyboardInterrupt from exc
                # The site itself could not be built: its scenarios fail, the others still run.
                progress(f"  environment failed: {type(exc).__name__}: {exc}")
                done = {r.scenario for r in results}
                results += [ScenarioResult(s, error=f"environment: {exc}") for s in todo if s not in done]
            finally:
                env.close()
    return results


# Set by Ctrl-C / SIGTERM. A library may turn the KeyboardInterrupt into its own error (psycopg
# cancels the running query and raises QueryCanceled): the flag still ends the drill.
INTERRUPTED = threading.Event()


def run_one(scenario: Scenario, env: DrillEnvironment, options: Options, progress) -> ScenarioResult:
    try:
        result = RUNNERS[scenario](env, options, progress)
    except Exception as exc:
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt from exc
        result = ScenarioResult(scenario, error=f"{type(exc).__name__}: {exc}")
    progress(f"  -> {'PASS' if result.passed else 'FAIL'}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = [Scenario(s) for s in args.scenario] if args.scenario else list(Scenario)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    # SIGTERM (CI cancelling a job) takes the same teardown path as Ctrl-C.
    def interrupt(signum, frame):
        INTERRUPTED.set()
        raise KeyboardInterrupt

    INTERRUPTED.clear()
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        results = run(scenarios, args.rows, Options(args.load_seconds, args.inject_fault), args.rate,
                      progress, args.workdir, args.store)
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        progress("interrupted: environment torn down")
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    total = timedelta(seconds=time.monotonic() - started)
    if args.json:
        print(as_json(results, total, {"store": args.store, "rows": args.rows, "load_seconds": args.load_seconds,
                                       "rate": args.rate, "inject_fault": args.inject_fault,
                                       "scenarios": [s.value for s in scenarios]}))
    else:
        print(as_table(results, total, STORE_TITLES[args.store]))
    return 0 if results and all(r.passed for r in results) else 1
