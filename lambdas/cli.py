"""Command line: what the Kubernetes CronJob runs, and what an operator runs by hand.

    python -m lambdas backup [--database DB] [--at ISO] [--event JSON]
    python -m lambdas verify [--database DB] [--manifest-key KEY] [--probe NAME=SQL] [--event JSON]

Configuration as for Lambda: environment variables, then flags / --event override.
Prints the result as one JSON object on the last line of stdout.
Exit status: 0 done (also: slot already backed up), 1 failed, 2 invalid input.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

from lambdas.core.errors import InvalidRequest
from lambdas.core.failure import as_failure


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lambdas", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("backup", "verify"):
        s = sub.add_parser(name)
        s.add_argument("--event", default="{}", help="JSON object of request fields (see lambdas/README.md)")
        s.add_argument("--database")
        s.add_argument("--bucket")
        s.add_argument("--prefix")
        s.add_argument("--tier")
        if name == "backup":
            s.add_argument("--at", help="logical run time, ISO 8601 with zone (picks the schedule slot)")
            s.add_argument("--compression-level", type=int)
            s.add_argument("--part-size-mb", type=int)
        else:
            s.add_argument("--manifest-key", help="verify this backup (default: the newest)")
            s.add_argument("--probe", action="append", metavar="NAME=SQL", help="SQL probe, repeatable")
            s.add_argument("--no-record", action="store_true", help="do not write a verification record")
    return p


def event_from_args(args: argparse.Namespace, flags: tuple[str, ...], example: str) -> dict:
    """The request: the --event JSON object (`example` shows one in the fix), then every
    flag of `flags` that was given on top. Shared with `python -m lambdas.gdpr`."""
    try:
        event = json.loads(args.event)
    except json.JSONDecodeError as exc:
        raise InvalidRequest([{"field": "--event", "problem": f"not JSON: {exc.msg}",
                               "fix": f"pass a JSON object, e.g. --event '{example}'"}]) from None
    if not isinstance(event, dict):
        raise InvalidRequest([{"field": "--event", "problem": "not a JSON object", "fix": "pass {...}"}])
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None:
            event[flag] = value
    return event


def _event(args: argparse.Namespace) -> dict:
    event = event_from_args(
        args,
        ("database", "bucket", "prefix", "tier", "at", "compression_level", "part_size_mb", "manifest_key"),
        '{"database": "postoucancer"}',
    )
    if getattr(args, "probe", None):
        probes = []
        for item in args.probe:
            name, sep, sql = item.partition("=")
            if not sep:
                raise InvalidRequest([{"field": "--probe", "problem": f"{item!r} has no '='",
                                       "fix": "use --probe 'posts=SELECT count(*) FROM posts'"}])
            probes.append({"name": name, "sql": sql})
        event["probes"] = probes
    if getattr(args, "no_record", False):
        event["record"] = False
    return event


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries the parent's
    high-water mark over fork+exec into it, which inflates a child's figure."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lambdas import service

    try:
        event = _event(args)
        result = getattr(service, args.command)(event)
        code = 0
    except InvalidRequest as exc:
        result, code = {"status": "invalid", **exc.as_dict()}, 2
    except Exception as exc:  # DataPlaneError, or anything else classified: always the JSON line
        result, code = {"status": "failed", **as_failure(exc).as_dict()}, 1
    result["peak_rss_mb"] = peak_rss_mb()
    if code:
        print(f"{args.command} failed: {result.get('message')}", file=sys.stderr)
    print(json.dumps(result, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
