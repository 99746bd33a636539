"""The offline plan: the real program under Pulumi's mock runtime, no cloud, no CLI.

    python -m infra.plan                 # prod + dr, staging + staging-dr, prod-azure + dr-azure
    python -m infra.plan --pair prod     # one pair
    python -m infra.plan --json plan.json --mermaid topology.mmd

Each pair runs in the documented bootstrap order (the backup-only account's vault stack, then
dr, primary, dr again) so that every StackReference sees the other stacks' real outputs. Per
site it prints the resources grouped by component with their key properties, the stack
outputs, and the objectives check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.mockrun import PAIRS, PairRun, Recorded, StackRun, exiting, fork_map, run_pair

# Properties worth a glance, in the order shown; values of other keys stay in --json.
KEY_PROPERTIES = (
    "region",
    "engine",
    "engineVersion",
    "instanceClass",
    "multiAz",
    "storageEncrypted",
    "deletionProtection",
    "backupRetentionPeriod",
    "backupWindow",
    "replicateSourceDb",
    "iamDatabaseAuthenticationEnabled",
    "publiclyAccessible",
    "automaticFailoverEnabled",
    "atRestEncryptionEnabled",
    "transitEncryptionEnabled",
    "snapshotRetentionLimit",
    "enableKeyRotation",
    "objectLockEnabled",
    "scheduleExpression",
    "packageType",
    "failoverRoutingPolicy",
    "type",
    "replicas",
    "changeableForDays",
    "minRetentionDays",
    "maxRetentionDays",
    "isMultiRegionTrail",
    "enableLogFileValidation",
    "retentionInDays",
    "threshold",
    # Azure (azure-native inputs)
    "location",
    "kind",
    "minimumTlsVersion",
    "allowBlobPublicAccess",
    "allowSharedKeyAccess",
    "isVersioningEnabled",
)


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the mock runtime hands every number back as a float
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(r: Recorded) -> str:
    """One line of what matters about a resource."""
    props = [f"{k}={_short(r.inputs[k])}" for k in KEY_PROPERTIES if k in r.inputs and r.inputs[k] is not None]
    rules = r.inputs.get("rules")
    if r.type.endswith("BucketReplicationConfig") and rules:
        dest = rules[0].get("destination", {})
        rtc = _short(dest.get("replicationTime", {}).get("time", {}).get("minutes"))
        props.append(
            f"to={dest.get('bucket')} RTC={rtc}min deleteMarkers={rules[0]['deleteMarkerReplication']['status']}"
        )
    elif r.type.endswith("BucketLifecycleConfiguration") and rules:
        props.append(f"rules={','.join(str(x.get('id')) for x in rules)}")
    elif r.type == "aws:backup/plan:Plan" and rules:
        props.append(f"rules={','.join(str(x.get('ruleName')) for x in rules)}")
    elif r.type == "azure-native:storage:ObjectReplicationPolicy":
        dest = str(r.inputs.get("destinationAccount", "")).rsplit("/", 1)[-1]
        containers = ",".join(f"{x.get('sourceContainer')}→{x.get('destinationContainer')}" for x in rules or [])
        half = "destination" if r.inputs.get("objectReplicationPolicyId") == "default" else "source"
        props.append(f"{half} half to={dest} containers={containers}")
    elif r.type == "azure-native:storage:StorageAccount":
        immutable = (r.inputs.get("immutableStorageWithVersioning") or {}).get("immutabilityPolicy") or {}
        encryption = r.inputs.get("encryption") or {}
        props.append(f"sku={(r.inputs.get('sku') or {}).get('name')} keySource={encryption.get('keySource')}")
        if immutable:
            props.append(f"immutability={immutable.get('state')}/{_short(immutable.get('immutabilityPeriodSinceCreationInDays'))}d")
    flags = [f for f, on in (("protected", r.protect), ("retainOnDelete", r.retain_on_delete)) if on]
    name = r.type.split(":")[-1]
    return f"{name} {r.name}" + (f" [{', '.join(flags)}]" if flags else "") + (f"  {' '.join(props)}" if props else "")


def grouped(run: StackRun) -> dict[str, list[Recorded]]:
    """Top-level component (or 'stack') → the resources registered beneath it."""
    by_urn = {r.urn: r for r in run.resources}

    def top(r: Recorded) -> str:
        cur = r
        while cur.parent and cur.parent in by_urn:
            cur = by_urn[cur.parent]
        return f"{cur.type.split(':')[-1]} {cur.name}" if not cur.custom or cur is not r else "(stack)"

    groups: dict[str, list[Recorded]] = defaultdict(list)
    for r in run.resources:
        if r.custom:
            groups[top(r)].append(r)
    return dict(groups)


def cross_stack_edges(pair: PairRun) -> list[tuple[str, str, str]]:
    """(from resource, to resource, via) wherever one site's input names the other's ARN.

    Deterministic whatever the registration order: an ARN belongs to the resource that
    does not merely take it as an input (an EventTarget's `arn` is its topic's), and where
    ARNs overlap in a value (a bucket `dr-files` and a bucket `dr-files-logs`) only the
    longest, most specific one counts. A value naming several resources (a policy) links
    to each of them.
    """
    edges = []
    links = [(pair.primary, pair.dr), (pair.dr, pair.primary)]
    if pair.vault is not None:  # the sites copy into the backup-only account (never the other way)
        links += [(pair.primary, pair.vault), (pair.dr, pair.vault)]
    for src, dst in links:
        owners = _arn_owners(dst)
        for r in src.resources:
            for key, value in _strings(r.inputs):
                for arn in _arns_in(value, owners):
                    edges.append((f"{src.stack}:{r.name}", f"{dst.stack}:{owners[arn].name}", key))
    return sorted(set(edges))


def _arn_owners(run: StackRun) -> dict[str, Recorded]:
    owners: dict[str, Recorded] = {}
    for r in run.resources:
        arn = r.outputs.get("arn")
        arm_id = str(r.outputs.get("id", ""))
        if arn is None and r.type.startswith("azure-native:") and arm_id.startswith("/subscriptions/"):
            arn = arm_id  # an ARM resource id plays the ARN's part
        if not isinstance(arn, str) or not arn:
            continue
        rank = ("arn" in r.inputs, r.name)  # its own ARN first, then by name
        if arn not in owners or rank < ("arn" in owners[arn].inputs, owners[arn].name):
            owners[arn] = r
    return owners


_ARN_CONTINUES = re.compile(r"[A-Za-z0-9_.\-]")


def _arns_in(value: str, arns: dict[str, Recorded]) -> list[str]:
    """The ARNs of `arns` that `value` names, the longest where several start at one place."""
    spans: list[tuple[int, int, str]] = []
    for arn in arns:
        start = value.find(arn)
        while start != -1:
            end = start + len(arn)
            if end == len(value) or not _ARN_CONTINUES.match(value[end]):  # not a prefix of a longer name
                spans.append((start, end, arn))
            start = value.find(arn, start + 1)
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and o != s for o in spans)]
    return sorted({arn for _, _, arn in kept})


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _strings(v, f"{path}[{i}]")]
    return []


def objectives_lines(run: StackRun) -> list[str]:
    table = run.outputs.get("objectives") or {}
    lines = [f"  {'scenario':<22}{'RPO':>10}{'(obj)':>8}{'RTO':>10}{'(obj)':>8}  result  via"]
    for scenario, o in table.items():
        verdict = ("met" if o["met"] else "MISSED") if o["declared"] else "info"
        lines.append(
            f"  {scenario:<22}{o['achievedRpo'] or '-':>10}{o['objectiveRpo']:>8}{o['achievedRto'] or '-':>10}"
            f"{o['objectiveRto']:>8}  {verdict:<6}  {o['recoverySource']}"
        )
    return lines


def _rehearsal(pair: PairRun):
    """The documented failover and failback, if they are written for this pair's stacks."""
    from infra.failback import rehearse

    ups = rehearse(pair, workers=os.cpu_count() or 1)
    return ups if ups.ups else None


