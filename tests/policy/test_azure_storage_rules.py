"""Each Azure storage and Key Vault rule catches a deliberately bad resource and passes a good
one (real pulumi-azure-native resources under the project's mock runtime), and both Azure
stacks pass the whole pack."""

from __future__ import annotations

import pulumi
import pulumi_azure_native as az
import pytest

from drplan import layout
from drplan.retention import RETENTION, Tier
from infra import policy_check
from policy.rules import azure_data as data
from policy.rules import azure_keyvault as kv
from policy.rules import azure_storage as st
from tests.policy.harness import names, record, violations

PROD = RETENTION[Tier.PROD]
RG = "rg"
PRIMARY = {"role": "primary", "tier": "prod"}


def _rule(name, filters, actions):
    return {
        "name": name,
        "enabled": True,
        "type": "Lifecycle",
        "definition": {"filters": {"blob_types": ["blockBlob"], **filters}, "actions": actions},
    }


def _gfs(days_of=lambda c: PROD.for_class(c).days):
    rules = [
        _rule(
            f"expire-{c.value}",
            {"blob_index_match": [{"name": layout.GFS_TAG_KEY, "op": "==", "value": c.value}]},
            {"base_blob": {"delete": {"days_after_creation_greater_than": days_of(c)}}},
        )
        for c in PROD.classes
    ]
    return [*rules, _rule("versions", {}, {"version": {"delete": {"days_after_creation_greater_than": 30}}})]


def account(
    name="good",
    *,
    purpose="user-files",
    tls="TLS1_2",
    public=False,
    shared_key=False,
    key_source="Microsoft.Keyvault",
    infra_encryption=True,
    soft_delete=90,
    restore=89,
    immutable_state="Locked",
    immutable_days=30,
    rules=None,
    replicate=True,
    container_access="None",
):
    """An account with its blob service, lifecycle, container and (source) replication half;
    each keyword turns one part bad."""
    backups = purpose == "backups"
    acct = az.storage.StorageAccount(
        name,
        account_name=name,
        resource_group_name=RG,
        kind="StorageV2",
        sku={"name": "Standard_ZRS"},
        minimum_tls_version=tls,
        enable_https_traffic_only=True,
        allow_blob_public_access=public,
        allow_shared_key_access=shared_key,
        allow_cross_tenant_replication=False,
        network_rule_set={"default_action": "Deny"},
        encryption={
            "key_source": key_source,
            "require_infrastructure_encryption": infra_encryption,
            "key_vault_properties": {"key_name": "k", "key_vault_uri": "https://v.vault.azure.net/"},
            "encryption_identity": {"encryption_user_assigned_identity": "/subscriptions/x/id"},
        },
        immutable_storage_with_versioning={
            "enabled": True,
            "immutability_policy": {
                "immutability_period_since_creation_in_days": immutable_days,
                "state": immutable_state,
            },
        }
        if backups
        else None,
        tags={"purpose": purpose},
        opts=pulumi.ResourceOptions(protect=True),
    )
    az.storage.BlobServiceProperties(
        f"{name}-service",
        account_name=acct.name,
        resource_group_name=RG,
        is_versioning_enabled=True,
        change_feed={"enabled": True},
        delete_retention_policy={"enabled": True, "days": soft_delete},
        container_delete_retention_policy={"enabled": True, "days": soft_delete},
        restore_policy={"enabled": not backups and restore is not None, "days": restore},
    )
    default_rules = (
        _gfs() if backups else [_rule("v", {}, {"version": {"delete": {"days_after_creation_greater_than": 90}}})]
    )
    az.storage.ManagementPolicy(
        f"{name}-lifecycle",
        account_name=acct.name,
        resource_group_name=RG,
        policy={"rules": rules if rules is not None else default_rules},
    )
    az.storage.BlobContainer(
        f"{name}-c", account_name=acct.name, resource_group_name=RG, public_access=container_access
    )
    if replicate:
        az.storage.ObjectReplicationPolicy(
            f"{name}-replication",
            account_name=acct.name,
            resource_group_name=RG,
            object_replication_policy_id="p1",
            source_account="/s/a",
            destination_account="/s/b",
            rules=[{"source_container": "c", "destination_container": "c", "rule_id": "r1"}],
        )
    return acct


def _vault(name="vault", purge=True, rbac=True, default_action="Deny"):
    return az.keyvault.Vault(
        name,
        resource_group_name=RG,
        properties={
            "tenant_id": "t",
            "sku": {"family": "A", "name": "standard"},
            "enable_purge_protection": purge,
            "enable_rbac_authorization": rbac,
            "soft_delete_retention_in_days": 90,
            "network_acls": {"default_action": default_action, "bypass": "AzureServices"},
        },
    )


def _key(name="key", rotate=True, size=3072):
    actions = [{"trigger": {"time_after_create": "P365D"}, "action": {"type": "rotate"}}] if rotate else []
    return az.keyvault.Key(
        name,
        resource_group_name=RG,
        vault_name="v",
        properties={
            "kty": "RSA",
            "key_size": size,
            "rotation_policy": {"attributes": {"expiry_time": "P730D"}, "lifetime_actions": actions},
        },
    )


