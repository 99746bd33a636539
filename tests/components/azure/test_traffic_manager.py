"""Traffic Manager failover (components/azure/traffic_manager.py) under mocks.

Source: "Traffic Manager endpoint monitoring": probing interval 30 or 10 seconds; tolerated
failures 0..9; timeout 5..10 s at a 30 s interval, 5..9 s at 10 s; priority routing returns the
first available endpoint; a disabled endpoint is not included in DNS responses.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.azure.traffic_manager import SiteEndpoint, TrafficManager, TrafficManagerArgs, monitor_config
from drplan.thresholds import HEALTH_CHECK_FAILURES, HEALTH_CHECK_INTERVAL

from .harness import run

PROFILE = "azure-native:trafficmanager:Profile"
ENDPOINT = "azure-native:trafficmanager:Endpoint"


def tm_args(**over) -> TrafficManagerArgs:
    base = dict(resource_group_name="rg-dr", relative_dns_name="postoucancer-api",
                primary=SiteEndpoint("api.fr.example.org", "francecentral"),
                dr=SiteEndpoint("api.de.example.org", "germanywestcentral"))
    return TrafficManagerArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    def program():
        TrafficManager("standby", tm_args())
        TrafficManager("active", tm_args(activated=True))

    return run(program)


def test_profile_is_global_priority_routed_with_the_plans_https_probe(stack):
    i = stack.one(PROFILE, "standby").inputs
    assert i["location"] == "global" and i["trafficRoutingMethod"] == "Priority"
    probe = i["monitorConfig"]
    assert probe["protocol"] == "HTTPS" and probe["port"] == 443 and probe["path"] == "/healthz"
    assert probe["intervalInSeconds"] == HEALTH_CHECK_INTERVAL.total_seconds() == 10
    assert probe["toleratedNumberOfFailures"] == HEALTH_CHECK_FAILURES == 3
    assert 5 <= probe["timeoutInSeconds"] <= 9


def test_activation_disables_the_primary_endpoint_and_keeps_the_dr_one(stack):
    def endpoints(profile):
        return {r.name.rsplit("-", 1)[-1]: r.inputs for r in stack.of_type(ENDPOINT) if r.name.startswith(profile)}

    standby, active = endpoints("standby"), endpoints("active")
    assert standby["primary"]["priority"] < standby["dr"]["priority"]
    assert standby["primary"]["endpointStatus"] == "Enabled" and active["primary"]["endpointStatus"] == "Disabled"
    assert active["dr"]["endpointStatus"] == "Enabled"
    assert {e["endpointType"] for e in standby.values()} == {"ExternalEndpoints"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(interval=timedelta(seconds=20)), r"probe interval: .* every \(10, 30\) seconds, not 20"),
        (dict(timeout_s=10), r"probe timeout: with a 10 s interval Traffic Manager takes 5..9 s, not 10"),
        (dict(failures=10), r"tolerated failures: Traffic Manager takes 0..9, not 10"),
        (dict(path="healthz"), "health_path: a path from the root"),
    ],
)
def test_probe_settings_outside_the_allowed_combinations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        monitor_config(**{"path": "/healthz", **kwargs})
    assert monitor_config("/healthz", interval=timedelta(seconds=30), timeout_s=10)["timeout_in_seconds"] == 10