def activation_lines(pair: PairRun, rehearsal=None) -> list[str]:
    from infra.activation import diff_activation, diff_completion

    try:
        if rehearsal is not None:  # the same runs as the documented failover: no extra run
            changes, completion = rehearsal.ups[0].changes, rehearsal.ups[1].changes
        else:
            changes, completion = diff_activation(pair), diff_completion(pair)
    except Exception as e:
        return [f"  (activation preview failed: {e})"]
    lines = [f"  {line}" for line in (str(c) for c in changes)] or ["  (no change)"]
    # The second step, once service is back: the promoted database goes Multi-AZ at full size.
    lines.append("  then `pulumi config set activationComplete true` and `pulumi up`:")
    lines += [f"    {c}" for c in completion] or ["    (no change)"]
    return lines


def failback_lines(rehearsal) -> list[str]:
    """Each `pulumi up` of docs/failback.md after the activation, with what it changes."""
    lines = []
    for up in rehearsal.ups[2:]:
        lines.append(f"  `{up.command.text}` ({up.command.path.name}:{up.command.line}):")
        lines += [f"    {c}" for c in up.changes] or ["    (no change)"]
    lines += [f"  PROBLEM: {p}" for p in rehearsal.all_problems()]
    return lines


def _runs(pair: PairRun) -> list[StackRun]:
    """The pair's stacks in bootstrap order: the backup-only account's first, if any."""
    return [r for r in (pair.vault, pair.primary, pair.dr) if r is not None]


