"""The composed Azure concerns on the real stacks (the session's prod-azure / dr-azure runs, no
run of their own): database and its vault, cache, the API on AKS, Traffic Manager, the backup
jobs, monitoring and audit; each a few asserts on what the issue and the plan require.

Sources: components/azure/*.py (each component's documented constraints and their tests in
tests/components/azure); "Networking with private access" for PostgreSQL flexible server (a
subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers, a private DNS zone ending in
.postgres.database.azure.com); "Read replicas" (a replica has no HA and no backups); Azure
Monitor "Diagnostic settings" (a resource's logs go to a storage account of its region).
"""

from __future__ import annotations

from components.azure.container_jobs import FORBIDDEN_DATA_ACTIONS
from components.azure.roles import ACR_PULL, KEY_VAULT_SECRETS_USER, STORAGE_BLOB_DATA_CONTRIBUTOR
from drplan.retention import RETENTION, Tier
from tests.infra.azure.helpers import ACCOUNT, IDENTITY, ROLE, SECRET, one_of_account

PG = "azure-native:dbforpostgresql:Server"
VAULT = "azure-native:dataprotection:BackupVault"
INSTANCE = "azure-native:dataprotection:BackupInstance"
REDIS = "azure-native:redis:Redis"
PROFILE = "azure-native:trafficmanager:Profile"
ENDPOINT = "azure-native:trafficmanager:Endpoint"
JOB = "azure-native:app:Job"
DIAG = "azure-native:monitor:DiagnosticSetting"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def _subnet(run, name):
    vnet = run.one("azure-native:network:VirtualNetwork")
    return next(s for s in vnet.outputs["subnets"] if s["name"] == name)


def _account(run, purpose):
    (found,) = [a for a in run.of_type(ACCOUNT) if a.inputs["tags"]["purpose"] == purpose]
    return found


def test_the_primary_server_is_private_zone_redundant_geo_backed_up_and_protected(prod_azure):
    server = prod_azure.one(PG)
    i = server.inputs
    assert server.protect and i["createMode"] == "Create" and i["location"] == "francecentral"
    assert i["highAvailability"]["mode"] == "ZoneRedundant"
    assert i["backup"] == {"backupRetentionDays": RETENTION[Tier.PROD].wal.days, "geoRedundantBackup": "Enabled"}
    enc = i["dataEncryption"]
    assert enc["type"] == "AzureKeyVault"
    assert enc["primaryUserAssignedIdentityId"] != enc["geoBackupUserAssignedIdentityId"]
    assert "-database-geo" in enc["geoBackupKeyURI"] and "-database-geo" not in enc["primaryKeyURI"]
    subnet = _subnet(prod_azure, "postgres")
    assert i["network"]["delegatedSubnetResourceId"] == subnet["id"]
    assert subnet["delegations"] == [{"name": "postgres", "serviceName": "Microsoft.DBforPostgreSQL/flexibleServers"}]
    zone = prod_azure.one("azure-native:privatedns:PrivateZone", "postgres")
    assert zone.inputs["privateZoneName"].endswith(".postgres.database.azure.com")
    assert i["network"]["privateDnsZoneArmResourceId"] == zone.outputs["id"]
    assert prod_azure.outputs["database"]["id"] == server.outputs["id"]


def test_the_dr_server_is_a_replica_of_the_primary_in_its_own_region(prod_azure, dr_azure):
    replica = dr_azure.one(PG)
    i = replica.inputs
    assert replica.protect and i["createMode"] == "Replica" and i["location"] == "germanywestcentral"
    assert i["sourceServerResourceId"] == prod_azure.one(PG).outputs["id"]
    assert i["highAvailability"] == {"mode": "Disabled"} and "replica" not in i  # promoted on activation only
    assert i["network"]["delegatedSubnetResourceId"] == _subnet(dr_azure, "postgres")["id"]


