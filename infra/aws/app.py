"""Application servers: the API on this site's Kubernetes cluster, at serving or standby scale.

The cluster is reached through an explicit provider built from the secret config value
`kubeconfig` (`pulumi config set --secret kubeconfig "$(cat <site kubeconfig>)"`): each
stack talks to its own site's cluster only, so activating the dr stack never needs the
primary region's cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.certificate import RegionalCertificate, RegionalCertificateArgs
from components.aws.network import POSTGRES_PORT, REDIS_PORT, SiteNetwork
from components.k8s.api import APP_NAME, ApiServer, ApiServerArgs
from infra.aws.data import DataTier, database_secret
from infra.aws.files import Files
from infra.aws.functions import pod_identity_trust_policy
from infra.cluster import api_scale, site_cluster
from infra.config import StackConfig
from infra.site import Site


@dataclass(frozen=True)
class App:
    provider: k8s.Provider  # this site's cluster (kubeconfig secret)
    namespace: k8s.core.v1.Namespace
    api: ApiServer
    role: aws.iam.Role  # the API pods' identity


def serving(cfg: StackConfig, is_dr: bool) -> bool:
    """The primary always serves; the DR site serves once activated."""
    return not is_dr or cfg.activated


def environment(site: Site, data: DataTier, files: Files) -> dict[str, pulumi.Input[str]]:
    """Where this site's API finds this site's data tier: names only, never a secret value.

    The pods read the secrets named here (database credentials, Redis AUTH token) from Secrets
    Manager at start-up through their workload identity (the ServiceAccount's IAM role, which
    needs secretsmanager:GetSecretValue on these ARNs and kms:Decrypt on the secrets key), so
    no password is ever in the pod spec or in the Deployment's state.

    Everything is this site's own: on dr the database is the replica (the very instance
    activation promotes in place, so its address, and this environment, do not change on
    activation) and the secret is the replica of prod's in this region, readable with the
    primary region gone. A piece not built yet (dr bootstrapped before prod has
    outputs) leaves its variable out rather than failing.
    """
    env: dict[str, pulumi.Input[str]] = {
        "PGPORT": str(POSTGRES_PORT),
        "PGDATABASE": site.cfg.database.name,
    }
    # libpq's PGHOST and DB_SECRET_ARN: the names the backup functions use too (lambdas/README.md).
    if (host := data.host) is not None:
        env["PGHOST"] = host
    secret_arn, _ = database_secret(site, data)
    if secret_arn is not None:
        env["DB_SECRET_ARN"] = secret_arn
    env["REDIS_HOST"] = data.redis.group.primary_endpoint_address
    env["REDIS_PORT"] = str(REDIS_PORT)
    env["REDIS_AUTH_SECRET_ARN"] = data.redis_token.arn
    env["FILES_BUCKET"] = files.bucket.bucket.bucket
    env["FILES_BUCKET_REGION"] = site.region
    return env


def _statements(site: Site, data: DataTier, files: Files) -> list[pulumi.Output[dict]]:
    """What the API's pods may do, exactly on what `environment(site)` names: read the two
    secrets (and decrypt them, through Secrets Manager only), read and write the files
    bucket's objects (through S3 only). Nothing deletes: no delete action, no wildcard
    resource. A piece not built yet grants nothing."""
    region = site.region
    statements: list[pulumi.Output[dict]] = []
    db_secret, secrets_key_arn = database_secret(site, data)
    secret_arns = [a for a in (db_secret, data.redis_token.arn) if a is not None]
    if secret_arns:
        statements.append(
            pulumi.Output.all(*secret_arns).apply(
                lambda arns: {
                    "Sid": "ReadOwnSecrets",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": sorted(arns),
                }
            )
        )
        if secrets_key_arn is not None:
            statements.append(
                pulumi.Output.from_input(secrets_key_arn).apply(
                    lambda k: {
                        "Sid": "DecryptSecretsViaSecretsManager",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt"],
                        "Resource": [k],
                        "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                    }
                )
            )
    if files is not None:
        arn = files.bucket.bucket.arn
        statements.append(
            arn.apply(
                lambda b: {
                    "Sid": "ReadWriteFiles",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": [f"{b}/*"],
                }
            )
        )
        statements.append(
            arn.apply(lambda b: {"Sid": "ListFiles", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [b]})
        )
        if (files_key := files.key) is not None:
            statements.append(
                files_key.arn.apply(
                    lambda k: {
                        "Sid": "FilesKeyViaS3",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": [k],
                        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                    }
                )
            )
    return statements


def _identity(site: Site, api: ApiServer, data: DataTier, files: Files) -> aws.iam.Role:
    """The API pods' AWS identity: a role bound to their ServiceAccount through EKS Pod Identity
    (the pattern of the backup CronJobs, infra/aws/functions.py)."""
    cfg = site.cfg
    role = aws.iam.Role(
        site.name("api-pods"),
        description="Post Ou Cancer API pods (EKS Pod Identity): read own secrets, read/write files, never delete",
        assume_role_policy=pod_identity_trust_policy(),
    )
    statements = _statements(site, data, files)
    if statements:
        aws.iam.RolePolicy(
            site.name("api-pods"),
            role=role.id,
            policy=pulumi.Output.all(*statements).apply(
                lambda s: json.dumps({"Version": "2012-10-17", "Statement": list(s)})
            ),
        )
    if cfg.functions.eks_cluster_name:
        aws.eks.PodIdentityAssociation(
            site.name("api-pods"),
            region=site.region,
            cluster_name=cfg.functions.eks_cluster_name,
            namespace=cfg.app.namespace,
            service_account=APP_NAME,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(depends_on=[api.service_account]),
        )
    # Without functions.eksClusterName the role exists unbound (no warning: the committed stacks
    # do not name their cluster yet, and a warning on every preview would drown the real ones).
    return role


def pod_security_groups(site: Site, client_group) -> list[pulumi.Input[str]]:
    """The groups a site's pods carry to reach the data tier (EKS security groups for pods), or
    none when the data tier is not in the cluster's VPC (nothing could attach them)."""
    cluster_sg = site.cfg.network.cluster_security_group_id
    if not (site.cfg.network.vpc_id and cluster_sg):
        return []
    return [client_group.id, cluster_sg]


