"""The backup/verify image as Azure Container Apps Jobs (components/azure/container_jobs.py).

Sources: lambdas/azure_job.py and lambdas/README.md (the entry point, its environment, the blob
data actions the adapter uses); "Azure permissions for Storage" (data actions, e.g. Set Blob
Immutability Policy = blobs/immutableStorage/runAsSuperUser/action); "Supported metrics for
Microsoft.App/jobs" (`Executions`, dimension `state`).
"""

from __future__ import annotations

import json

import pytest

from components.azure.container_jobs import (
    FORBIDDEN_DATA_ACTIONS,
    BackupJobs,
    BackupJobsArgs,
    BackupStore,
    JobIdentity,
    schedules_for,
)
from drplan.handover import BackupPolicy
from drplan.periods import weeks
from drplan.retention import Tier, effective_retention
from drplan.schedules import SCHEDULES
from lambdas.azure_job import OPERATIONS

from .harness import SUBSCRIPTION, arm_id, run

JOB = "azure-native:app:Job"
ROLE = "azure-native:authorization:RoleDefinition"
STORAGE_ID = arm_id("Microsoft.Storage/storageAccounts", "stbackups")
POLICY = BackupPolicy(Tier.PROD, effective_retention(Tier.PROD, {"weekly": weeks(16)}))


def jobs_args(**over) -> BackupJobsArgs:
    base = dict(resource_group_name="rg-data", location="francecentral", subscription_id=SUBSCRIPTION,
                infrastructure_subnet_id="subnet-jobs", image="acr.example.io/backup@sha256:abc",
                registry_server="acr.example.io", identity=JobIdentity("id-jobs", "client-jobs", "principal-jobs"),
                store=BackupStore(STORAGE_ID, "https://stbackups.blob.core.windows.net", "postgres-backups"),
                database="postoucancer", db_dsn_secret_url="https://kv.vault.azure.net/secrets/db-dsn",
                backup_policy=POLICY, action_group_id="ag-1")
    return BackupJobsArgs(**{**base, **over})


@pytest.fixture(scope="module")
def stack():
    def program():
        BackupJobs("prod-fn", jobs_args())
        BackupJobs("dr-fn", jobs_args(active=False))

    return run(program)


def _env(job) -> dict:
    container = job.inputs["template"]["containers"][0]
    return {e["name"]: e.get("value", e.get("secretRef")) for e in container["env"]}


def test_jobs_run_the_image_entry_point_with_the_environment_it_expects(stack):
    """`python -m lambdas.azure_job <operation>`; BACKUP_STORE azure with the account URL and the
    user-assigned identity's client id (DefaultAzureCredential), the container as the bucket, and
    the stack's effective plan in BACKUP_POLICY (a retention override reaches the lock date)."""
    for op in ("backup", "verify"):
        job = stack.one(JOB, f"prod-fn-{op}")
        container = job.inputs["template"]["containers"][0]
        assert container["args"] == ["lambdas.azure_job", op] and op in OPERATIONS
        env = _env(job)
        assert env["JOB_OPERATION"] == op and env["BACKUP_STORE"] == "azure"
        assert env["AZURE_STORAGE_ACCOUNT_URL"] == "https://stbackups.blob.core.windows.net"
        assert env["AZURE_CLIENT_ID"] == "client-jobs" and env["BACKUP_BUCKET"] == "postgres-backups"
        assert BackupPolicy.from_json(env["BACKUP_POLICY"]) == POLICY
        assert json.loads(env["BACKUP_POLICY"])["retention"]["weekly"] == "16w"
        assert env["DB_DSN"] == "db-dsn"  # a secret reference, never a value
        secret = job.inputs["configuration"]["secrets"][0]
        assert secret["keyVaultUrl"].endswith("/secrets/db-dsn") and secret["identity"] == "id-jobs"


def test_schedules_are_the_plans_and_a_standby_site_runs_nothing_until_activation(stack):
    crons = schedules_for(SCHEDULES)
    assert crons == {"backup": "0 2 * * *", "verify": "0 6 * * 0"}  # 02:00 daily; Sunday 06:00 (cron: 0 = Sunday)
    prod = stack.one(JOB, "prod-fn-backup").inputs["configuration"]
    assert prod["triggerType"] == "Schedule" and prod["scheduleTriggerConfig"]["cronExpression"] == crons["backup"]
    assert prod["replicaTimeout"] == 7200 and prod["replicaRetryLimit"] == 2
    dr = stack.one(JOB, "dr-fn-backup").inputs["configuration"]
    assert dr["triggerType"] == "Manual" and "scheduleTriggerConfig" not in dr


def test_the_identity_can_write_and_read_backups_but_never_delete(stack):
    """A custom role with the adapter's data actions; Storage Blob Data Contributor would add
    blobs/delete (and lacks the immutability-policy action), so no built-in role is used."""
    role = stack.one(ROLE, "prod-fn-backup-writer").inputs
    perms = role["permissions"][0]
    granted = set(perms["dataActions"])
    assert not granted & set(FORBIDDEN_DATA_ACTIONS)
    assert not any(a.endswith("/delete") or "*" in a for a in granted | set(perms["actions"]))
    assert {a.rsplit("containers/", 1)[-1] for a in granted} == {
        "blobs/read", "blobs/write", "blobs/add/action", "blobs/tags/read", "blobs/tags/write",
        "blobs/immutableStorage/runAsSuperUser/action"}
    assert set(perms["notDataActions"]) == set(FORBIDDEN_DATA_ACTIONS)
    assert role["assignableScopes"] == [STORAGE_ID]
    assert role["roleType"] == "CustomRole"
    grant = stack.one("azure-native:authorization:RoleAssignment", "prod-fn-backup-writer").inputs
    assert grant["scope"] == f"{STORAGE_ID}/blobServices/default/containers/postgres-backups"
    assert grant["principalId"] == "principal-jobs" and grant["principalType"] == "ServicePrincipal"


def test_every_failed_execution_alerts(stack):
    for op in ("backup", "verify"):
        alert = stack.one("azure-native:monitor:MetricAlert", f"prod-fn-{op}-failed").inputs
        criterion = alert["criteria"]["allOf"][0]
        assert (criterion["metricNamespace"], criterion["metricName"]) == ("Microsoft.App/jobs", "Executions")
        assert criterion["dimensions"] == [{"name": "state", "operator": "Include", "values": ["Failed"]}]
        assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
        assert alert["scopes"] == [stack.one(JOB, f"prod-fn-{op}").id]
        assert alert["actions"] == [{"actionGroupId": "ag-1"}]


def test_environment_is_internal_and_logs_to_azure_monitor(stack):
    env = stack.one("azure-native:app:ManagedEnvironment", "prod-fn-env").inputs
    assert env["vnetConfiguration"] == {"infrastructureSubnetId": "subnet-jobs", "internal": True}
    assert env["appLogsConfiguration"] == {"destination": "azure-monitor"}  # no workspace key in config
    assert env["zoneRedundant"] is True and env["publicNetworkAccess"] == "Disabled"
