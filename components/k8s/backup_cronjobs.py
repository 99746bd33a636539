"""The backup and verify functions as Kubernetes CronJobs: the same image and the same
configuration (environment variables, lambdas/README.md) as the Lambda functions.

- `concurrencyPolicy: Forbid`: a slot never runs twice at once (the core is idempotent per
  slot anyway: the second run would find the manifest and skip);
- `activeDeadlineSeconds` and `backoffLimit`: a hung pg_dump is killed and retried a bounded
  number of times, within the slot's overdue window;
- resource requests and limits (pg_dump + zstd threads; the core streams, memory is bounded);
- a dedicated ServiceAccount: the cloud identity (EKS Pod Identity on AWS, workload identity
  elsewhere) binds the functions' role to it, never to the node;
- restricted pod security: non-root (the image's user 10001), read-only root filesystem, no
  privilege escalation, all capabilities dropped; `/tmp` is an emptyDir.

Schedules are the model's, rendered by components/k8s/cron.py, in UTC
(`timeZone: Etc/UTC`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_kubernetes as k8s

from drplan.schedules import SCHEDULES, Schedules

from . import cron
from .api import security_group_policy

IMAGE_USER = 10001  # lambdas/Dockerfile: USER 10001:10001
COMMANDS = {"backup": ["lambdas", "backup"], "verify": ["lambdas", "verify"]}


@dataclass
class BackupCronJobsArgs:
    namespace: pulumi.Input[str]
    image: pulumi.Input[str]
    environment: dict[str, dict[str, pulumi.Input[str]]]  # job ("backup"/"verify") -> env vars
    deadline: timedelta  # activeDeadlineSeconds of one attempt
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    schedules: Schedules = SCHEDULES
    suspend: bool = False  # a standby DR site: suspended until activation
    backoff_limit: int = 2
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "512Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "1Gi"})
    labels: dict[str, str] = field(default_factory=dict)
    # EKS security groups for pods: the functions' client group (and the cluster's) on the job pods.
    pod_security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)


class BackupCronJobs(pulumi.ComponentResource):
    """`postoucancer:k8s:BackupCronJobs`."""

    service_account: k8s.core.v1.ServiceAccount
    cronjobs: dict[str, k8s.batch.v1.CronJob]

    def __init__(self, name: str, args: BackupCronJobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:k8s:BackupCronJobs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": "backup-functions", "app.kubernetes.io/part-of": "postoucancer"}
        labels.update(args.labels)
        self.service_account_name = f"{name}-functions"
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-functions",
            metadata={
                "name": self.service_account_name,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": args.service_account_annotations,
            },
            # The pods call AWS only through the workload identity, never a mounted token of the API.
            automount_service_account_token=False,
            opts=child,
        )
        schedules = {
            "backup": cron.daily(args.schedules),
            "verify": cron.restore_test(args.schedules),
        }
        deadline = int(args.deadline.total_seconds())
        self.cronjobs = {}
        for job, schedule in schedules.items():
            env = [{"name": k, "value": v} for k, v in sorted(args.environment.get(job, {}).items())]
            self.cronjobs[job] = k8s.batch.v1.CronJob(
                f"{name}-{job}",
                metadata={"name": f"postgres-{job}", "namespace": args.namespace, "labels": labels},
                spec={
                    "schedule": schedule,
                    "time_zone": "Etc/UTC",
                    "concurrency_policy": "Forbid",
                    "suspend": args.suspend,
                    # A run that could not start within the deadline is skipped (and alarmed as missing).
                    "starting_deadline_seconds": deadline,
                    "successful_jobs_history_limit": 3,
                    "failed_jobs_history_limit": 5,
                    "job_template": {
                        "metadata": {"labels": {**labels, "postoucancer.example/job": job}},
                        "spec": {
                            "backoff_limit": args.backoff_limit,
                            "active_deadline_seconds": deadline * (args.backoff_limit + 1),
                            "template": {
                                "metadata": {"labels": {**labels, "postoucancer.example/job": job}},
                                "spec": {
                                    "service_account_name": self.service_account_name,
                                    # No Kubernetes API token: the Pod Identity webhook projects its own.
                                    "automount_service_account_token": False,
                                    "restart_policy": "Never",
                                    "security_context": {
                                        "run_as_non_root": True,
                                        "run_as_user": IMAGE_USER,
                                        "run_as_group": IMAGE_USER,
                                        "fs_group": IMAGE_USER,
                                        "seccomp_profile": {"type": "RuntimeDefault"},
                                    },
                                    "containers": [
                                        {
                                            "name": job,
                                            "image": args.image,
                                            "args": COMMANDS[job],
                                            "env": env,
                                            "resources": {"requests": args.requests, "limits": args.limits},
                                            "security_context": {
                                                "allow_privilege_escalation": False,
                                                "read_only_root_filesystem": True,
                                                "capabilities": {"drop": ["ALL"]},
                                            },
                                            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],  # noqa: S108 (a private emptyDir)
                                        }
                                    ],
                                    "volumes": [{"name": "tmp", "empty_dir": {}}],
                                },
                            },
                        },
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service_account]),
            )
        self.security_group_policy = None
        if args.pod_security_group_ids:
            self.security_group_policy = security_group_policy(
                f"{name}-pod-security-groups", args.namespace, {"app.kubernetes.io/name": "backup-functions"},
                args.pod_security_group_ids, pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"cronjobs": {k: c.metadata.name for k, c in self.cronjobs.items()}})
