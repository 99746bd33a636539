"""The backup store on Azure: version-level immutability (Locked in prod), an enforced
encryption scope under the site's key, GFS retention by blob index tags, replicated to DR."""

from __future__ import annotations

from components.azure import backup_storage
from drplan import layout
from drplan.periods import weeks
from drplan.retention import RETENTION, Tier
from infra import policy_check
from infra.mockrun import load_stack_config, run_stack
from tests.infra.azure.helpers import (
    ACCOUNT,
    BLOB_SERVICE,
    CONTAINER,
    LIFECYCLE,
    REPLICATION,
    of_account,
    one_of_account,
)

PROD = RETENTION[Tier.PROD]


def test_backup_accounts_are_immutable_and_locked_in_prod_on_both_sites(prod_azure, dr_azure):
    for run, name in ((prod_azure, "primary-backups"), (dr_azure, "dr-backups")):
        account = run.one(ACCOUNT, name)
        immutable = account.inputs["immutableStorageWithVersioning"]
        assert immutable == {
            "enabled": True,
            "immutabilityPolicy": {
                "immutabilityPeriodSinceCreationInDays": PROD.shortest.days,
                "state": "Locked",
                "allowProtectedAppendWrites": False,
            },
        }
        service = one_of_account(run, account, BLOB_SERVICE).inputs
        assert service["isVersioningEnabled"] is True, "version-level immutability needs versioning"
        assert service["restorePolicy"] == {"enabled": False}, "incompatible with immutable storage"
        assert service["changeFeed"]["enabled"] is True  # the replication source needs it


def test_the_container_enforces_the_scope_the_functions_write_with(prod_azure):
    account = prod_azure.one(ACCOUNT, "primary-backups")
    (container,) = of_account(prod_azure, account, CONTAINER)
    scope = one_of_account(prod_azure, account, "azure-native:storage:EncryptionScope")
    key = prod_azure.one("azure-native:keyvault:Key", "primary-vault-storage")
    assert container.protect and container.inputs["containerName"] == "backups"
    assert container.inputs["defaultEncryptionScope"] == scope.outputs["name"] == backup_storage.ENCRYPTION_SCOPE
    assert container.inputs["denyEncryptionScopeOverride"] is True
    assert (
        scope.inputs["source"] == "Microsoft.KeyVault"
        and scope.inputs["keyVaultProperties"]["keyUri"] == key.outputs["keyUri"]
    )
    assert scope.inputs["requireInfrastructureEncryption"] is True
    assert prod_azure.outputs["backupStore"]["encryptionScope"] == backup_storage.ENCRYPTION_SCOPE


def test_gfs_retention_by_index_tag_comes_from_the_plan(prod_azure):
    policy = one_of_account(prod_azure, prod_azure.one(ACCOUNT, "primary-backups"), LIFECYCLE)
    rules = {r["name"]: r["definition"] for r in policy.inputs["policy"]["rules"]}
    for gfs in PROD.classes:
        rule = rules[f"expire-{gfs.value}"]
        assert rule["filters"]["blobIndexMatch"] == [{"name": layout.GFS_TAG_KEY, "op": "==", "value": gfs.value}]
        assert rule["filters"]["prefixMatch"] == ["backups/"], "Azure: a prefix starts with the container"
        assert rule["actions"] == {"baseBlob": {"delete": {"daysAfterCreationGreaterThan": PROD.for_class(gfs).days}}}
    # Index tags select current versions only: previous versions go by age, after the shortest lock.
    assert rules["expired-backup-versions"]["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": PROD.shortest.days}}
    }
    verifications = rules["expire-postgres-postoucancer-verifications"]
    assert verifications["actions"]["baseBlob"]["delete"]["daysAfterCreationGreaterThan"] == PROD.longest.days


def test_an_override_lengthens_the_rule_of_its_generation_only():
    longer = PROD.with_overrides({"weekly": weeks(16)})
    rules = {r["name"]: r for r in backup_storage.gfs_rules("backups", longer)}
    days = {
        n: r["definition"]["actions"]["base_blob"]["delete"]["days_after_creation_greater_than"]
        for n, r in rules.items()
    }
    assert days == {
        "expire-daily": 30,
        "expire-weekly": 112,
        "expire-monthly": PROD.monthly.days,
        "expire-yearly": PROD.yearly.days,
    }


def test_backups_replicate_to_the_dr_site(prod_azure, dr_azure):
    source = prod_azure.one(REPLICATION, "primary-backups-replication")
    assert source.inputs["destinationAccount"] == dr_azure.one(ACCOUNT, "dr-backups").outputs["id"]
    assert [r["sourceContainer"] for r in source.inputs["rules"]] == ["backups"]


def test_the_unlocked_first_step_is_declared_and_passes_the_pack_only_so(pair_azure):
    azure = {**load_stack_config("prod-azure")["postoucancer-dr:azure"], "immutability": "unlocked"}
    first = run_stack("prod-azure", peer_outputs=pair_azure.dr.outputs, overrides={"postoucancer-dr:azure": azure})
    account = first.one(ACCOUNT, "primary-backups")
    assert account.inputs["immutableStorageWithVersioning"]["immutabilityPolicy"]["state"] == "Unlocked"
    assert "pulumi config rm --path azure.immutability -s prod-azure" in first.outputs["immutabilityNextStep"]
    assert [v for v in policy_check.evaluate(first) if v.mandatory] == []
    first.outputs.pop("immutabilityNextStep")  # the same account without the declared step fails
    failed = {v.policy for v in policy_check.evaluate(first) if v.mandatory}
    assert failed == {"azure-backup-immutability"}