def test_each_site_has_a_locked_vault_and_only_the_primary_server_is_protected_before_activation(prod_azure, dr_azure):
    for run, region in ((prod_azure, "francecentral"), (dr_azure, "germanywestcentral")):
        vault = run.one(VAULT)
        assert vault.protect and vault.inputs["location"] == region
        assert vault.inputs["properties"]["securitySettings"]["immutabilitySettings"]["state"] == "Locked"
    (instance,) = prod_azure.of_type(INSTANCE)
    assert instance.inputs["properties"]["dataSourceInfo"]["resourceID"] == prod_azure.one(PG).outputs["id"]
    assert dr_azure.of_type(INSTANCE) == []  # a read replica takes no backups


def test_redis_persists_to_an_account_of_its_own_without_soft_delete(prod_azure):
    cache = prod_azure.one(REDIS)
    persistence = _account(prod_azure, "cache-persistence")
    assert cache.inputs["sku"]["name"] == "Premium" and cache.inputs["publicNetworkAccess"] == "Disabled"
    assert persistence.outputs["name"] in str(cache.inputs["redisConfiguration"])
    assert persistence.outputs["name"] != _account(prod_azure, "backups").outputs["name"]
    service = one_of_account(prod_azure, persistence, "azure-native:storage:BlobServiceProperties")
    assert service.inputs["deleteRetentionPolicy"] == {"enabled": False}
    (grant,) = [g for g in prod_azure.of_type(ROLE) if g.inputs["scope"] == persistence.outputs["id"]]
    assert grant.inputs["roleDefinitionId"].endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
    assert grant.inputs["principalId"] == cache.outputs["identity"]["principalId"]


def test_the_api_runs_on_each_sites_aks_at_its_scale_behind_app_routing(prod_azure, dr_azure):
    for run, bounds in ((prod_azure, (3, 12)), (dr_azure, (1, 1))):
        spec = run.one(HPA).inputs["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == bounds
        ingress = run.one(INGRESS)
        assert ingress.inputs["spec"]["ingressClassName"] == "webapprouting.kubernetes.azure.com"
        assert not any(k.startswith("alb.") for k in ingress.inputs["metadata"].get("annotations") or {})
        assert run.outputs["appEndpoint"] == ingress.outputs["status"]["loadBalancer"]["ingress"][0]["ip"]
        env = {e["name"]: e["value"] for e in run.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"][
            "spec"]["containers"][0]["env"]}
        assert env["PGHOST"] == run.one(PG).outputs["fullyQualifiedDomainName"]  # its own site's server
        assert env["REDIS_HOST"] == run.one(REDIS).outputs["hostName"]


def test_traffic_manager_is_owned_by_dr_and_routes_to_both_sites_app_endpoints(prod_azure, dr_azure):
    assert prod_azure.of_type(PROFILE) == []
    profile = dr_azure.one(PROFILE)
    probe = profile.inputs["monitorConfig"]
    assert profile.inputs["trafficRoutingMethod"] == "Priority" and profile.inputs["location"] == "global"
    assert (probe["protocol"], probe["intervalInSeconds"], probe["toleratedNumberOfFailures"]) == ("HTTPS", 10, 3)
    endpoints = {e.name.rsplit("-", 1)[1]: e.inputs for e in dr_azure.of_type(ENDPOINT)}
    assert endpoints["primary"]["target"] == prod_azure.outputs["appEndpoint"]
    assert endpoints["dr"]["target"] == dr_azure.outputs["appEndpoint"]
    assert (endpoints["primary"]["priority"], endpoints["dr"]["priority"]) == (1, 2)
    assert {e["endpointStatus"] for e in endpoints.values()} == {"Enabled"}


