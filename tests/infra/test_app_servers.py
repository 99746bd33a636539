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
    """The HPA owns spec.replicas. Kubernetes, "Horizontal Pod Autoscaling / Migrating Deployments
    and StatefulSets to horizontal autoscaling": when an HPA is enabled, remove spec.replicas from
    the manifest; with server-side apply a declared value conflicts with kube-controller-manager's
    (pulumi/pulumi#13321)."""
    app = _app("prod")
    deployment = prod.one(K8S + "apps/v1:Deployment")
    assert "replicas" not in deployment.inputs["spec"]
    hpa = prod.one(K8S + "autoscaling/v2:HorizontalPodAutoscaler")
    spec = hpa.inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP_NAME}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (app["replicas"], app["maxReplicas"])
    target = spec["metrics"][0]["resource"]["target"]["averageUtilization"]
    assert target == App().cpu_target_percent


def test_staging_dr_is_a_pilot_light(staging_dr):
    """0 pods with the HPA standing aside: Kubernetes HPA docs, "Implicit maintenance-mode
    deactivation": a target at 0 replicas with minReplicas > 0 is not adjusted until the target or
    the HPA's minimum is changed (which activation does)."""
    assert _app("staging-dr")["standbyReplicas"] == 0
    assert staging_dr.one(K8S + "apps/v1:Deployment").inputs["spec"]["replicas"] == 0
    hpa = staging_dr.one(K8S + "autoscaling/v2:HorizontalPodAutoscaler")
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (1, 1)


def test_a_warm_standby_is_held_at_one_pod_by_its_hpa(dr):
    assert _app("dr")["standbyReplicas"] == 1
    assert "replicas" not in dr.one(K8S + "apps/v1:Deployment").inputs["spec"]
    hpa = dr.one(K8S + "autoscaling/v2:HorizontalPodAutoscaler")
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (1, 1)


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


# --- the API pods' AWS identity (EKS Pod Identity, like the backup CronJobs) -------------------

SERVICE_ACCOUNT = K8S + "core/v1:ServiceAccount"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
CLUSTER = "site-eks"  # any name: the association must carry the configured one


def _with_cluster(stack: str, peer_outputs: dict):
    from infra.mockrun import run_stack

    return run_stack(stack, peer_outputs=peer_outputs, overrides={P + "functions": {"eksClusterName": CLUSTER}})


@pytest.fixture(scope="module")
def eks_sites(pair_prod) -> dict:
    return {
        "prod": _with_cluster("prod", pair_prod.dr.outputs),
        "dr": _with_cluster("dr", pair_prod.primary.outputs),
    }


def _api_service_account(run):
    (sa,) = [r for r in run.of_type(SERVICE_ACCOUNT) if r.inputs["metadata"]["name"] == APP_NAME]
    return sa


def _api_role(run):
    (role,) = [
        r
        for r in run.of_type(ROLE)
        if "pods.eks.amazonaws.com" in r.inputs["assumeRolePolicy"] and r.name.endswith("api-pods")
    ]
    return role


def _api_policy(run) -> list[dict]:
    import json

    role = _api_role(run)
    (policy,) = [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]
    return json.loads(policy.inputs["policy"])["Statement"]


def _granted(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if s["Effect"] == "Allow" and action in s["Action"]]


