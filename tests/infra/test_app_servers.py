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


# The data tier each site's API is told about (environment variables of the API container).
DEPLOYMENT = K8S + "apps/v1:Deployment"
RDS = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"


def _env(run) -> dict[str, str]:
    (container,) = run.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]["containers"]
    entries = container.get("env", [])
    assert all(set(e) == {"name", "value"} for e in entries), "plain values only (no valueFrom a Kubernetes Secret)"
    return {e["name"]: e["value"] for e in entries}


def _region(run) -> str:
    return run.outputs["site"]["region"]


def _passwords(run) -> list[str]:
    import json

    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    values = [json.loads(r.inputs["secretString"]) for r in versions]
    return [v["password"] for v in values if isinstance(v, dict) and v.get("password")]


def _common_data_tier(run, env: dict[str, str]) -> None:
    from components.aws.network import POSTGRES_PORT
    from infra.config import Database

    assert env["PGPORT"] == str(POSTGRES_PORT) == "5432"
    assert env["PGDATABASE"] == Database().name
    group = run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert env["REDIS_HOST"] == group.outputs["primaryEndpointAddress"]
    assert env["REDIS_AUTH_SECRET_ARN"] == run.one(SECRET, "redis-auth").outputs["arn"]
    assert env["REDIS_AUTH_SECRET_ARN"].split(":")[3] == _region(run)
    assert env["FILES_BUCKET"] == run.one("aws:s3/bucket:Bucket", "-files").outputs["bucket"]
    assert env["FILES_BUCKET"] == run.outputs["filesBucketName"]
    assert env["FILES_BUCKET_REGION"] == _region(run)


def test_prod_pods_name_the_prod_data_tier(prod):
    env = _env(prod)
    assert _region(prod) == "eu-west-3"
    (db,) = prod.of_type(RDS)
    assert env["PGHOST"] == db.outputs["address"] and ".eu-west-3." in env["PGHOST"]
    secret = prod.one(SECRET, "database-credentials")
    assert env["DB_SECRET_ARN"] == secret.outputs["arn"]
    assert env["DB_SECRET_ARN"].startswith("arn:aws:secretsmanager:eu-west-3:")
    _common_data_tier(prod, env)


def test_dr_pods_name_the_dr_replica_and_secrets_in_the_dr_region(dr, prod):
    env = _env(dr)
    assert _region(dr) == "eu-central-1"
    # The replica: the instance that activation promotes (it is the one with a replication source).
    (replica,) = [r for r in dr.of_type(RDS) if r.inputs.get("replicateSourceDb")]
    assert env["PGHOST"] == replica.outputs["address"] and ".eu-central-1." in env["PGHOST"]
    assert env["PGHOST"] != _env(prod)["PGHOST"]
    # The replica of prod's database secret: same secret, in this region (readable with eu-west-3 gone).
    prod_arn = prod.one(SECRET, "database-credentials").outputs["arn"].split(":")
    dr_arn = env["DB_SECRET_ARN"].split(":")
    assert dr_arn[3] == "eu-central-1"
    assert dr_arn[:3] + dr_arn[4:] == prod_arn[:3] + prod_arn[4:]
    assert env["FILES_BUCKET"] != _env(prod)["FILES_BUCKET"]
    _common_data_tier(dr, env)


def test_activation_does_not_change_what_the_pods_are_told(dr, pair_prod):
    from infra.mockrun import run_stack

    activated = run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={P + "activated": True})
    before, after = _env(dr), _env(activated)
    # Promotion happens in place: the promoted instance keeps its address, the pods need no new host.
    (promoted,) = [r for r in activated.of_type(RDS) if r.name == "dr-database"]
    assert not promoted.inputs.get("replicateSourceDb"), "activation promotes the replica"
    assert after["PGHOST"] == promoted.outputs["address"] == before["PGHOST"]
    assert after == before


def test_dr_bootstrapped_before_prod_omits_what_does_not_exist_yet(pair_prod):
    first = pair_prod.bootstrap[0]  # dr before prod has any outputs: no replica, no replicated secret
    env = _env(first)
    assert "PGHOST" not in env and "DB_SECRET_ARN" not in env
    assert env["FILES_BUCKET"] == first.outputs["filesBucketName"]
    assert env["REDIS_HOST"] and env["REDIS_AUTH_SECRET_ARN"]


@pytest.mark.parametrize("site", ["prod", "dr", "staging", "staging_dr"])
def test_no_secret_value_is_in_the_pod_spec(site, request):
    run = request.getfixturevalue(site)
    env = _env(run)
    primary = {"dr": "prod", "staging_dr": "staging"}.get(site, site)  # the database password lives there
    passwords = _passwords(run) + _passwords(request.getfixturevalue(primary))
    assert passwords, "the generated passwords (database, Redis AUTH) are known to the mocks"
    container = str(run.one(DEPLOYMENT).inputs)
    assert not [p for p in passwords if p in container]
    secret_refs = {k: v for k, v in env.items() if "SECRET" in k or "PASSWORD" in k or "TOKEN" in k}
    assert secret_refs and all(v.startswith("arn:aws:secretsmanager:") for v in secret_refs.values()), secret_refs
