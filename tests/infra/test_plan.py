"""The offline plan (the README's main command) and the program's hygiene."""

import json
import subprocess
import sys

from drplan.objectives import Scenario
from drplan.thresholds import REPLICATION_TIME_CONTROL
from infra.mockrun import ROOT, PairRun, Recorded, StackRun, run_stack
from infra.plan import cross_stack_edges, main, render_text

RTC_MINUTES = int(REPLICATION_TIME_CONTROL.total_seconds() // 60)


def test_plan_shows_files_replicating_across_regions_with_rtc_and_objectives(pair_prod):
    text = render_text({"prod": pair_prod})
    assert "bootstrap order: pulumi up -s vault → pulumi up -s dr → pulumi up -s prod → pulumi up -s dr" in text
    assert "--- stack prod: primary site, tier prod, aws eu-west-3 (peer in eu-central-1)" in text
    assert "--- stack dr: dr site, tier prod, aws eu-central-1 (peer in eu-west-3)" in text
    replication = next(line for line in text.splitlines() if "BucketReplicationConfig" in line)
    dr_bucket = pair_prod.dr.one("aws:s3/bucket:Bucket", "dr-files").outputs["arn"]
    assert "region=eu-west-3" in replication and f"to={dr_bucket}" in replication
    assert f"RTC={RTC_MINUTES}min" in replication
    assert "prod:primary-files-replication → dr:dr-files" in text
    for scenario in Scenario:
        row = next(line for line in text.splitlines() if line.strip().startswith(scenario.value))
        assert "  met  " in row, row  # prod meets every scenario of the plan


def test_plan_json_and_mermaid(tmp_path, capsys):
    out_mmd = tmp_path / "topology.mmd"
    # JSON alone on stdout (no text rendering: the text's activation and failback diffs are the
    # activation tests' and test_failback's).
    assert main(["--pair", "prod", "--json", "-", "--mermaid", str(out_mmd)]) == 0
    plan = json.loads(capsys.readouterr().out)
    sites = {s["stack"]: s for s in plan["prod"]["sites"]}
    assert sites["prod"]["outputs"]["site"]["region"] == "eu-west-3"
    assert sites["dr"]["outputs"]["site"]["region"] == "eu-central-1"
    assert sites["prod"]["outputs"]["objectives"][Scenario.DATACENTRE_LOSS.value]["met"] is True
    assert {
        "from": "prod:primary-files-replication",
        "to": "dr:dr-files",
        "via": "rules[0].destination.bucket",
    } in plan["prod"]["crossRegionLinks"]
    mmd = out_mmd.read_text()
    assert mmd.startswith("flowchart LR") and mmd.count("subgraph") == mmd.count("  end")
    assert "prod_ReplicatedBucket_primary_files -->|bucket| dr_ReplicatedBucket_dr_files" in mmd


def test_stacks_load_no_azure_sdk_and_warn_nothing_from_our_code():
    code = r"""
import sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from infra.mockrun import PAIRS, run_pair
    # The prod pair (with its vault stack) loads every AWS module a stack uses; staging runs the
    # same code at another tier. Azure's own isolation: tests/infra/azure/test_sdk_isolation.py.
    run_pair(*PAIRS["prod"])
ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
        if issubclass(w.category, DeprecationWarning) and "/site-packages/" not in w.filename]
print("OURS", ours)
print("AZURE", "pulumi_azure_native" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "OURS []" in out.stdout, out.stdout
    assert "AZURE False" in out.stdout


def _run(stack, resources):
    return StackRun(stack=stack, config={}, resources=resources, outputs={}, logs=[])


def _res(name, own_arn=None, type_="aws:s3/bucket:Bucket", **inputs):
    outputs = {"arn": own_arn} if own_arn else {}
    return Recorded(type=type_, name=name, urn=f"urn:{name}", inputs=inputs, outputs=outputs)


def test_cross_stack_edges_name_the_most_specific_owner_whatever_the_order():
    bucket, logs = "arn:aws:s3:::dr-files", "arn:aws:s3:::dr-files-logs"
    key, topic = "arn:aws:kms:eu-central-1:1:key/k", "arn:aws:sns:eu-central-1:1:alerts"
    dr = [
        _res("dr-files", bucket),
        _res("dr-files-logs", logs),
        _res("dr-files-key", key, "aws:kms/key:Key"),
        _res("dr-alerts", topic, "aws:sns/topic:Topic"),
        # Takes the topic's ARN as an input (the mock echoes it as `arn`): not its owner.
        _res("dr-alerts-target", topic, "aws:cloudwatch/eventTarget:EventTarget", arn=topic),
    ]
    prod = [
        _res("to-logs", destination=f"{logs}/*"),
        _res("to-files", destination=bucket),
        _res("role", policy=json.dumps({"Resource": [f"{bucket}/*", key]})),
        _res("alarm", alarmActions=[topic]),
    ]
    expected = [
        ("prod:alarm", "dr:dr-alerts", "alarmActions[0]"),
        ("prod:role", "dr:dr-files", "policy"),
        ("prod:role", "dr:dr-files-key", "policy"),
        ("prod:to-files", "dr:dr-files", "destination"),
        ("prod:to-logs", "dr:dr-files-logs", "destination"),
    ]
    for order in (dr, dr[::-1]):
        pair = PairRun(primary=_run("prod", prod), dr=_run("dr", list(order)), bootstrap=[])
        assert cross_stack_edges(pair) == expected


def test_a_repeated_run_is_answered_from_memory_as_a_copy(pair_prod):
    peer = pair_prod.primary.outputs
    first = run_stack("dr", peer_outputs=peer)
    first.resources.clear()
    first.outputs["site"]["region"] = "changed by a caller"
    again = run_stack("dr", peer_outputs=peer)
    assert again.resources and again.outputs == pair_prod.dr.outputs
    activated = run_stack("dr", peer_outputs=peer, overrides={"postoucancer-dr:activated": True})
    assert activated.outputs != again.outputs, "another config is another run"