@pytest.mark.parametrize("site", ["prod", "dr", "staging", "staging_dr"])
def test_the_deployment_runs_as_the_api_service_account(site, request):
    run = request.getfixturevalue(site)
    sa = _api_service_account(run)
    deployment = run.one(DEPLOYMENT)
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa.inputs["metadata"]["name"]
    assert sa.inputs["metadata"]["namespace"] == deployment.inputs["metadata"]["namespace"]
    # Pod Identity brings its own projected token: no Kubernetes API token in the pods.
    assert sa.inputs["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    assert sa.urn in deployment.dependencies, "the ServiceAccount exists before pods reference it"


@pytest.mark.parametrize("site", ["prod", "dr"])
def test_the_api_service_account_is_bound_to_its_role_on_the_sites_cluster(site, eks_sites):
    import json

    run = eks_sites[site]
    sa = _api_service_account(run)
    role = _api_role(run)
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Action"] for s in trust] == [["sts:AssumeRole", "sts:TagSession"]]
    associations = [a for a in run.of_type(ASSOCIATION) if a.inputs["roleArn"] == role.outputs["arn"]]
    (association,) = associations
    assert association.inputs["clusterName"] == CLUSTER
    assert association.inputs["namespace"] == sa.inputs["metadata"]["namespace"]
    assert association.inputs["serviceAccount"] == sa.inputs["metadata"]["name"]
    assert association.inputs["region"] == _region(run)


def test_without_a_cluster_name_there_is_a_role_but_no_association(prod):
    assert _api_role(prod) and not prod.of_type(ASSOCIATION)


@pytest.mark.parametrize("site", ["prod", "dr", "staging", "staging_dr"])
def test_the_api_role_reads_exactly_its_secrets_and_files_and_deletes_nothing(site, request):
    from policy.rules.access import BACKUP_DESTROYING_ACTIONS, destroying_grants

    run = request.getfixturevalue(site)
    region = _region(run)
    env = _env(run)
    statements = _api_policy(run)
    # Secrets: exactly the two the pods are told about, in this region.
    (read,) = _granted(statements, "secretsmanager:GetSecretValue")
    assert set(read["Resource"]) == {env["DB_SECRET_ARN"], env["REDIS_AUTH_SECRET_ARN"]}
    assert {arn.split(":")[3] for arn in read["Resource"]} == {region}
    (decrypt_secrets,) = [s for s in _granted(statements, "kms:Decrypt") if "secretsmanager" in str(s["Condition"])]
    assert decrypt_secrets["Resource"] == [run.one("aws:kms/key:Key", "-secrets-key").outputs["arn"]]
    assert decrypt_secrets["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    }
    # Files: the objects of this site's bucket, and listing it.
    bucket = run.one("aws:s3/bucket:Bucket", "-files").outputs["arn"]
    assert bucket.endswith(":" + env["FILES_BUCKET"])
    (objects,) = _granted(statements, "s3:GetObject")
    assert set(objects["Action"]) == {"s3:GetObject", "s3:PutObject"} and objects["Resource"] == [f"{bucket}/*"]
    (listing,) = _granted(statements, "s3:ListBucket")
    assert listing["Resource"] == [bucket]
    (files_key,) = _granted(statements, "kms:GenerateDataKey")
    assert files_key["Resource"] == [run.one("aws:kms/key:Key", "-files-key").outputs["arn"]]
    assert files_key["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
    # Least privilege: no wildcard resource, no service-wide action, nothing that deletes.
    for s in statements:
        assert s["Effect"] == "Allow" and "*" not in s["Resource"], s
        assert not [a for a in s["Action"] if "*" in a or "Delete" in a], s
    assert destroying_grants([{"Statement": statements}]) == [], BACKUP_DESTROYING_ACTIONS


def test_the_dr_role_reads_the_secret_replica_in_eu_central_1(dr, prod):
    (read,) = _granted(_api_policy(dr), "secretsmanager:GetSecretValue")
    prod_secret = prod.one(SECRET, "database-credentials").outputs["arn"]
    replica = prod_secret.replace(":eu-west-3:", ":eu-central-1:")
    assert replica != prod_secret and replica in read["Resource"] and prod_secret not in read["Resource"]
    (prod_read,) = _granted(_api_policy(prod), "secretsmanager:GetSecretValue")
    assert prod_secret in prod_read["Resource"]


def test_dr_bootstrapped_before_prod_grants_only_what_exists(pair_prod):
    first = pair_prod.bootstrap[0]
    (read,) = _granted(_api_policy(first), "secretsmanager:GetSecretValue")
    assert read["Resource"] == [_env(first)["REDIS_AUTH_SECRET_ARN"]], "no database secret replica yet"
