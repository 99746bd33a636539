"""User files on Azure: the protected StorageV2 account, its lifecycle, and object replication
into the DR site's twin, built half by half in the documented bootstrap order."""

from __future__ import annotations

import dataclasses

import pytest

from components.azure import object_replication as orep
from components.azure.storage_account import (
    UNCOMMITTED_BLOCKS_DISCARDED_AFTER,
    Immutability,
    ProtectedStorageAccountArgs,
    check_protection,
)
from drplan.periods import days
from drplan.retention import MULTIPART_ABORT, RETENTION, Tier
from tests.infra.azure.helpers import ACCOUNT, ARM_ID, BLOB_SERVICE, CONTAINER, LIFECYCLE, REPLICATION, one_of_account

PROD = RETENTION[Tier.PROD]


def test_files_account_is_hardened_and_encrypted_with_the_sites_key(prod_azure):
    account = prod_azure.one(ACCOUNT, "primary-files")
    i = account.inputs
    assert account.protect and ARM_ID.match(account.outputs["id"])
    assert (i["kind"], i["sku"]["name"], i["minimumTlsVersion"]) == ("StorageV2", "Standard_ZRS", "TLS1_2")
    assert i["enableHttpsTrafficOnly"] is True and i["allowBlobPublicAccess"] is False
    assert i["allowSharedKeyAccess"] is False and i["allowCrossTenantReplication"] is False
    assert i["networkRuleSet"]["defaultAction"] == "Deny"
    enc = i["encryption"]
    key = prod_azure.one("azure-native:keyvault:Key", "primary-vault-storage")
    identity = prod_azure.one("azure-native:managedidentity:UserAssignedIdentity", "primary-storage-identity")
    assert enc["keySource"] == "Microsoft.Keyvault" and enc["requireInfrastructureEncryption"] is True
    assert enc["keyVaultProperties"] == {
        "keyName": key.outputs["name"],
        "keyVaultUri": prod_azure.one("azure-native:keyvault:Vault").outputs["properties"]["vaultUri"],
    }, "versionless: follows rotation"
    assert enc["encryptionIdentity"]["encryptionUserAssignedIdentity"] == identity.outputs["id"]
    grant = next(
        r
        for r in prod_azure.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs["scope"] == key.outputs["id"]
    )
    assert grant.urn in account.dependencies, "the account may use the key only once the grant exists"
    (container,) = [c for c in prod_azure.of_type(CONTAINER) if c.inputs["accountName"] == account.outputs["name"]]
    assert container.protect and container.inputs["publicAccess"] == "None"


