"""The platform's API on a site's Kubernetes cluster: ServiceAccount, Deployment, Service, Ingress, PDB, HPA.

One `ApiServer` per site, on that site's cluster through an explicit provider (never the
ambient kubeconfig: the prod and dr clusters are different clusters in different regions).

Scale is the only thing that differs between a serving site and a standby one, and the HPA
owns it: the Deployment never declares `spec.replicas` while its HPA scales it (the Kubernetes
HPA documentation says to remove it from the manifest; with server-side apply a declared value
conflicts with kube-controller-manager's on the next update, pulumi/pulumi#13321).
- serving (prod, or dr once activated): the HPA keeps `replicas` … `max_replicas` pods on CPU;
- warm standby (dr before activation, 1 pod): the HPA pins the Deployment at 1 (min = max = 1);
- pilot light (0 pods): the Deployment declares `replicas: 0`, which puts the HPA (min 1) in the
  documented "implicit maintenance-mode deactivation": it does not touch the Deployment. Activation
  drops the declared 0; server-side apply resets a field no manager owns any more to its default
  (1), a change of the target's replica count, which the HPA docs name as what reactivates it; the
  raised bounds then take it to production scale.
Activation therefore changes the HPA's bounds (and, from pilot light, drops `replicas`), never a
value the HPA owns.

The Ingress answers the public hostname and, through its default backend, any Host header:
Route 53 health checks connect to the load balancer's own name and must reach the health
endpoint too.

The pods run as their own ServiceAccount (named `APP_NAME`): the site binds its cloud identity
to it (EKS Pod Identity on AWS) so the API can read its secrets and files bucket. Its
Kubernetes API token is not mounted: the API never talks to the Kubernetes API, and Pod
Identity credentials come through their own projected token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

APP_NAME = "api"  # Deployment/Service/Ingress name: the runbooks' kubectl commands use it
HTTP_PORT_NAME = "http"


@dataclass
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu_target_percent: int


@dataclass
class ApiServerArgs:
    namespace: str
    image: str
    # The HPA's bounds: production scale, or a standby's (min = max = 1, or 1 with 0 pods).
    autoscaling: Autoscaling
    health_path: str
    # True: 0 pods (pilot light); the Deployment declares replicas 0 and the HPA stands aside.
    pilot_light: bool = False
    port: int = 8080
    hostname: str | None = None
    ingress_class: str = "alb"
    certificate_arn: str | None = None
    # The ingress controller's annotations; None: the AWS Load Balancer Controller's
    # (`ingress_annotations(args)`). Another cluster names its own controller's (e.g. AKS
    # application routing's Key Vault certificate), or none.
    ingress_annotations: dict[str, str] | None = None
    # The TLS secret the controller serves for `hostname` (None: the ALB finds its ACM
    # certificate by host; ingress-nginx then serves its default certificate).
    tls_secret_name: str | None = None
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "512Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "512Mi"})
    labels: dict[str, str] = field(default_factory=dict)
    # Plain environment variables of the API container (names of endpoints, buckets, secret
    # ARNs: never a secret value, the pod spec is readable by anyone who can list Deployments).
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # EKS security groups for pods: the groups the API pods carry (the data tier's client group
    # and the cluster security group). Empty: the pods have their node's groups.
    pod_security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)


def security_group_policy(
    name: str, namespace: str, match_labels: dict[str, str], group_ids: list[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """EKS security groups for pods (the VPC CNI's SecurityGroupPolicy, vpcresources.k8s.aws/v1beta1):
    the selected pods get these groups on their own network interface, so the data tier's
    security groups admit exactly them and not every pod of the node."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version="vpcresources.k8s.aws/v1beta1",
        kind="SecurityGroupPolicy",
        metadata={"name": match_labels.get("app.kubernetes.io/name", name), "namespace": namespace},
        spec={"podSelector": {"matchLabels": match_labels}, "securityGroups": {"groupIds": group_ids}},
        opts=opts,
    )

def ingress_annotations(args: ApiServerArgs) -> dict[str, str]:
    """AWS Load Balancer Controller: internet-facing ALB, HTTPS only, pod-level targets."""
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internet-facing",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTPS": 443}]),
        "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "alb.ingress.kubernetes.io/healthcheck-path": args.health_path,
        "alb.ingress.kubernetes.io/backend-protocol": "HTTP",
    }
    if args.certificate_arn:
        annotations["alb.ingress.kubernetes.io/certificate-arn"] = args.certificate_arn
    return annotations


