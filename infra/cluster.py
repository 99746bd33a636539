"""What each cloud's app concern shares: the site's Kubernetes cluster and the API's scale.

infra/aws/app.py and infra/azure/app.py differ in what surrounds the API (ingress, identity,
network); the cluster connection, the namespace and the rule that turns "serving or standby"
into the HPA's bounds are one thing, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.api import Autoscaling
from infra.config import App
from infra.site import Site


@dataclass(frozen=True)
class ApiScale:
    serving: bool
    replicas: int  # the declared size: production, the standby's, or a pilot light's 0
    autoscaling: Autoscaling

    @property
    def pilot_light(self) -> bool:
        return self.replicas == 0

    @property
    def label(self) -> str:
        return "production" if self.serving else ("pilot-light" if self.pilot_light else "warm-standby")


def api_scale(app: App, serving: bool) -> ApiScale:
    """The HPA owns the scale: production bounds when serving; a standby is pinned at one pod
    (a pilot light's 0 is declared on the Deployment, where the HPA leaves it alone)."""
    bounds = (app.replicas, app.max_replicas) if serving else (1, 1)
    return ApiScale(serving, app.replicas if serving else app.standby_replicas,
                    Autoscaling(*bounds, app.cpu_target_percent))


def site_cluster(site: Site) -> tuple[k8s.Provider, k8s.core.v1.Namespace]:
    """The provider of the site's own cluster (config `kubeconfig`, a secret) and the app's namespace."""
    kubeconfig = pulumi.Config().require_secret("kubeconfig")
    provider = k8s.Provider(site.name("k8s"), kubeconfig=kubeconfig, enable_server_side_apply=True)
    namespace = k8s.core.v1.Namespace(
        site.name("namespace"),
        metadata={"name": site.cfg.app.namespace, "labels": {"app.kubernetes.io/part-of": "postoucancer"}},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return provider, namespace
