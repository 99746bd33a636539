"""Bad configuration stops the program before anything is registered, with one line that
names the key, the bad value and the fix (issue 2, point 2)."""

import json
import subprocess
import sys

import pytest

from drplan.periods import days
from drplan.retention import RETENTION, Tier
from infra.config import ConfigError, parse, parse_duration, parse_period
from infra.mockrun import ROOT, load_stack_config, run_stack

P = "postoucancer-dr:"

CASES = [
    # (id, stack, overrides, removed keys, what the message must name)
    ("typo-top-level", "prod", {P + "tierr": "prod"}, (), ["'postoucancer-dr:tierr'", "did you mean 'tier'"]),
    # The stack tag comes from the provider's default tags (every resource, no hand-written dicts).
    ("stack-tag-missing", "prod", {}, ("aws:defaultTags",), ["'aws:defaultTags'", "is unset", "postoucancer:stack"]),
    (
        "stack-tag-of-another-stack",
        "staging",
        {"aws:defaultTags": {"tags": {"postoucancer:stack": "prod"}}},
        (),
        ["'aws:defaultTags'", 'is "prod"', "not this stack's name \"staging\"", "]' staging"],
    ),
    (
        "typo-nested",
        "prod",
        {P + "objectives": {"rto": "4h", "rpoo": "1h"}},
        (),
        ["objectives.rpoo", "'objectives.rpo'"],
    ),
    (
        "unknown-cloud",
        "prod",
        {P + "cloud": "gcp"},
        (),
        ["postoucancer-dr:cloud", '"gcp"', "pulumi config set cloud aws"],
    ),
    ("unknown-role", "prod", {P + "role": "standby"}, (), ["postoucancer-dr:role", '"standby"']),
    ("unknown-tier", "prod", {P + "tier": "production"}, (), ["postoucancer-dr:tier", '"production"']),
    ("missing-role", "prod", {}, (P + "role",), ["postoucancer-dr:role", "missing"]),
    (
        "dr-equals-primary",
        "prod",
        {P + "regions": {"primary": "eu-west-3", "dr": "eu-west-3"}},
        (),
        ["regions.dr", '"eu-west-3"', "equals regions.primary"],
    ),
    (
        "malformed-region",
        "prod",
        {P + "regions": {"primary": "paris", "dr": "eu-central-1"}},
        (),
        ["regions.primary", '"paris"', "eu-west-3"],
    ),
    (
        "malformed-duration",
        "prod",
        {P + "objectives": {"rto": "4 hours", "rpo": "1h"}},
        (),
        ["objectives.rto", '"4 hours"', "duration like"],
    ),
    (
        "rpo-tighter-than-schedules",
        "prod",
        {P + "objectives": {"rto": "4h", "rpo": "1m"}},
        (),
        ["objectives.rpo", "tighter than the schedules", "WAL is shipped every 5m"],
    ),
    (
        "objective-looser-than-plan",
        "prod",
        {P + "objectives": {"rto": "8h", "rpo": "1h"}},
        (),
        ["objectives.rto", '"8h"', "looser than the plan's 4h"],
    ),
    (
        "retention-below-minimum",
        "prod",
        {P + "retention": {"daily": "10d"}},
        (),
        ["retention.daily", '"10d"', "shorter than the plan's minimum of 30d"],
    ),
    (
        "retention-generation-not-in-tier",
        "staging",
        {P + "retention": {"yearly": "7y"}},
        (),
        ["retention.yearly", "does not keep"],
    ),
    ("malformed-retention", "prod", {P + "retention": {"weekly": "12 weeks"}}, (), ["retention.weekly", "12w"]),
    (
        "activated-on-primary",
        "prod",
        {P + "activated": True},
        (),
        ["postoucancer-dr:activated", "only meaningful on the dr"],
    ),
    ("prod-without-vault-lock", "prod", {P + "vaultLock": False}, (), ["postoucancer-dr:vaultLock", "ransomware"]),
    (
        "webhook-not-https",
        "prod",
        {P + "alerts": {"webhooks": ["http://hooks.example/x"]}},
        (),
        ["alerts.webhooks", "https://"],
    ),
    ("email-malformed", "prod", {P + "alerts": {"emails": ["oncall-at-example"]}}, (), ["alerts.emails", "e-mail"]),
    (
        "aws-region-mismatch",
        "dr",
        {"aws:region": "eu-west-3"},
        (),
        ["'aws:region'", "pulumi config set aws:region eu-central-1"],
    ),
    ("peer-stack-half-qualified", "prod", {P + "peerStack": "org/dr"}, (), ["postoucancer-dr:peerStack", "neither"]),
    (
        "peer-stack-of-another-project",
        "prod",
        {P + "peerStack": "acme/other/dr"},
        (),
        ["postoucancer-dr:peerStack", "names project 'other'", "peerStack dr"],
    ),
    ("negative-size", "prod", {P + "database": {"sizeGb": -5}}, (), ["database.sizeGb", "-5"]),
    (
        "half-an-existing-network",
        "prod",
        {P + "network": {"vpcId": "vpc-0123456789abcdef0"}},
        (),
        ["postoucancer-dr:network", "subnetIds"],
    ),
    # Failback (docs/failback.md): a primary becomes a replica only as a new instance.
    (
        "failback-replica-on-the-dr-site",
        "dr",
        {P + "database": {"replicaOfPeer": True, "generation": 2}},
        (),
        ["database.replicaOfPeer", "failback step of the primary site", "config rm --path database.replicaOfPeer"],
    ),
    (
        "failback-replica-without-a-new-generation",
        "prod",
        {P + "database": {"replicaOfPeer": True}},
        (),
        ["database.replicaOfPeer", "cannot elect new source database", "--path database.generation 2"],
    ),
    (
        "failback-replica-without-a-warm-standby",
        "prod",
        {P + "database": {"replicaOfPeer": True, "generation": 2, "warmStandby": False}},
        (),
        ["database.replicaOfPeer", "database.warmStandby"],
    ),
    ("generation-zero", "prod", {P + "database": {"generation": 0}}, (), ["database.generation", "0"]),
    (
        "topology-misses-objectives",
        "prod",
        {P + "database": {"sizeGb": 500}},
        (),
        ["accidental deletion: RTO", "exceeds 1h by", "database.sizeGb"],
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "removed", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_is_one_clear_line_and_registers_nothing(stack, overrides, removed, expected):
    with pytest.raises(ConfigError) as exc:
        run_stack(stack, overrides=overrides, remove=removed)
    message = str(exc.value)
    assert "\n" not in message
    assert "fix:" in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert exc.value.recorded == [], "nothing may be registered before the config is valid"


def test_azure_is_refused_clearly_and_loads_no_azure_sdk():
    code = (
        "import sys\n"
        "from infra.config import ConfigError\n"
        "from infra.mockrun import run_stack\n"
        "try:\n"
        "    run_stack('prod', overrides={'postoucancer-dr:cloud': 'azure', "
        "'postoucancer-dr:regions': {'primary': 'francecentral', 'dr': 'germanywestcentral'}})\n"
        "except ConfigError as e:\n"
        "    print(e); assert e.recorded == []\n"
        "assert 'pulumi_azure_native' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "cloud" in out.stdout and "azure" in out.stdout and "fix:" in out.stdout


def test_offline_plan_reports_bad_config_as_one_line_and_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--pair", "prod", "--set", "dr:tier=gold"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: config key 'postoucancer-dr:tier'")
    assert "Traceback" not in out.stderr


def test_durations_and_periods_parse():
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("2w") == parse_duration("14d")
    with pytest.raises(ValueError):
        parse_duration("")
    assert parse_period("12mo").days >= 365  # "12 months" is never shorter than a year
    assert parse_period("7y").days >= 7 * 365 + 1


def test_good_stack_files_validate_and_default_to_the_plan():
    for stack in ("prod", "dr", "staging", "staging-dr"):
        raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(stack).items() if k.startswith(P)}
        cfg = parse(json.loads(json.dumps(raw)), load_stack_config(stack)["aws:region"])
        assert cfg.retention_policy == RETENTION[cfg.tier]
    prod = parse({k.split(":", 1)[1]: v for k, v in load_stack_config("prod").items() if k.startswith(P)})
    assert prod.locked and prod.scenario_objectives is not None
    staging = parse({k.split(":", 1)[1]: v for k, v in load_stack_config("staging").items() if k.startswith(P)})
    assert not staging.locked and staging.tier is Tier.STAGING and staging.scenario_objectives is None


def test_longer_retention_is_accepted():
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config("prod").items() if k.startswith(P)}
    raw["retention"] = {"daily": "35d"}
    assert parse(raw).retention_policy.daily == days(35)


def test_a_bare_peer_stack_is_qualified_with_the_backends_organization(prod):
    """pulumi/pulumi: a StackReference takes `<org>/<project>/<stack>`; `organization` is the
    literal organization of self-managed (DIY) backends only, Pulumi Cloud needs the real one.
    The stack files name the peer by stack name; the program qualifies it with
    pulumi.get_organization() of the run."""
    from infra.config import with_qualified_peer
    from infra.runbooks import stack_config

    assert load_stack_config("prod")[P + "peerStack"] == "dr"
    ref = prod.one("pulumi:pulumi:StackReference", "peer-dr")
    assert ref.outputs["name"] == "organization/postoucancer-dr/dr"  # the mock runtime's organization
    cfg = stack_config("prod")
    assert with_qualified_peer(cfg, "acme").peer_stack == "acme/postoucancer-dr/dr"
    given = cfg.model_copy(update={"peer_stack": "acme/postoucancer-dr/dr"})
    assert with_qualified_peer(given, "other").peer_stack == "acme/postoucancer-dr/dr"
