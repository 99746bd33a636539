"""The backup and verify functions on Azure as scheduled Azure Container Apps Jobs (azure-native
`app`, API 2025-02-02-preview, the SDK's default for the module): the same image and the same
entry point as everywhere (`python -m lambdas.azure_job backup|verify`, lambdas/azure_job.py).

Container Apps Jobs rather than an Azure Functions timer: the image already is the runtime
(pg_dump, pg_restore, zstd, the core) and a job runs it unchanged, to completion, with a
replica timeout and a retry limit, like the Kubernetes CronJobs; a Functions timer would need the
Functions host in the image and caps a run's duration (Consumption: 10 minutes), too short for
a dump or a restore test of a growing database. The exit status (0 done, 1 failed, 2 invalid)
marks the execution succeeded or failed, which the failed-executions alert watches.

- Schedules are the plan's (drplan.schedules via drplan.handover.BackupPolicy): the daily backup
  at the slot, the weekly restore test after the weekly backup; Container Apps evaluates cron in
  UTC. A standby site (`active=False`) keeps both jobs with a manual trigger: nothing runs until
  activation switches them to their schedules, and an operator can still start one by hand.
- The environment is internal to the site's network (`infrastructure_subnet_id`), zone
  redundant, its console logs go to Azure Monitor (a diagnostic setting sends them to the
  site's workspace: no workspace key in the environment's configuration).
- Identity: one user-assigned identity; a custom role grants exactly the blob data actions the
  adapter uses (lambdas/README.md, Azure Blob Storage): read, write, add, index tags read/write,
  container read, and setting (never deleting: a Locked policy cannot be deleted or shortened)
  the version-level immutability policy. No built-in role fits: *Storage Blob Data Contributor*
  also grants `blobs/delete` and lacks the immutability-policy action; *Reader* cannot write.
- Every failed execution raises a metric alert (`Executions` with `state` Failed, the job's
  metric in "Supported metrics for Microsoft.App/jobs").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pulumi
import pulumi_azure_native as azure_native

from drplan.handover import ENV_VAR as POLICY_ENV
from drplan.handover import BackupPolicy
from drplan.schedules import Schedules, WeeklyTime

from . import _rbac

JOBS = ("backup", "verify")
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers"
# What lambdas/adapters/azure_blob.py calls (lambdas/README.md, "Azure Blob Storage").
WRITER_ACTIONS = [f"{BLOB}/read"]
WRITER_DATA_ACTIONS = [
    f"{BLOB}/blobs/read",
    f"{BLOB}/blobs/write",
    f"{BLOB}/blobs/add/action",
    f"{BLOB}/blobs/tags/read",
    f"{BLOB}/blobs/tags/write",
    # Set Blob Immutability Policy (Locked mode: the service refuses to shorten or delete it).
    f"{BLOB}/blobs/immutableStorage/runAsSuperUser/action",
]
# Never granted: what would let a compromised job destroy backups.
FORBIDDEN_DATA_ACTIONS = (f"{BLOB}/blobs/delete", f"{BLOB}/blobs/deleteBlobVersion/action",
                          f"{BLOB}/blobs/permanentDelete/action", f"{BLOB}/blobs/move/action")
EXECUTIONS_METRIC = ("Microsoft.App/jobs", "Executions")
_ROLE_NAMESPACE = uuid.UUID("6f1e8a52-7d3c-4c7e-9a57-7b1a4a0d2c11")


def _cron_at(w: WeeklyTime | None, hour: int, minute: int) -> str:
    # Cron numbers days from Sunday (0); date.weekday() from Monday (0).
    dow = "*" if w is None else str((w.weekday + 1) % 7)
    return f"{minute} {hour} * * {dow}"


def schedules_for(s: Schedules) -> dict[str, str]:
    t, test = s.full_backup_at_utc, s.weekly_restore_test
    return {"backup": _cron_at(None, t.hour, t.minute), "verify": _cron_at(test, test.at.hour, test.at.minute)}


@dataclass
class JobIdentity:
    id: pulumi.Input[str]
    client_id: pulumi.Input[str]
    principal_id: pulumi.Input[str]


@dataclass
class BackupStore:
    storage_account_id: pulumi.Input[str]
    account_url: pulumi.Input[str]  # https://<account>.blob.core.windows.net
    container: str  # the backup container (version-level immutability)
    encryption_scope: str = "account"  # BACKUP_KMS_KEY_ID: a scope name, or the account's own key


@dataclass
class BackupJobsArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subscription_id: str
    infrastructure_subnet_id: pulumi.Input[str]
    image: pulumi.Input[str]
    registry_server: pulumi.Input[str]
    identity: JobIdentity  # needs AcrPull on the registry and Key Vault Secrets User for the DSN
    store: BackupStore
    database: str
    db_dsn_secret_url: pulumi.Input[str]  # a Key Vault secret (versionless URL)
    backup_policy: BackupPolicy  # the stack's effective numbers (drplan.handover)
    active: bool = True  # False on a standby DR site: manual trigger only
    action_group_id: pulumi.Input[str] | None = None
    deadline: timedelta = timedelta(hours=2)  # one attempt's replica timeout
    retry_limit: int = 2
    cpu: float = 1.0
    memory: str = "2Gi"
    environment: dict[str, dict[str, pulumi.Input[str]]] = field(default_factory=dict)  # job -> extra env
    tags: dict[str, str] = field(default_factory=dict)


class BackupJobs(pulumi.ComponentResource):
    """`postoucancer:azure:BackupJobs`."""

    environment: azure_native.app.ManagedEnvironment
    jobs: dict[str, azure_native.app.Job]

    def __init__(self, name: str, args: BackupJobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:BackupJobs", name, None, opts)
        if args.retry_limit < 0 or args.deadline <= timedelta(0):
            raise ValueError("retry_limit / deadline: a non-negative retry count and a positive deadline")
        child = pulumi.ResourceOptions(parent=self)
        self.environment = azure_native.app.ManagedEnvironment(
            f"{name}-env",
            resource_group_name=args.resource_group_name,
            location=args.location,
            vnet_configuration={"infrastructure_subnet_id": args.infrastructure_subnet_id, "internal": True},
            zone_redundant=True,
            public_network_access="Disabled",
            app_logs_configuration={"destination": "azure-monitor"},
            workload_profiles=[{"name": "Consumption", "workload_profile_type": "Consumption"}],
            tags=args.tags,
            opts=child,
        )
        self.role = self._writer_role(name, args)
        container_scope = pulumi.Output.format("{0}/blobServices/default/containers/{1}",
                                               args.store.storage_account_id, args.store.container)
        self.access = _rbac.assign(
            f"{name}-backup-writer", principal_id=args.identity.principal_id,
            role_definition_id=self.role.id, scope=container_scope,
            description="backup/verify jobs: write and read backups, never delete", parent=self,
        )
        self.jobs = {}
        self.alerts: dict[str, azure_native.monitor.MetricAlert] = {}
        crons = schedules_for(args.backup_policy.schedules)
        for job in JOBS:
            self.jobs[job] = self._job(name, job, crons[job], args)
            self.alerts[job] = self._failed_alert(name, job, args)
        self.register_outputs({"jobs": {k: j.id for k, j in self.jobs.items()}})

    def _writer_role(self, name: str, args: BackupJobsArgs) -> azure_native.authorization.RoleDefinition:
        subscription = f"/subscriptions/{args.subscription_id}"
        return azure_native.authorization.RoleDefinition(
            f"{name}-backup-writer",
            # A GUID stable per stack and component: the role is found again, never duplicated.
            role_definition_id=str(uuid.uuid5(_ROLE_NAMESPACE, f"{args.subscription_id}/{name}/backup-writer")),
            role_name=f"postoucancer backup writer ({name})",
            description="Write and read backup blobs, set their immutability; no delete of any kind",
            role_type="CustomRole",
            scope=subscription,
            assignable_scopes=[args.store.storage_account_id],
            permissions=[{"actions": WRITER_ACTIONS, "data_actions": WRITER_DATA_ACTIONS,
                          "not_actions": [], "not_data_actions": list(FORBIDDEN_DATA_ACTIONS)}],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _job(self, name: str, job: str, cron: str, args: BackupJobsArgs) -> azure_native.app.Job:
        policy = args.backup_policy
        env: dict[str, pulumi.Input[str]] = {
            "JOB_OPERATION": job,
            "BACKUP_STORE": "azure",
            "AZURE_STORAGE_ACCOUNT_URL": args.store.account_url,
            "AZURE_CLIENT_ID": args.identity.client_id,
            "BACKUP_BUCKET": args.store.container,
            "BACKUP_KMS_KEY_ID": args.store.encryption_scope,
            "BACKUP_DATABASE": args.database,
            "BACKUP_TIER": policy.tier.value,
            POLICY_ENV: policy.to_json(),
            **args.environment.get(job, {}),
        }
        trigger = (
            {"trigger_type": "Schedule",
             "schedule_trigger_config": {"cron_expression": cron, "parallelism": 1, "replica_completion_count": 1}}
            if args.active
            else {"trigger_type": "Manual", "manual_trigger_config": {"parallelism": 1, "replica_completion_count": 1}}
        )
        return azure_native.app.Job(
            f"{name}-{job}",
            resource_group_name=args.resource_group_name,
            location=args.location,
            environment_id=self.environment.id,
            workload_profile_name="Consumption",
            identity={"type": "UserAssigned", "user_assigned_identities": [args.identity.id]},
            configuration={
                **trigger,
                "replica_timeout": int(args.deadline.total_seconds()),
                "replica_retry_limit": args.retry_limit,
                "registries": [{"server": args.registry_server, "identity": args.identity.id}],
                "secrets": [{"name": "db-dsn", "key_vault_url": args.db_dsn_secret_url, "identity": args.identity.id}],
            },
            template={
                "containers": [
                    {
                        "name": job,
                        "image": args.image,
                        "args": ["lambdas.azure_job", job],
                        "env": [{"name": k, "value": v} for k, v in sorted(env.items())]
                        + [{"name": "DB_DSN", "secret_ref": "db-dsn"}],
                        "resources": {"cpu": args.cpu, "memory": args.memory},
                    }
                ]
            },
            tags={**args.tags, "job": job},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.access]),
        )

    def _failed_alert(self, name: str, job: str, args: BackupJobsArgs) -> azure_native.monitor.MetricAlert:
        namespace, metric = EXECUTIONS_METRIC
        return azure_native.monitor.MetricAlert(
            f"{name}-{job}-failed",
            resource_group_name=args.resource_group_name,
            location="global",
            description=f"a {job} job execution failed (exit status 1 or 2)",
            severity=1,
            enabled=True,
            scopes=[self.jobs[job].id],
            evaluation_frequency="PT5M",
            window_size="PT1H",
            auto_mitigate=False,
            # A union-typed input: the typed Args class, or the SDK sends the dict's keys untranslated.
            criteria=azure_native.monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    azure_native.monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name="failed-executions",
                        metric_namespace=namespace,
                        metric_name=metric,
                        dimensions=[azure_native.monitor.MetricDimensionArgs(name="state", operator="Include",
                                                                             values=["Failed"])],
                        operator="GreaterThan",
                        threshold=0,
                        time_aggregation="Total",
                    )
                ],
            ),
            actions=[{"action_group_id": args.action_group_id}] if args.action_group_id is not None else [],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
