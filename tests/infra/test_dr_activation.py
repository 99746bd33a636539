"""DR activation (issue 5): dr with activated false vs true, under mocks."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from infra.activation import Change, diff_activation, diff_runs
from infra.mockrun import load_stack_config, run_stack
from tests.conftest import SESSION_START_ENV

P = "postoucancer-dr:"
AT = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)

# What activation is meant to change, and nothing else: (action, type, name, changed input paths).
INTENDED = {
    # DNS: the PRIMARY failover record is forced to the DR site (and its DR health check).
    ("update", "aws:route53/record:Record", "dr-dns-primary"): {"records", "healthCheckId"},
    # The API goes from standby to production size through its HPA's bounds (the HPA owns
    # spec.replicas; the Deployment itself does not change for a warm standby).
    ("update", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "dr-api-hpa"): {
        "spec.minReplicas",
        "spec.maxReplicas",
    },
    # The activation time, kept stable across later `pulumi up`s.
    ("create", "aws:ssm/parameter:Parameter", "dr-activated-at"): set(),
}
# The data tier (issue 3) promotes the replica: an in-place update dropping replicateSourceDb.
RDS = "aws:rds/instance:Instance"
# The functions (issue 4) back up and verify from the DR site once it is the primary: their
# schedules exist disabled on the standby and are enabled by activation.
SCHEDULE = "aws:scheduler/schedule:Schedule"
# The alerts (issue 7): once primary, the DR site watches what a primary watches (alarms that
# the prod site has), stops watching replication from prod, and its dashboard follows.
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


@pytest.fixture(scope="module")
def changes(pair_prod) -> list[Change]:
    return diff_activation(pair_prod, at=AT)


@pytest.fixture(scope="module")
def activated(pair_prod):
    return run_stack(
        "dr",
        peer_outputs=pair_prod.primary.outputs,
        overrides={P + "activated": True, P + "activatedAt": "2026-11-27T21:00:00Z"},
    )


def _app_config(stack: str) -> dict:
    return load_stack_config(stack)[P + "app"]


def test_activation_changes_exactly_the_intended_resources(changes, dr, pair_prod):
    found = {(c.action, c.type, c.name): c.paths for c in changes}
    replicas = [r for r in dr.of_type(RDS) if r.inputs.get("replicateSourceDb")]
    for r in replicas:
        promoted = found.pop(("update", RDS, r.name), set())
        assert "replicateSourceDb" in promoted, f"the replica {r.name} is not promoted on activation"
    # The backup functions' schedules; the testing schedule's tasks (infra/aws/drills.py) run on the
    # standby by design and activation leaves them alone.
    for r in [s for s in dr.of_type(SCHEDULE) if s.parent_type == "postoucancer:aws:BackupFunctions"]:
        assert r.inputs["state"] == "DISABLED", f"{r.name} runs on the standby"
        assert found.pop(("update", SCHEDULE, r.name)) == {"state"}, f"{r.name} is not enabled on activation"
    primary_alarms = {r.name.removeprefix("primary-") for r in pair_prod.primary.of_type(ALARM)}
    for action, type_, name in [k for k in found if k[1] == ALARM]:
        paths = found.pop((action, type_, name))
        if action == "create":
            assert name.removeprefix("dr-") in primary_alarms, f"{name}: no such alarm on a primary site"
        else:
            assert (action, paths) == ("delete", set()) and name.endswith("replica-lag"), (action, name)
    for key in [k for k in found if k[1] == DASHBOARD]:
        assert all(path.startswith("dashboardBody.") for path in found.pop(key))
    assert found == INTENDED
    assert {p.after for c in changes if c.type == SCHEDULE for p in c.properties} <= {"ENABLED"}


def test_activation_replaces_or_deletes_nothing_stateful(changes, dr, activated):
    assert not [c for c in changes if c.risky]
    assert not [c for c in changes if c.action == "replace"]
    # The only deletion: the standby's replication-lag alarm (issue 7), nothing stateful.
    assert all(c.type == ALARM and not c.stateful for c in changes if c.action == "delete")
    after = {r.urn for r in activated.resources}
    protected = [r for r in dr.resources if r.protect or r.retain_on_delete]
    assert protected, "the dr stack protects its stateful resources"
    assert [r.name for r in protected if r.urn not in after] == []


def test_a_stateful_replacement_would_be_flagged(dr):
    """The guard itself: change a replace-forcing property of a protected resource."""
    import copy

    after = copy.deepcopy(dr)
    bucket = next(r for r in after.resources if r.type == "aws:s3/bucket:Bucket" and r.protect)
    bucket.inputs["bucket"] = "renamed"
    (change,) = diff_runs(dr, after)
    assert change.action == "replace" and change.risky


def test_standby_scale_before_and_production_scale_after(dr, activated):
    app = _app_config("dr")
    before = dr.one("kubernetes:apps/v1:Deployment", "dr-api")
    after = activated.one("kubernetes:apps/v1:Deployment", "dr-api")
    assert "replicas" not in before.inputs["spec"] and "replicas" not in after.inputs["spec"]
    standby_hpa = dr.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "dr-api")
    assert standby_hpa.inputs["spec"]["minReplicas"] == app["standbyReplicas"] == 1
    hpa = activated.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "dr-api")
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (
        app["replicas"],
        app["maxReplicas"],
    )
    assert activated.outputs["app"]["scale"] == "production"
    assert dr.outputs["app"]["scale"] == ("pilot-light" if app["standbyReplicas"] == 0 else "warm-standby")


def test_activation_time_is_exported_and_stable(activated, dr):
    param = activated.one("aws:ssm/parameter:Parameter", "activated-at")
    assert activated.outputs["activatedAt"] == "2026-11-27T21:00:00Z" == param.inputs["value"]
    assert param.ignore_changes == ["value"], "a later pulumi up must not move the activation time"
    assert param.region == "eu-central-1"
    assert "activatedAt" not in dr.outputs and dr.outputs["activated"] is False


# Runs are remembered for the session (and shared by its workers): the activated run may be
# older than this test, never older than the session (tests/conftest.py).
SESSION_START = datetime.fromisoformat(os.environ[SESSION_START_ENV])


def test_activation_without_configured_time_uses_the_run_time(pair_prod):
    run = run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={P + "activated": True})
    at = datetime.fromisoformat(run.outputs["activatedAt"].replace("Z", "+00:00"))
    assert SESSION_START <= at <= datetime.now(UTC)


def test_offline_plan_shows_what_activation_changes(pair_prod):
    from infra.plan import activation_lines, render_text

    lines = activation_lines(pair_prod)
    assert any("dr-dns-primary" in line and "records" in line for line in lines)
    assert any("dr-api-hpa" in line and "spec.minReplicas" in line for line in lines)
    assert "pulumi config set activated true -s dr" in render_text({"prod": pair_prod})


def test_json_documents_are_diffed_inside():
    from infra.activation import property_changes
    from infra.mockrun import Recorded

    before = Recorded("t", "n", "u", {"policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:Get*"}]}'})
    after = Recorded("t", "n", "u", {"policy": '{"Statement": [{"Effect": "Deny", "Action": "s3:Get*"}]}'})
    assert [(c.path, c.before, c.after) for c in property_changes(before, after)] == [
        ("policy.Statement[0].Effect", "Allow", "Deny")
    ]


def test_a_change_line_shows_a_few_properties_and_counts_the_rest():
    from infra.activation import SHOWN_PROPERTIES, Change, PropertyChange

    props = [PropertyChange(f"p{i}", i, i + 1) for i in range(SHOWN_PROPERTIES + 3)]
    line = str(Change("update", "aws:cloudwatch/dashboard:Dashboard", "d", "urn", False, props))
    assert line.count("→") == SHOWN_PROPERTIES and line.endswith("(+3 more)")
    short = str(Change("update", "aws:x/y:Y", "d", "urn", False, props[:2]))
    assert "more" not in short and short.count("→") == 2


def test_activating_a_pilot_light_drops_the_declared_zero_and_raises_the_hpa(pair_staging):
    """From 0 pods: the declared `replicas: 0` goes. Kubernetes "Server-Side Apply": a field removed
    from the applied manifest that no other manager owns is reset to its default (1 for
    spec.replicas), and the HPA docs name a change of the target's replica count (or of the HPA's
    minimum) as what reactivates an HPA in maintenance mode; from then on the HPA owns the field."""
    changes = {(c.type, c.name): c for c in diff_activation(pair_staging, at=AT)}
    deployment = changes[("kubernetes:apps/v1:Deployment", "dr-api-deployment")]
    assert deployment.paths == {"spec.replicas"}
    activated = run_stack("staging-dr", peer_outputs=pair_staging.primary.outputs, overrides={P + "activated": True})
    assert "replicas" not in activated.one("kubernetes:apps/v1:Deployment", "dr-api").inputs["spec"]
    hpa = changes[("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "dr-api-hpa")]
    assert hpa.paths and hpa.paths <= {"spec.minReplicas", "spec.maxReplicas"}