def test_versioning_change_feed_soft_delete_and_point_in_time_restore(prod_azure, dr_azure):
    for run, name in ((prod_azure, "primary-files"), (dr_azure, "dr-files")):
        service = one_of_account(run, run.one(ACCOUNT, name), BLOB_SERVICE).inputs
        assert service["isVersioningEnabled"] is True
        assert service["deleteRetentionPolicy"] == {"enabled": True, "days": 90, "allowPermanentDelete": False}
        assert service["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 90}
        assert service["changeFeed"]["enabled"] is True
        # Azure: point-in-time restore at least one day shorter than soft delete.
        assert service["restorePolicy"] == {"enabled": True, "days": PROD.deleted_files.days - 1}
        assert service["changeFeed"]["retentionInDays"] >= service["restorePolicy"]["days"]


def test_lifecycle_keeps_deleted_files_the_plans_90_days(prod_azure):
    policy = one_of_account(prod_azure, prod_azure.one(ACCOUNT, "primary-files"), LIFECYCLE)
    (rule,) = policy.inputs["policy"]["rules"]
    assert rule["definition"]["actions"] == {"version": {"delete": {"daysAfterCreationGreaterThan": 90}}}
    assert rule["definition"]["filters"] == {"blobTypes": ["blockBlob"]}
    # Versions' age counts from when they were written: what keeps every deleted file 90 days
    # after its deletion is soft delete of the deleted version, as long as deleted_files.
    service = one_of_account(prod_azure, prod_azure.one(ACCOUNT, "primary-files"), BLOB_SERVICE).inputs
    assert service["deleteRetentionPolicy"]["days"] >= PROD.deleted_files.days


def test_aborted_uploads_are_discarded_by_the_service_within_the_plans_week():
    """Put Block docs: uncommitted blocks are discarded after a week; lifecycle management has no
    action for them (lifecycle-management-policy-structure): the plan's bound holds by itself."""
    assert UNCOMMITTED_BLOCKS_DISCARDED_AFTER.days <= MULTIPART_ABORT.days


def test_replication_halves_match_across_the_sites(prod_azure, dr_azure):
    src_account, dst_account = prod_azure.one(ACCOUNT, "primary-files"), dr_azure.one(ACCOUNT, "dr-files")
    destination = dr_azure.one(REPLICATION, "dr-files-replication")
    source = prod_azure.one(REPLICATION, "primary-files-replication")
    assert destination.inputs["objectReplicationPolicyId"] == "default"
    assert destination.inputs["accountName"] == dst_account.outputs["name"]
    assert source.inputs["accountName"] == src_account.outputs["name"]
    for half in (source, destination):
        assert half.inputs["sourceAccount"] == src_account.outputs["id"]
        assert half.inputs["destinationAccount"] == dst_account.outputs["id"]
        assert half.inputs["metrics"] == {"enabled": True}
    assert source.inputs["objectReplicationPolicyId"] == destination.outputs["policyId"]
    (dst_rule,), (src_rule,) = destination.outputs["rules"], source.inputs["rules"]
    assert src_rule["ruleId"] == dst_rule["ruleId"] and src_rule["sourceContainer"] == "files"
    assert "prefixMatch" not in src_rule["filters"], "the whole container"


def test_bootstrap_is_dr_prod_dr_prod_and_each_partial_pass_says_what_next(pair_azure):
    stacks = [r.stack for r in pair_azure.bootstrap]
    assert stacks == ["dr-azure", "prod-azure", "dr-azure", "prod-azure"]
    first_dr, first_prod, second_dr, second_prod = pair_azure.bootstrap
    assert not first_dr.of_type(REPLICATION) and not first_prod.of_type(REPLICATION)
    assert "filesReplicationPolicy" in first_prod.outputs["nextStep"]
    assert "pulumi up -s dr-azure" in first_prod.outputs["nextStep"]
    assert len(second_dr.of_type(REPLICATION)) == 2 and len(second_prod.of_type(REPLICATION)) == 2
    assert "nextStep" not in second_dr.outputs and "nextStep" not in second_prod.outputs


def _args(**changes) -> ProtectedStorageAccountArgs:
    base = ProtectedStorageAccountArgs(
        resource_group_name="rg",
        location="francecentral",
        subscription_id="s",
        account_name="a",
        retention=PROD,
        key=None,
        identity=None,
        containers=["c"],
        purpose="user-files",  # type: ignore[arg-type]
        point_in_time_restore=True,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        # immutable-storage-overview, "Feature support": incompatible with point-in-time restore.
        ({"immutability": Immutability(days(30), locked=True)}, "cannot share an account"),
        # point-in-time-restore-overview: needs the change feed.
        ({"change_feed": False}, "change feed"),
        # point-in-time-restore-overview: standard general-purpose v2 only.
        ({"sku": "Premium_ZRS"}, "standard general-purpose v2"),
        # point-in-time-restore-overview: at least one day shorter than soft delete (here 1 day).
        ({"retention": dataclasses.replace(PROD, deleted_files=days(1))}, "one day shorter"),
    ],
)
def test_documented_storage_constraints_are_refused(changes, why):
    with pytest.raises(ValueError, match=why):
        check_protection(_args(**changes))
    assert check_protection(_args()).point_in_time_restore_days == 89


def test_replication_prerequisites_and_full_ids_are_refused_when_missing():
    """object-replication-overview: versioning on both accounts, change feed on the source;
    with cross-tenant replication disallowed, full resource ids."""
    good = {"versioning": True, "changeFeed": True}
    orep.check_prerequisites(good, {"versioning": True})
    for source, dest, why in (
        ({"versioning": True, "changeFeed": False}, good, "change feed on the source"),
        ({"versioning": False, "changeFeed": True}, good, "versioning on the source"),
        (good, {"versioning": False}, "versioning on the destination"),
    ):
        with pytest.raises(ValueError, match=why):
            orep.check_prerequisites(source, dest)
    with pytest.raises(ValueError, match="full resource id"):
        orep.full_account_id("pocfiles123")
    assert orep.REPLICATION_SLA is None, "Azure documents no time bound for standard object replication"
