"""Application servers: the API on this site's Kubernetes cluster, at serving or standby scale.

The cluster is reached through an explicit provider built from the secret config value
`kubeconfig` (`pulumi config set --secret kubeconfig "$(cat <site kubeconfig>)"`): each
stack talks to its own site's cluster only, so activating the dr stack never needs the
primary region's cluster.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.api import ApiServer, ApiServerArgs, Autoscaling
from infra.config import StackConfig
from infra.site import Site


def serving(cfg: StackConfig, is_dr: bool) -> bool:
    """The primary always serves; the DR site serves once activated."""
    return not is_dr or cfg.activated


def build(site: Site) -> None:
    cfg = site.cfg
    app = cfg.app
    kubeconfig = pulumi.Config().require_secret("kubeconfig")
    provider = k8s.Provider(site.name("k8s"), kubeconfig=kubeconfig, enable_server_side_apply=True)
    namespace = k8s.core.v1.Namespace(
        site.name("namespace"),
        metadata={"name": app.namespace, "labels": {"app.kubernetes.io/part-of": "postoucancer"}},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    is_serving = serving(cfg, site.is_dr)
    replicas = app.replicas if is_serving else app.standby_replicas
    api = ApiServer(
        site.name("api"),
        ApiServerArgs(
            namespace=app.namespace,
            image=app.image,
            replicas=replicas,
            autoscaling=Autoscaling(app.replicas, app.max_replicas, app.cpu_target_percent) if is_serving else None,
            health_path=app.health_path,
            port=app.port,
            hostname=app.hostname or cfg.dns.record_name,
            ingress_class=app.ingress_class,
            certificate_arn=app.certificate_arn,
            requests={"cpu": app.cpu_request, "memory": app.memory_request},
            limits={"cpu": app.cpu_limit, "memory": app.memory_limit},
            labels={"postoucancer.example/site": cfg.role.value},
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace]),
    )
    site.parts["k8s.provider"] = provider
    site.parts["k8s.namespace"] = namespace
    site.parts["app"] = api
    site.export("appEndpoint", api.endpoint)
    site.export(
        "app",
        {
            "namespace": app.namespace,
            "replicas": replicas,
            "scale": "production" if is_serving else ("pilot-light" if replicas == 0 else "warm-standby"),
            "healthPath": app.health_path,
        },
    )
