"""The backup and verify functions on Azure: the same image as everywhere, as scheduled Container
Apps Jobs (components/azure/container_jobs.py says why not an Azure Functions timer): the daily
backup at the plan's slot, the weekly restore test; a standby DR site has them on manual
trigger until activation.

- The image lives in this site's own container registry (each region has its copy, as each AWS
  site has its ECR repository), pulled through a private endpoint. The registry is built here;
  the image is pushed into it by ACR Tasks (`az acr build`, docs/azure.md's first deployment) at
  the tag `azure.jobsImageTag`: this program builds no image (AWS's pulumi-docker-build push needs
  registry credentials, which an Entra-only registry with the admin user off does not hand out).
- One user-assigned identity for both jobs: AcrPull on the registry, Key Vault Secrets User on
  the DSN secret only, and the component's custom role on the backups container (write, read,
  tags, set immutability; never delete).
- The DSN secret (`database-dsn`, libpq URI with TLS required) names this site's own server: on
  the DR site the replica, which activation promotes in place, so nothing here changes then.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from components.azure.container_jobs import BackupJobs, BackupJobsArgs, JobIdentity
from components.azure.container_jobs import BackupStore as JobStore
from components.azure.identity import ManagedIdentity, ManagedIdentityArgs
from components.azure.names import registry_name
from components.azure.roles import ACR_PULL, assign
from infra.azure.app import POSTGRES_PORT, serving
from infra.azure.backups import BackupStore
from infra.azure.credentials import Credentials
from infra.azure.data import Database
from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.azure.monitoring import Monitoring
from infra.site import Site

IMAGE_REPOSITORY = "postoucancer/backup"
DSN_SECRET = "database-dsn"  # noqa: S105 - the name of a Key Vault secret, not a value


@dataclass(frozen=True)
class Functions:
    registry: azure_native.containerregistry.Registry
    identity: ManagedIdentity
    image: pulumi.Output[str]
    jobs: BackupJobs | None  # None until this site has its database and its credentials


def _registry(site: Site, base: Foundation) -> azure_native.containerregistry.Registry:
    azure = site.cfg.azure
    assert azure is not None
    registry = azure_native.containerregistry.Registry(
        site.name("registry"),
        registry_name=registry_name(base.subscription_id, site.stack),
        resource_group_name=base.group.name,
        location=site.region,
        sku={"name": "Premium"},  # private endpoints and network rules are Premium features
        admin_user_enabled=False,  # Entra ID only: no shared registry password
        anonymous_pull_enabled=False,
        public_network_access="Enabled",
        # The deployer's addresses push (az acr build); everything else comes through the endpoint.
        network_rule_set={"default_action": "Deny", "ip_rules": [{"i_p_address_or_range": ip, "action": "Allow"}
                                                                  for ip in azure.key_vault_allowed_ips]},
        network_rule_bypass_options="AzureServices",
        zone_redundancy="Enabled",
        tags=base.tags,
        opts=pulumi.ResourceOptions(providers=[base.provider], protect=True),
    )
    base.network.private_endpoint(
        site.name("registry-endpoint"),
        resource_group_name=base.group.name,
        location=site.region,
        target_id=registry.id,
        group="registry",
        parent=registry,
    )
    return registry


def _dsn(creds: Credentials, fqdn: pulumi.Output[str], database: str) -> pulumi.Output[str]:
    assert creds.password is not None
    return pulumi.Output.secret(
        pulumi.Output.format(
            "postgresql://{0}:{1}@{2}:{3}/{4}?sslmode=require", creds.username, creds.password, fqdn,
            POSTGRES_PORT, database,
        )
    )


def build(
    site: Site, base: Foundation, keys: Keys, creds: Credentials, db: Database, store: BackupStore, mon: Monitoring
) -> Functions:
    cfg, azure = site.cfg, site.cfg.azure
    assert azure is not None
    registry = _registry(site, base)
    identity = ManagedIdentity(
        site.name("jobs-identity"),
        ManagedIdentityArgs(resource_group_name=base.group.name, location=site.region, purpose="backup-jobs",
                            tags=base.tags),
        opts=base.opts,
    )
    pull = assign(site.name("jobs-acr-pull"), subscription_id=base.subscription_id, principal_id=identity.principal_id,
                  role=ACR_PULL, scope=registry.id, parent=identity)
    image = pulumi.Output.concat(registry.login_server, f"/{IMAGE_REPOSITORY}:{azure.jobs_image_tag}")
    if db.fqdn is None or creds.password is None:
        site.export("functions", {"enabled": False, "waitingFor": "the database and its credentials (primary first)",
                                  "image": image})
        return Functions(registry, identity, image, None)
    dsn = keys.vault.secret(DSN_SECRET, _dsn(creds, db.fqdn, cfg.database.name), readers=[identity],
                            content_type="text/uri-list")
    account = store.storage.storage
    active = serving(site)
    jobs = BackupJobs(
        site.name("functions"),
        BackupJobsArgs(
            resource_group_name=base.group.name,
            location=site.region,
            subscription_id=base.subscription_id,
            infrastructure_subnet_id=base.network.subnet_ids["jobs"],
            image=image,
            registry_server=registry.login_server,
            identity=JobIdentity(identity.id, identity.client_id, identity.principal_id),
            store=JobStore(
                storage_account_id=account.id,
                account_url=account.blob_endpoint.apply(lambda u: (u or "").rstrip("/")),
                container=store.container,
                encryption_scope=store.encryption_scope,
            ),
            database=cfg.database.name,
            db_dsn_secret_url=dsn.properties.apply(lambda p: p.secret_uri),
            backup_policy=cfg.backup_policy,
            active=active,
            action_group_id=mon.site.action_group.id,
            tags=base.tags,
        ),
        opts=pulumi.ResourceOptions(providers=[base.provider], depends_on=[pull, dsn]),
    )
    site.export(
        "functions",
        {
            "enabled": True,
            "runner": "container-apps-jobs",
            "image": image,
            "registry": registry.name,
            "trigger": "schedule" if active else "manual (standby until activation)",
            "jobs": {k: j.name for k, j in jobs.jobs.items()},
        },
    )
    return Functions(registry, identity, image, jobs)
