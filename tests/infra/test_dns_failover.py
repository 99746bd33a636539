"""Route 53 health checks and failover records (issue 5): owned by the dr stack only."""

from __future__ import annotations

import pytest

from drplan.thresholds import HEALTH_CHECK_FAILURES, HEALTH_CHECK_INTERVAL
from infra.config import App, ConfigError, parse
from infra.mockrun import load_stack_config, run_stack

P = "postoucancer-dr:"
RECORD = "aws:route53/record:Record"


def _failover_records(run):
    """The failover pair (the zone also holds the ALB certificates' validation record)."""
    return [r for r in run.of_type(RECORD) if r.parent_type == "postoucancer:aws:DnsFailover"]
CHECK = "aws:route53/healthCheck:HealthCheck"


@pytest.fixture(scope="module")
def activated(pair_prod):
    return run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={P + "activated": True})


def _records(run) -> dict[str, dict]:
    return {r.inputs["setIdentifier"]: r for r in _failover_records(run)}


def test_no_dns_resource_is_owned_by_a_primary_stack(prod, staging):
    for run in (prod, staging):
        assert not [r.type for r in run.resources if r.type.startswith("aws:route53")]
        assert "dns" not in run.outputs


def test_health_checks_probe_each_site_over_https(dr, prod):
    health_path = load_stack_config("dr")[P + "app"].get("healthPath", App().health_path)
    checks = {r.name: r for r in dr.of_type(CHECK)}
    primary, standby = checks["dr-dns-primary-health"], checks["dr-dns-dr-health"]
    assert primary.inputs["fqdn"] == prod.outputs["appEndpoint"]
    assert standby.inputs["fqdn"] == dr.outputs["appEndpoint"]
    for check in (primary, standby):
        assert check.inputs["type"] == "HTTPS" and check.inputs["port"] == 443
        assert check.inputs["resourcePath"] == health_path
        assert check.inputs["requestInterval"] == HEALTH_CHECK_INTERVAL.total_seconds() == 10
        assert check.inputs["failureThreshold"] == HEALTH_CHECK_FAILURES == 3
        assert check.inputs["enableSni"] is True


def test_records_fail_over_automatically_before_activation(dr, prod):
    dns = load_stack_config("dr")[P + "dns"]
    records = _records(dr)
    assert set(records) == {"primary", "secondary"}
    for ident, r in records.items():
        assert r.inputs["zoneId"] == dns["zoneId"] and r.inputs["name"] == dns["recordName"]
        assert r.inputs["type"] == "CNAME" and r.inputs["ttl"] == dns["ttl"]
        assert r.inputs["failoverRoutingPolicies"] == [{"type": ident.upper()}]
    assert records["primary"].inputs["records"] == [prod.outputs["appEndpoint"]]
    assert records["secondary"].inputs["records"] == [dr.outputs["appEndpoint"]]
    assert records["primary"].inputs["healthCheckId"] == dr.outputs["dns"]["primaryHealthCheckId"]
    assert records["secondary"].inputs["healthCheckId"] == dr.outputs["dns"]["drHealthCheckId"]
    assert dr.outputs["dns"]["failover"] == "automatic"
    assert dr.outputs["dns"]["primaryHealthCheckId"] != dr.outputs["dns"]["drHealthCheckId"]


def test_activation_forces_every_answer_to_the_dr_site(activated, dr):
    records = _records(activated)
    for r in records.values():
        assert r.inputs["records"] == [dr.outputs["appEndpoint"]]
        assert r.inputs["healthCheckId"] == dr.outputs["dns"]["drHealthCheckId"]
    assert activated.outputs["dns"]["failover"] == "forced"
    # The primary's health check stays (it tells when the old primary is back, for failback).
    assert activated.one(CHECK, "primary-health").inputs["fqdn"] == dr.one(CHECK, "primary-health").inputs["fqdn"]


def test_activation_works_without_any_output_of_the_primary(pair_prod):
    """Forced failover needs nothing from prod: the records point at the DR site only."""
    run = run_stack("dr", overrides={P + "activated": True})
    records = _records(run)
    assert set(records) == {"primary", "secondary"}
    assert {tuple(r.inputs["records"]) for r in records.values()} == {(run.outputs["appEndpoint"],)}


def test_first_bootstrap_creates_no_records_yet(pair_prod):
    """Before prod exists an automatic failover pair would send users to the standby."""
    first = pair_prod.bootstrap[0]
    assert not _failover_records(first)
    assert [r.name for r in first.of_type(CHECK)] == ["dr-dns-dr-health"]
    assert "appEndpoint" in first.outputs["nextStep"]


def test_staging_dr_has_its_own_failover_pair(staging_dr, staging):
    records = _records(staging_dr)
    assert records["primary"].inputs["records"] == [staging.outputs["appEndpoint"]]
    assert records["primary"].inputs["name"] == load_stack_config("staging-dr")[P + "dns"]["recordName"]


BASE = {
    "cloud": "aws",
    "role": "dr",
    "tier": "staging",
    "regions": {"primary": "eu-west-3", "dr": "eu-central-1"},
    "peerStack": "organization/postoucancer-dr/staging",
}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"dns": {"zoneId": "Z123ABC", "zoneName": "example.org"}}, ["dns", "recordName together"]),
        ({"dns": {"zoneId": "z-lower", "zoneName": "a.org", "recordName": "api.a.org"}}, ["dns.zoneId"]),
        (
            {"dns": {"zoneId": "Z123", "zoneName": "example.org", "recordName": "api.example.com"}},
            ["dns.recordName", "not a name below"],
        ),
        ({"dns": {"zoneId": "Z123", "zoneName": "example.org", "recordName": "example.org"}}, ["zone apex"]),
        ({"activatedAt": "2026-11-27T21:00:00Z"}, ["activatedAt", "pulumi config rm activatedAt"]),
        ({"activated": True, "activatedAt": "2026-11-27T21:00:00"}, ["activatedAt", "no time zone"]),
        ({"app": {"replicas": 4, "maxReplicas": 2}}, ["app.maxReplicas", "below app.replicas"]),
    ],
)
def test_dns_and_activation_config_mistakes_are_refused(extra, expected):
    with pytest.raises(ConfigError) as e:
        parse({**BASE, **extra})
    for part in expected:
        assert part in str(e.value)
