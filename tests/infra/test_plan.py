"""The offline plan (the README's main command) and the program's hygiene."""

import json
import subprocess
import sys

from drplan.objectives import Scenario
from drplan.thresholds import REPLICATION_TIME_CONTROL
from infra.mockrun import ROOT
from infra.plan import main, render_text

RTC_MINUTES = int(REPLICATION_TIME_CONTROL.total_seconds() // 60)


def test_plan_shows_files_replicating_across_regions_with_rtc_and_objectives(pair_prod):
    text = render_text({"prod": pair_prod})
    assert "bootstrap order: pulumi up -s dr → pulumi up -s prod → pulumi up -s dr" in text
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
    out_json, out_mmd = tmp_path / "plan.json", tmp_path / "topology.mmd"
    assert main(["--pair", "prod", "--json", str(out_json), "--mermaid", str(out_mmd)]) == 0
    plan = json.loads(out_json.read_text())
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
    for pair in PAIRS.values():
        run_pair(*pair)
ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
        if issubclass(w.category, DeprecationWarning) and "/site-packages/" not in w.filename]
print("OURS", ours)
print("AZURE", "pulumi_azure_native" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "OURS []" in out.stdout, out.stdout
    assert "AZURE False" in out.stdout