UNREACHABLE = (
    "network.vpcId / network.clusterSecurityGroupId are unset: the data tier gets a VPC of its own, which "
    "this site's cluster cannot reach (its security groups admit only pods that carry the app group); "
    "fix: pulumi config set --path network.vpcId <cluster VPC>; pulumi config set --path 'network.subnetIds[0]' "
    "<private subnet> (and [1]); pulumi config set --path network.clusterSecurityGroupId <cluster security group>"
)


def _certificate(site: Site) -> pulumi.Input[str] | None:
    """The ALB's certificate: configured, or a regional ACM certificate validated in the zone."""
    cfg = site.cfg
    hostname = cfg.app.hostname or cfg.dns.record_name
    if cfg.app.certificate_arn or not (cfg.dns.zone_id and hostname):
        return cfg.app.certificate_arn
    cert = RegionalCertificate(
        site.name("api-certificate"),
        RegionalCertificateArgs(
            region=site.region,
            domain_name=hostname,
            zone_id=cfg.dns.zone_id,
            # One validation CNAME per domain and account, whatever the region: the dr stack,
            # which owns the zone's failover records, owns it too.
            owns_validation_record=site.is_dr,
        ),
    )
    return cert.arn


def build(site: Site, data: DataTier, files: Files, network: SiteNetwork) -> App:
    cfg = site.cfg
    app = cfg.app
    provider, namespace = site_cluster(site)
    scale = api_scale(app, serving(cfg, site.is_dr))
    api = ApiServer(
        site.name("api"),
        ApiServerArgs(
            namespace=app.namespace,
            image=app.image,
            autoscaling=scale.autoscaling,
            pilot_light=scale.pilot_light,
            health_path=app.health_path,
            port=app.port,
            hostname=app.hostname or cfg.dns.record_name,
            ingress_class=app.ingress_class,
            certificate_arn=_certificate(site),
            requests={"cpu": app.cpu_request, "memory": app.memory_request},
            limits={"cpu": app.cpu_limit, "memory": app.memory_limit},
            labels={"postoucancer.example/site": cfg.role.value},
            environment=environment(site, data, files),
            pod_security_group_ids=pod_security_groups(site, network.app_sg),
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace]),
    )
    role = _identity(site, api, data, files)
    if not api.security_group_policy:
        pulumi.log.warn(UNREACHABLE)
    site.export("appEndpoint", api.endpoint)
    site.export(
        "app",
        {
            "namespace": app.namespace,
            "replicas": scale.replicas,
            "scale": scale.label,
            "healthPath": app.health_path,
        },
    )
    return App(provider, namespace, api, role)