def test_the_jobs_identity_pulls_reads_its_dsn_and_writes_backups_but_never_deletes(prod_azure, dr_azure):
    for run in (prod_azure, dr_azure):
        identity = run.one(IDENTITY, "jobs-identity")
        principal = identity.outputs["principalId"]
        grants = {g.inputs["roleDefinitionId"].rsplit("/", 1)[1]: g.inputs for g in run.of_type(ROLE)
                  if g.inputs["principalId"] == principal}
        registry = run.one("azure-native:containerregistry:Registry")
        dsn = run.one(SECRET, "database-dsn")
        assert grants[ACR_PULL]["scope"] == registry.outputs["id"]
        assert grants[KEY_VAULT_SECRETS_USER]["scope"] == dsn.outputs["id"]
        assert STORAGE_BLOB_DATA_CONTRIBUTOR not in grants  # it would grant delete
        role = run.one("azure-native:authorization:RoleDefinition")
        custom = grants[role.outputs["name"]]
        assert custom["scope"].endswith("/blobServices/default/containers/backups")
        assert not set(FORBIDDEN_DATA_ACTIONS) & set(role.inputs["permissions"][0]["dataActions"])
        # The DSN names this site's own server, TLS required; its value is a secret.
        assert run.one(PG).outputs["fullyQualifiedDomainName"] in dsn.inputs["properties"]["value"]
        assert "sslmode=require" in dsn.inputs["properties"]["value"]
        assert any(p.startswith("properties") for p in dsn.secret_inputs)
        for job in run.of_type(JOB):
            container = job.inputs["template"]["containers"][0]
            assert container["image"].startswith(registry.outputs["loginServer"] + "/")
    triggers = {run.stack: {j.inputs["configuration"]["triggerType"] for j in run.of_type(JOB)}
                for run in (prod_azure, dr_azure)}
    assert triggers == {"prod-azure": {"Schedule"}, "dr-azure": {"Manual"}}  # a standby runs nothing


def test_every_data_resource_has_diagnostics_and_blob_audit_logs_reach_the_locked_archive(prod_azure, dr_azure):
    for run in (prod_azure, dr_azure):
        targets = {d.inputs["resourceUri"]: d.inputs for d in run.of_type(DIAG)}
        for type_ in (PG, VAULT, REDIS, "azure-native:keyvault:Vault"):
            assert run.one(type_).outputs["id"] in targets, type_
        audit = _account(run, "audit")
        policy = audit.inputs["immutableStorageWithVersioning"]["immutabilityPolicy"]
        assert policy["state"] == "Locked" and policy["allowProtectedAppendWrites"] is True
        assert policy["immutabilityPeriodSinceCreationInDays"] >= RETENTION[Tier.PROD].audit_logs.days
        for purpose in ("user-files", "backups"):
            blob = targets[_account(run, purpose).outputs["id"] + "/blobServices/default"]
            assert blob["storageAccountId"] == audit.outputs["id"]
            assert {c["category"] for c in blob["logs"]} == {"StorageRead", "StorageWrite", "StorageDelete"}
        assert run.one("azure-native:app:ManagedEnvironment").outputs["id"] in targets  # the jobs' result lines
    # One activity-log export per subscription: the DR stack's, into its own archive.
    assert prod_azure.of_type("azure-native:monitor:SubscriptionDiagnosticSetting") == []
    (export,) = dr_azure.of_type("azure-native:monitor:SubscriptionDiagnosticSetting")
    assert export.inputs["storageAccountId"] == _account(dr_azure, "audit").outputs["id"]
    alerts = dr_azure.outputs["monitoring"]["alerts"]
    assert set(alerts) >= {"backup-failed", "backup-overdue", "restore-test-failed", "replica-lag", "storage-quota"}
    group = dr_azure.one("azure-native:monitor:ActionGroup")
    assert [r["emailAddress"] for r in group.inputs["emailReceivers"]] == ["oncall@postoucancer.example"]


def test_the_objectives_list_every_database_recovery_source_with_its_documented_rpo(prod_azure):
    sources = {s["source"]: s["rpo"] for s in prod_azure.outputs["recoverySources"]}
    assert sources["point-in-time restore (same region)"] == "5m"
    assert sources["promote warm standby (DR region)"] == "5m"
    assert sources["geo-restore (paired region)"] == "1h"
    assert "restore locked snapshot copy (DR vault)" in sources
    assert all(row["met"] for row in prod_azure.outputs["objectives"].values())
