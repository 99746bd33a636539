"""The API on this site's AKS cluster, through the cloud-neutral components/k8s ApiServer, at
serving or standby scale (as infra/aws/app.py: the HPA's bounds are what activation changes).

The cluster is reached through an explicit provider built from the secret config value
`kubeconfig` (`pulumi config set --secret kubeconfig "$(cat <site kubeconfig>)"`): each stack
talks to its own site's cluster only, so activating dr-azure never needs the primary region.

The Ingress is served by AKS's application routing add-on (managed ingress-nginx, class
`webapprouting.kubernetes.azure.com`): its load balancer's public address is the site's
`appEndpoint`, which Traffic Manager probes and routes to. With `azure.tlsCertificateUri` the
add-on serves that Key Vault certificate (annotation `kubernetes.azure.com/tls-cert-keyvault-uri`,
secret `keyvault-<ingress>`); without it, ingress-nginx's default certificate (Traffic Manager's
HTTPS probes do not validate certificates; clients would).

Not here yet (docs/azure.md, pending): the API pods' Azure identity (AKS workload identity: a
user-assigned identity federated with the cluster's OIDC issuer, Key Vault Secrets User on the
credentials, blob read/write on the files container), and the cluster itself (each site's AKS
exists already; this program does not create it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.api import APP_NAME, ApiServer, ApiServerArgs
from infra.azure.cache import REDIS_TLS_PORT, Cache
from infra.azure.credentials import SECRET_NAME, Credentials
from infra.azure.data import Database
from infra.azure.files import CONTAINER as FILES_CONTAINER
from infra.azure.files import Files
from infra.cluster import api_scale, site_cluster
from infra.config import ConfigError
from infra.site import Site

AKS_APP_ROUTING_CLASS = "webapprouting.kubernetes.azure.com"
KEYVAULT_CERT_ANNOTATION = "kubernetes.azure.com/tls-cert-keyvault-uri"
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class App:
    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    api: ApiServer
    endpoint: pulumi.Output[str]  # the ingress load balancer's public address


def serving(site: Site) -> bool:
    """The primary always serves; the DR site serves once activated."""
    return not site.is_dr or site.cfg.activated


def environment(site: Site, db: Database, cache: Cache, files: Files, creds: Credentials) -> dict:
    """Where this site's API finds this site's data tier: names only, never a secret value (the
    pods read the credentials secret from this site's Key Vault)."""
    env: dict[str, pulumi.Input[str]] = {
        "PGPORT": str(POSTGRES_PORT),
        "PGDATABASE": site.cfg.database.name,
        "PGSSLMODE": "require",
        "REDIS_HOST": cache.redis.cache.host_name,
        "REDIS_PORT": str(REDIS_TLS_PORT),
        "FILES_ACCOUNT_URL": files.account.blob_endpoint,
        "FILES_CONTAINER": FILES_CONTAINER,
    }
    if db.fqdn is not None:
        env["PGHOST"] = db.fqdn
    if creds.secret is not None:
        env["DB_SECRET_URI"] = creds.secret.properties.apply(lambda p: p.secret_uri)
        env["DB_SECRET_NAME"] = SECRET_NAME
    return env


def build(site: Site, db: Database, cache: Cache, files: Files, creds: Credentials) -> App:
    cfg, app, azure = site.cfg, site.cfg.app, site.cfg.azure
    assert azure is not None
    if app.ingress_class == "alb":
        raise ConfigError(
            f"config key 'postoucancer-dr:app.ingressClass' = \"alb\" is the AWS Load Balancer Controller's, which "
            f"an AKS cluster does not run; fix: pulumi config set --path app.ingressClass {AKS_APP_ROUTING_CLASS}"
        )
    provider, namespace = site_cluster(site)
    scale = api_scale(app, serving(site))
    annotations = {KEYVAULT_CERT_ANNOTATION: azure.tls_certificate_uri} if azure.tls_certificate_uri else {}
    api = ApiServer(
        site.name("api"),
        ApiServerArgs(
            namespace=app.namespace,
            image=app.image,
            autoscaling=scale.autoscaling,
            pilot_light=scale.pilot_light,
            health_path=app.health_path,
            port=app.port,
            hostname=app.hostname,
            ingress_class=app.ingress_class,
            ingress_annotations=annotations,
            tls_secret_name=f"keyvault-{APP_NAME}" if azure.tls_certificate_uri else None,
            requests={"cpu": app.cpu_request, "memory": app.memory_request},
            limits={"cpu": app.cpu_limit, "memory": app.memory_limit},
            labels={"postoucancer.example/site": cfg.role.value},
            environment=environment(site, db, cache, files, creds),
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace]),
    )
    site.export("appEndpoint", api.endpoint)
    site.export(
        "app",
        {
            "namespace": app.namespace,
            "replicas": scale.replicas,
            "scale": scale.label,
            "healthPath": app.health_path,
            "ingressClass": app.ingress_class,
        },
    )
    return App(provider, namespace, api, api.endpoint)