def _site_line(run: StackRun) -> str:
    site = run.outputs.get("site", {})
    count = sum(r.custom for r in run.resources)
    if site.get("role") == "vault":
        return (
            f"--- stack {run.stack}: backup-only account {site.get('account')}, tier {site.get('tier')}, "
            f"{site.get('cloud')} {site.get('region')} (a locked vault in each site region); {count} resources"
        )
    return (
        f"--- stack {run.stack}: {site.get('role')} site, tier {site.get('tier')}, {site.get('cloud')} "
        f"{site.get('region')} (peer in {site.get('peerRegion')}); {count} resources"
    )


def render_text(pairs: dict[str, PairRun]) -> str:
    out: list[str] = []
    for label, pair in pairs.items():
        order = " → ".join(f"pulumi up -s {r.stack}" for r in pair.deploy_order)
        out.append(f"=== pair '{label}'   bootstrap order: {order}")
        for run in _runs(pair):
            out.append("")
            out.append(_site_line(run))
            for group, members in sorted(grouped(run).items()):
                out.append(f"  {group}")
                # Registration order is the event loop's; sorted, two plans of one program compare.
                out.extend(f"    {describe(r)}" for r in sorted(members, key=lambda r: (r.type, r.name)))
            out.append("  outputs:")
            for key, value in run.outputs.items():
                if key not in ("objectives", "recoverySources"):
                    shown = "[secret]" if key in run.secret_outputs else _short(value, 100)
                    out.append(f"    {key} = {shown}")
            if run.outputs.get("objectives"):
                out.append("  objectives (achieved vs declared, per scenario of the plan):")
                out.extend(objectives_lines(run))
            # Every way back the site offers (Azure stacks export them), not only each scenario's best.
            for row in run.outputs.get("recoverySources") or []:
                out.append(f"    source {row['source']}: RPO {row['rpo']}, RTO {row['rto']}")
            if run.outputs.get("nextStep"):
                out.append(f"  NEXT: {run.outputs['nextStep']}")
        edges = cross_stack_edges(pair)
        if edges:
            out.append("")
            out.append("  cross-region and cross-account links:")
            out.extend(f"    {a} → {b}   ({via})" for a, b, via in edges)
        rehearsal = _rehearsal(pair)
        out.append("")
        out.append(
            f"  what `pulumi config set activated true -s {pair.dr.stack} && pulumi up -s {pair.dr.stack}` changes:"
        )
        out.extend(activation_lines(pair, rehearsal))
        if rehearsal is not None:
            out.append("")
            out.append("  failback (docs/failback.md), each `pulumi up` in order:")
            out.extend(failback_lines(rehearsal))
        out.append("")
    return "\n".join(out)


def mermaid(pairs: dict[str, PairRun]) -> str:
    lines = ["flowchart LR"]
    for pair in pairs.values():
        for run in _runs(pair):
            region = run.outputs.get("site", {}).get("region")
            lines.append(f'  subgraph {_id(run.stack)}["{run.stack} ({region})"]')
            for group in sorted(grouped(run)):
                if group != "(stack)":
                    lines.append(f'    {_id(run.stack + " " + group)}["{group.split(" ", 1)[1]}"]')
            lines.append("  end")
        edges = []
        for a, b, via in cross_stack_edges(pair):
            ga, gb = (_group_of(pair, x) for x in (a, b))
            if ga and gb:
                edges.append(f"  {_id(ga)} -->|{via.split('.')[-1]}| {_id(gb)}")
        lines.extend(dict.fromkeys(edges))
    return "\n".join(lines) + "\n"


