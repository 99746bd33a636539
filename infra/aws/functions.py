"""The backup functions of a site: their bucket, their image, and where they run.

- A dedicated backup bucket per site (ReplicatedBucket with Object Lock: COMPLIANCE where the
  tier is locked, GOVERNANCE otherwise; default retention = the shortest GFS generation, the
  function locks each object for its own generation; lifecycle expiry per `gfs-class` tag).
  The prod site replicates it into the DR site's bucket (bootstrap: dr, prod, dr).
- The image: this site's ECR repository, and the image built from lambdas/Dockerfile and
  pushed into it by the same deployment (pulumi-docker-build); the functions take it by digest.
  Each site pushes its own copy, so the DR site has its image with the primary region gone.
- The functions: Lambda + EventBridge Scheduler (`functions.runner: lambda`, default) or
  Kubernetes CronJobs on the site's cluster (`functions.runner: kubernetes`). On a DR site
  that is not activated they are deployed but their schedules are off: the replica is
  read-only and prod's backups replicate here anyway; activation turns them on.

A Lambda function cannot be created before its image exists: the function's image URI is the
pushed image's digest, so the engine creates it only after the push. `pulumi up` therefore needs
a Docker daemon (BuildKit) where it runs; a preview does not (build_on_preview is off). Set
`functions.image` to an image that already exists in this region's registry to skip the build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.aws.backup_functions import BackupFunctions, BackupFunctionsArgs
from components.aws.kms import CustomerKey
from components.aws.network import SiteNetwork
from components.aws.replicated_bucket import AccessLogBucket, ReplicatedBucket
from drplan import layout
from drplan.handover import ENV_VAR as POLICY_ENV
from infra.aws.buckets import site_bucket
from infra.aws.data import DataTier, database_secret
from infra.site import Site

if TYPE_CHECKING:
    from components.k8s.backup_cronjobs import BackupCronJobs
    from infra.aws.app import App

REPOSITORY = "postoucancer/{stack}/backup-functions"
PREFIX = "postgres"


def _repository(site: Site) -> tuple[aws.ecr.Repository, pulumi.Output[str]]:
    """This site's repository and the image the functions run, pushed by this same deployment.

    The image is built from lambdas/Dockerfile and pushed into this region's repository by
    pulumi-docker-build; the functions take it by digest, so no run creates a function from an
    image that does not exist yet, and each site has its own copy (ECR replication only copies
    images pushed after its rule exists, ECR user guide "Private image replication": a DR image
    pushed before the rule never arrives). `functions.image` names an existing image instead.
    """
    cfg = site.cfg
    name = REPOSITORY.format(stack=site.stack)
    repo = aws.ecr.Repository(
        site.name("backup-functions"),
        region=site.region,
        name=name,
        image_tag_mutability="IMMUTABLE",  # a tag names one image forever (what ran is what was tested)
        image_scanning_configuration={"scan_on_push": True},
        encryption_configurations=[{"encryption_type": "KMS"}],
        force_delete=False,
    )
    if cfg.functions.image:
        return repo, pulumi.Output.from_input(cfg.functions.image)
    import pulumi_docker_build as docker_build  # only stacks that build their image load it

    auth = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id, region=site.region)
    image = docker_build.Image(
        site.name("backup-functions-image"),
        # Relative to the project directory (where Pulumi.yaml is, the program's working directory):
        # the recorded inputs, and so the image's diff, do not depend on where the checkout lives.
        context={"location": "."},
        dockerfile={"location": "lambdas/Dockerfile"},
        platforms=["linux/amd64"],  # Lambda's default x86_64 architecture
        push=True,
        # A preview (and the policy pack's) needs no Docker daemon; `pulumi up` builds and pushes.
        build_on_preview=False,
        tags=[pulumi.Output.concat(repo.repository_url, ":", cfg.functions.image_tag)],
        registries=[{"address": repo.repository_url, "username": auth.user_name, "password": auth.password}],
    )
    return repo, pulumi.Output.concat(repo.repository_url, "@", image.digest)


@dataclass(frozen=True)
class Functions:
    bucket: ReplicatedBucket  # the dumps (Object Lock, GFS expiry by tag)
    key: CustomerKey
    repository: aws.ecr.Repository
    # The runner in use: Lambda functions, or CronJobs on the site's cluster.
    lambdas: BackupFunctions | None = None
    cronjobs: BackupCronJobs | None = None
    # The functions' image in this region (the plan's testing tasks run it too: infra/aws/drills.py).
    image: pulumi.Input[str] | None = None


def _bucket(site: Site, access_logs: AccessLogBucket) -> tuple[ReplicatedBucket, CustomerKey]:
    cfg = site.cfg
    retention = cfg.retention_policy
    return site_bucket(
        site,
        "pg-backups",
        access_logs,
        what="PostgreSQL dumps",
        peer_outputs=("backupBucketArn", "backupBucketKmsKeyArn"),
        purpose="database-backups",
        object_lock=True,
        lock_mode="COMPLIANCE" if cfg.locked else "GOVERNANCE",
        lock_period=retention.shortest,
        expire_by_tag=layout.GFS_TAG_KEY,
        # Verification records are evidence of restore tests: kept as long as the backups.
        expire_prefixes={f"{PREFIX}/{cfg.database.name}/{layout.VERIFY_DIR}/": retention.longest},
    )


def build(site: Site, network: SiteNetwork, data: DataTier, access_logs: AccessLogBucket, app: App) -> Functions:
    cfg = site.cfg
    bucket, key = _bucket(site, access_logs)
    site.export("backupBucketArn", bucket.arn)
    site.export("backupBucketName", bucket.bucket.bucket)
    site.export("backupBucketKmsKeyArn", key.arn)
    repo, image = _repository(site)

    secret_arn, secret_key_arn = database_secret(site, data)
    enabled = site.is_primary or cfg.activated
    info = {
        "runner": cfg.functions.runner,
        "schedulesEnabled": enabled,
        "backupBucketReplicatedTo": cfg.peer_region if bucket.replication is not None else None,
        "image": image,
    }
    if cfg.functions.runner == "kubernetes":
        jobs = _cronjobs(site, app, network, data, bucket, key, image, secret_arn, secret_key_arn, enabled)
        site.export("backupFunctions", info)
        return Functions(bucket, key, repo, cronjobs=jobs, image=image)
    functions = BackupFunctions(
        site.name("pg"),
        BackupFunctionsArgs(
            region=site.region,
            image_uri=image,
            bucket_arn=bucket.arn,
            bucket_name=bucket.bucket.bucket,
            kms_key_arn=key.arn,
            database=cfg.database.name,
            policy=cfg.backup_policy,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.functions_sg.id],
            log_retention=cfg.retention_policy.audit_logs,
            db_secret_arn=secret_arn,
            db_secret_kms_key_arn=secret_key_arn,
            db_host=data.host,
            verify_secret_arn=cfg.functions.verify_secret_arn,
            verify_secret_kms_key_arn=cfg.functions.verify_secret_kms_key_arn,
            prefix=PREFIX,
            object_lock=True,
            enabled=enabled,
            timeout=cfg.functions.timeout,
            memory_mb=cfg.functions.memory_mb,
            name_prefix=f"postoucancer-{site.stack}-pg",
        ),
        opts=pulumi.ResourceOptions(depends_on=[repo]),
    )
    site.export(
        "backupFunctions",
        {
            **info,
            "deployed": True,
            "functions": {k: f.name for k, f in functions.functions.items()},
            "schedules": {k: s.schedule_expression for k, s in functions.schedules.items()},
            "deadLetterQueue": functions.dlq.arn,
        },
    )
    return Functions(bucket, key, repo, lambdas=functions, image=image)


def pod_identity_trust_policy() -> pulumi.Output[str]:
    """Trust policy of a role assumed by pods through EKS Pod Identity, from this account only."""
    return aws.get_caller_identity_output().account_id.apply(
        lambda a: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "pods.eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Condition": {"StringEquals": {"aws:SourceAccount": a}},
                    }
                ],
            }
        )
    )


def _cronjobs(
    site: Site, app: App, network: SiteNetwork, data: DataTier, bucket, key, image, secret_arn, secret_key_arn,
    enabled: bool,
) -> BackupCronJobs:
    """`functions.runner: kubernetes`: CronJobs on this site's cluster, with the functions'
    permissions bound to their ServiceAccount through EKS Pod Identity."""
    from components.aws.backup_functions import backup_policy, verify_policy
    from components.k8s.backup_cronjobs import BackupCronJobs, BackupCronJobsArgs
    from infra.aws.app import pod_security_groups

    cfg = site.cfg
    common = {
        "BACKUP_DATABASE": cfg.database.name,
        "BACKUP_BUCKET": bucket.bucket.bucket,
        "BACKUP_PREFIX": PREFIX,
        "BACKUP_TIER": cfg.tier.value,
        "AWS_REGION": site.region,
    }
    if secret_arn is not None:
        common["DB_SECRET_ARN"] = secret_arn
        if (host := data.host) is not None:
            common["PGHOST"] = host
    jobs = BackupCronJobs(
        site.name("pg-cron"),
        BackupCronJobsArgs(
            namespace=cfg.app.namespace,
            image=image,
            environment={
                "backup": {
                    **common,
                    "BACKUP_KMS_KEY_ID": key.arn,
                    "BACKUP_OBJECT_LOCK": "on",
                    POLICY_ENV: cfg.backup_policy.to_json(),
                },
                "verify": {**common, "VERIFY_RECORD": "true"},
            },
            deadline=cfg.functions.timeout,
            suspend=not enabled,
            labels={"postoucancer.example/site": cfg.role.value},
            pod_security_group_ids=pod_security_groups(site, network.functions_sg),
        ),
        opts=pulumi.ResourceOptions(
            providers={"kubernetes": app.provider},
            depends_on=[app.namespace],
        ),
    )
    role = aws.iam.Role(
        site.name("pg-cron"),
        description="Post Ou Cancer backup/verify CronJobs (EKS Pod Identity): writes, never deletes, backups",
        assume_role_policy=pod_identity_trust_policy(),
    )
    for what, fn in (("backup", backup_policy), ("verify", verify_policy)):
        aws.iam.RolePolicy(
            site.name(f"pg-cron-{what}"),
            role=role.id,
            policy=pulumi.Output.all(bucket.arn, key.arn, secret_arn, secret_key_arn).apply(
                lambda a, f=fn: f(a[0], PREFIX, cfg.database.name, a[1], None, None, a[2], a[3])
            ),
        )
    if cfg.functions.eks_cluster_name:
        aws.eks.PodIdentityAssociation(
            site.name("pg-cron"),
            region=site.region,
            cluster_name=cfg.functions.eks_cluster_name,
            namespace=cfg.app.namespace,
            service_account=jobs.service_account_name,
            role_arn=role.arn,
        )
    else:
        pulumi.log.warn(
            "functions.runner is kubernetes but functions.eksClusterName is unset: the CronJobs' "
            "ServiceAccount gets no AWS role; fix: pulumi config set --path functions.eksClusterName <cluster>"
        )
    return jobs