class ApiServer(pulumi.ComponentResource):
    """`postoucancer:k8s:ApiServer`."""

    service_account: k8s.core.v1.ServiceAccount
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    ingress: k8s.networking.v1.Ingress
    pdb: k8s.policy.v1.PodDisruptionBudget
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler
    endpoint: pulumi.Output[str]

    def __init__(self, name: str, args: ApiServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:k8s:ApiServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/part-of": "postoucancer", **args.labels}
        selector = {"app.kubernetes.io/name": APP_NAME}
        meta = {"name": APP_NAME, "namespace": args.namespace, "labels": labels}
        probe = {"httpGet": {"path": args.health_path, "port": HTTP_PORT_NAME}, "periodSeconds": 10}

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta,
            automount_service_account_token=False,
            opts=child,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta,
            spec={
                # The HPA owns spec.replicas; only a pilot light declares its 0 (see the module doc).
                **({"replicas": 0} if args.pilot_light else {}),
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": APP_NAME,
                        "automountServiceAccountToken": False,
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "topology.kubernetes.io/zone",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ],
                        "containers": [
                            {
                                "name": APP_NAME,
                                "image": args.image,
                                "ports": [{"name": HTTP_PORT_NAME, "containerPort": args.port}],
                                "resources": {"requests": args.requests, "limits": args.limits},
                                **(
                                    {"env": [{"name": k, "value": v} for k, v in sorted(args.environment.items())]}
                                    if args.environment
                                    else {}
                                ),
                                "readinessProbe": probe,
                                "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 3},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                # The root filesystem is read-only: scratch space only here.
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_account]),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta,
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": HTTP_PORT_NAME, "port": 80, "targetPort": HTTP_PORT_NAME}],
            },
            opts=child,
        )
        backend = {"service": {"name": APP_NAME, "port": {"name": HTTP_PORT_NAME}}}
        rules = []
        tls = []
        if args.hostname:
            rules.append(
                {
                    "host": args.hostname,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            )
            # The ALB controller finds the ACM certificate by host; others read the named secret.
            secret = {"secretName": args.tls_secret_name} if args.tls_secret_name else {}
            tls.append({"hosts": [args.hostname], **secret})
        self.ingress = k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata={
                **meta,
                "annotations": (
                    ingress_annotations(args) if args.ingress_annotations is None else args.ingress_annotations
                ),
            },
            spec={
                "ingressClassName": args.ingress_class,
                "defaultBackend": backend,
                "rules": rules,
                "tls": tls,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service]),
        )
        # maxUnavailable (not minAvailable): a 0- or 1-pod standby must never block node drains.
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta,
            spec={"maxUnavailable": 1, "selector": {"matchLabels": selector}},
            opts=child,
        )
        a = args.autoscaling
        if not 1 <= a.min_replicas <= a.max_replicas:
            raise ValueError(f"{name}: an HPA needs 1 <= minReplicas <= maxReplicas, not {a}")
        # The HPA always exists: it is what scales the site, standby or serving.
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta,
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP_NAME},
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": a.cpu_target_percent},
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.security_group_policy = None
        if args.pod_security_group_ids:
            self.security_group_policy = security_group_policy(
                f"{name}-pod-security-groups", args.namespace, selector, args.pod_security_group_ids,
                pulumi.ResourceOptions(parent=self, depends_on=[self.service_account]),
            )
        # The load balancer's DNS name (ALB) or address (a cloud load balancer with a public IP,
        # as ingress-nginx on AKS), once the controller has provisioned it.
        self.endpoint = self.ingress.status.apply(_lb_hostname)
        self.register_outputs({"endpoint": self.endpoint, "minReplicas": a.min_replicas})


def _lb_hostname(status) -> str:
    entries = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    for entry in entries:
        if entry.hostname:
            return entry.hostname
    for entry in entries:
        if entry.ip:
            return entry.ip
    raise ValueError("the Ingress has no load-balancer hostname or address: is the ingress controller installed?")