def _group_of(pair: PairRun, qualified: str) -> str | None:
    stack, name = qualified.split(":", 1)
    run = next(r for r in _runs(pair) if r.stack == stack)
    for group, members in grouped(run).items():
        if any(m.name == name for m in members) and group != "(stack)":
            return f"{stack} {group}"
    return None


def _id(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def to_json(pairs: dict[str, PairRun]) -> dict[str, Any]:
    def site(run: StackRun) -> dict[str, Any]:
        return {
            "stack": run.stack,
            "outputs": {k: "[secret]" if k in run.secret_outputs else v for k, v in run.outputs.items()},
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent_type,
                    "protect": r.protect,
                    "retainOnDelete": r.retain_on_delete,
                    "region": r.region,
                    "inputs": r.inputs,
                }
                for r in run.resources
                if r.custom
            ],
        }

    return {
        label: {
            "bootstrap": [r.stack for r in pair.deploy_order],
            "sites": [site(pair.primary), site(pair.dr)],
            "vault": site(pair.vault) if pair.vault is not None else None,
            "crossRegionLinks": [{"from": a, "to": b, "via": v} for a, b, v in cross_stack_edges(pair)],
        }
        for label, pair in pairs.items()
    }


def _parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = defaultdict(dict)
    for item in items:
        target, sep, value = item.partition("=")
        stack, colon, key = target.partition(":")
        if not (sep and colon and key):
            raise ValueError(f"--set {item!r}: expected STACK:KEY=VALUE, e.g. dr:activated=true")
        if ":" not in key:
            key = f"postoucancer-dr:{key}"
        try:
            overrides[stack][key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[stack][key] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), action="append", help="only this pair (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="also write the plan as JSON ('-' for stdout only)")
    parser.add_argument("--mermaid", metavar="FILE", help="also write a mermaid picture of the topology")
    parser.add_argument(
        "--set",
        metavar="STACK:KEY=VALUE",
        action="append",
        default=[],
        help="try a config change offline, e.g. --set dr:activated=true or "
        "--set prod:database='{\"sizeGb\": 200}' (VALUE is JSON or a plain string)",
    )
    args = parser.parse_args(argv)
    try:
        overrides = _parse_sets(args.set)
    except ValueError as e:
        parser.error(str(e))
    labels = args.pair or list(PAIRS)
    text = args.json != "-"

    def plan_pair(label: str) -> tuple[PairRun, str]:
        primary, dr = PAIRS[label]
        pair = run_pair(primary, dr, primary_overrides=overrides.get(primary), dr_overrides=overrides.get(dr))
        return pair, render_text({label: pair}) if text else ""

    # The pairs are independent: one forked process each, as many at a time as there are CPUs.
    planned = fork_map(plan_pair, labels, os.cpu_count() or 1)
    for outcome in planned:
        if isinstance(outcome, (ConfigError, FileNotFoundError)):
            print(f"error: {outcome}", file=sys.stderr)
            return 2
        if isinstance(outcome, BaseException):
            raise outcome
    pairs = {label: pair for label, (pair, _) in zip(labels, planned, strict=True)}
    if args.json == "-":
        json.dump(to_json(pairs), sys.stdout, indent=2, default=str)
        print()
    else:
        print("\n".join(rendered for _, rendered in planned))
        if args.json:
            Path(args.json).write_text(json.dumps(to_json(pairs), indent=2, default=str))
            print(f"wrote {args.json}")
    if args.mermaid:
        Path(args.mermaid).write_text(mermaid(pairs))
        print(f"wrote {args.mermaid}", file=sys.stderr if args.json == "-" else sys.stdout)
    # A stack that misses its declared objectives never gets here: the program refuses it.
    return 0


def cli() -> int:
    """`python -m infra.plan` and its console script: main, then a quick exit (mockrun.exiting)."""
    return exiting(main())


if __name__ == "__main__":
    sys.exit(cli())
