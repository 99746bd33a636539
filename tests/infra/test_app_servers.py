"""The API on each site's Kubernetes cluster (issue 5): explicit provider, scale per site."""

from __future__ import annotations

import pytest

from components.k8s.api import APP_NAME
from infra.config import App
from infra.mockrun import load_stack_config

P = "postoucancer-dr:"
K8S = "kubernetes:"


def _app(stack: str) -> dict:
    return load_stack_config(stack).get(P + "app", {})


@pytest.mark.parametrize("site", ["prod", "dr", "staging", "staging_dr"])
def test_every_kubernetes_resource_goes_through_the_sites_own_provider(site, request):
    run = request.getfixturevalue(site)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]", "the kubeconfig comes from the secret config value"
    resources = [r for r in run.resources if r.type.startswith(K8S)]
    assert len(resources) >= 5
    for r in resources:
        assert r.provider.startswith(provider.urn + "::"), f"{r.name} uses {r.provider or 'the ambient provider'}"


def test_prod_runs_at_production_scale_with_an_autoscaler(prod):
    app = _app("prod")
    deployment = prod.one(K8S + "apps/v1:Deployment")
    assert deployment.inputs["spec"]["replicas"] == app["replicas"]
    hpa = prod.one(K8S + "autoscaling/v2:HorizontalPodAutoscaler")
    spec = hpa.inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP_NAME}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (app["replicas"], app["maxReplicas"])
    target = spec["metrics"][0]["resource"]["target"]["averageUtilization"]
    assert target == App().cpu_target_percent


def test_staging_dr_is_a_pilot_light(staging_dr):
    assert _app("staging-dr")["standbyReplicas"] == 0
    assert staging_dr.one(K8S + "apps/v1:Deployment").inputs["spec"]["replicas"] == 0
    assert not staging_dr.of_type(K8S + "autoscaling/v2:HorizontalPodAutoscaler")


def test_pods_are_bounded_probed_and_locked_down(prod):
    pod = prod.one(K8S + "apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    defaults = App()
    assert container["resources"] == {
        "requests": {"cpu": defaults.cpu_request, "memory": defaults.memory_request},
        "limits": {"cpu": defaults.cpu_limit, "memory": defaults.memory_limit},
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == defaults.health_path
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False


def test_disruption_budget_never_blocks_a_small_standby(prod, staging_dr):
    for run in (prod, staging_dr):
        pdb = run.one(K8S + "policy/v1:PodDisruptionBudget").inputs["spec"]
        assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": APP_NAME}}}


def test_ingress_serves_the_public_name_and_the_health_check(prod, dr):
    for run, host in ((prod, _app("prod")["hostname"]), (dr, load_stack_config("dr")[P + "dns"]["recordName"])):
        ingress = run.one(K8S + "networking.k8s.io/v1:Ingress")
        spec = ingress.inputs["spec"]
        assert [r["host"] for r in spec["rules"]] == [host]
        # Route 53 probes the load balancer by its own name: the default backend answers it.
        assert spec["defaultBackend"]["service"]["name"] == APP_NAME
        notes = ingress.inputs["metadata"]["annotations"]
        assert notes["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
        assert notes["alb.ingress.kubernetes.io/healthcheck-path"] == App().health_path
        assert run.outputs["appEndpoint"].endswith(f".{run.outputs['site']['region']}.elb.amazonaws.com")