CASES = [
    (st.azure_storage_tls, dict(tls="TLS1_0")),
    (st.azure_storage_private, dict(public=True)),
    (st.azure_storage_private, dict(container_access="Blob")),
    (st.azure_storage_no_shared_key, dict(shared_key=True)),
    (st.azure_storage_cmk, dict(key_source="Microsoft.Storage")),
    (st.azure_storage_cmk, dict(infra_encryption=False)),
    (st.azure_storage_soft_delete, dict(soft_delete=30, restore=29)),
    (st.azure_storage_point_in_time_restore, dict(restore=90)),
    (st.azure_storage_point_in_time_restore, dict(restore=None)),
    (st.azure_backup_immutability, dict(purpose="backups", immutable_state="Unlocked")),
    (st.azure_backup_immutability, dict(purpose="backups", immutable_days=7)),
    (
        st.azure_storage_retention,
        dict(rules=[_rule("v", {}, {"version": {"delete": {"days_after_creation_greater_than": 30}}})]),
    ),
    (st.azure_storage_retention, dict(purpose="backups", rules=_gfs(lambda c: 7))),
    (st.azure_storage_retention, dict(purpose="backups", rules=_gfs()[1:])),  # no daily rule
    (st.azure_storage_replicated, dict(replicate=False)),
]


def _case_id(i: int) -> str:
    return f"bad{i}"


VAULT_CASES = [
    (kv.azure_keyvault_protected, lambda n: _vault(n, purge=False)),
    (kv.azure_keyvault_protected, lambda n: _vault(n, rbac=False)),
    (kv.azure_keyvault_private, lambda n: _vault(n, default_action="Allow")),
    (kv.azure_keyvault_key_rotation, lambda n: _key(n, rotate=False)),
    (kv.azure_keyvault_key_rotation, lambda n: _key(n, size=2048)),
]


@pytest.fixture(scope="module")
def recorded():
    """One synthetic stack holding every bad resource (named per case) and good ones of each kind:
    one mock run serves every rule's bad and good case."""

    def program():
        for i, (_, bad) in enumerate(CASES):
            account(_case_id(i), **bad)
        for i, (_, bad) in enumerate(VAULT_CASES):
            bad(f"vbad{i}")
        account("goodfiles")
        account("goodbackups", purpose="backups")
        # Redis persistence: Azure discourages soft delete there (components/azure/cache_storage.py).
        account("goodcache", purpose="cache-persistence", soft_delete=1, restore=None, replicate=False)
        _vault("goodvault")
        _key("goodkey")

    return record(program, site=PRIMARY)


def _flagged(run, policy) -> set[str]:
    return names(policy_check.evaluate(run, [policy]))


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{p.name}-{next(iter(b))}" for p, b in CASES])
def test_each_storage_rule_catches_a_bad_account_and_passes_a_good_one(recorded, i):
    policy, bad = CASES[i]
    flagged = _flagged(recorded, policy)
    mine = {n for n in flagged if n == _case_id(i) or n.startswith(f"{_case_id(i)}-")}
    assert mine, f"{policy.name} missed {bad}"
    assert not flagged & {"goodfiles", "goodbackups", "goodfiles-c", "goodbackups-c"}, flagged


def test_only_the_redis_persistence_account_may_go_without_soft_delete(recorded):
    """The exemption is by purpose: the same account as user files is flagged (case soft_delete=30)."""
    flagged = _flagged(recorded, st.azure_storage_soft_delete)
    soft = next(i for i, (policy, _) in enumerate(CASES) if policy is st.azure_storage_soft_delete)
    assert "goodcache" not in flagged and _case_id(soft) in flagged


@pytest.mark.parametrize("i", range(len(VAULT_CASES)), ids=[f"{p.name}-{i}" for i, (p, _) in enumerate(VAULT_CASES)])
def test_each_key_vault_rule_catches_a_bad_resource_and_passes_a_good_one(recorded, i):
    policy, _ = VAULT_CASES[i]
    flagged = _flagged(recorded, policy)
    assert f"vbad{i}" in flagged, policy.name
    assert not flagged & {"goodvault", "goodkey"}, flagged


def test_a_dr_site_standing_by_must_receive_and_an_activated_one_must_not():
    dr = {"role": "dr", "tier": "prod"}

    def destination_half():
        acct = account("dr", replicate=False)
        az.storage.ObjectReplicationPolicy(
            "dr-replication",
            account_name=acct.name,
            resource_group_name=RG,
            object_replication_policy_id="default",
            source_account="/s/a",
            destination_account="/s/b",
            rules=[{"source_container": "c", "destination_container": "c"}],
        )

    assert violations(st.azure_storage_replicated, lambda: account("dr", replicate=False), site=dr)
    assert violations(st.azure_storage_replicated, destination_half, site=dr) == []

    def activated_with_half():
        pulumi.export("activated", True)
        destination_half()

    assert violations(st.azure_storage_replicated, activated_with_half, site=dr)


def test_both_azure_stacks_pass_the_whole_pack(prod_azure, dr_azure):
    assert [str(v) for v in policy_check.check_stacks([prod_azure, dr_azure]) if v.mandatory] == []
    # Not vacuous: the Azure rules see the stacks' accounts, vaults and keys.
    resources = policy_check.stack_resources(prod_azure)
    purposes = sorted(r.props["tags"]["purpose"] for r in resources if r.resource_type == st.ACCOUNT)
    assert purposes == ["audit", "backups", "cache-persistence", "user-files"]
    assert sum(r.resource_type == kv.KEY for r in resources) == 4  # storage, database (+ geo), backup vault
    # ... and the data tier's: the azure_data rules judge a server, a vault and its policy, a cache
    # and the jobs' custom role on each site (the DR server a replica).
    for run in (prod_azure, dr_azure):
        types = [r.resource_type for r in policy_check.stack_resources(run)]
        for t in (data.PG_SERVER, data.PG_CONFIG, data.BACKUP_VAULT, data.BACKUP_POLICY, data.REDIS,
                  data.ROLE_DEFINITION):
            assert t in types, (run.stack, t)
