"""Keys and secrets on Azure: a Key Vault per site (purge protection, RBAC, private network
ACL), rotating customer-managed keys with one identity per consumer, and the database
credentials in both regions' vaults, in plain text nowhere."""

from __future__ import annotations

import json

from components.azure import key_vault
from components.azure.roles import KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER
from drplan.periods import days
from infra.mockrun import run_stack
from tests.infra.azure.helpers import ARM_ID, IDENTITY, KEY, ROLE, SECRET, VAULT
from tests.infra.test_secrets import plain_occurrences


def test_each_site_has_a_protected_private_rbac_vault_in_its_region(prod_azure, dr_azure):
    for run, region in ((prod_azure, "francecentral"), (dr_azure, "germanywestcentral")):
        vault = run.one(VAULT)
        props = vault.inputs["properties"]
        assert vault.protect and vault.inputs["location"] == region
        assert props["enablePurgeProtection"] is True and props["enableRbacAuthorization"] is True
        assert props["softDeleteRetentionInDays"] == 90
        assert props["networkAcls"]["defaultAction"] == "Deny" and props["publicNetworkAccess"] == "Disabled"
        assert ARM_ID.match(vault.outputs["id"]) and vault.outputs["id"].endswith(f"/vaults/{vault.outputs['name']}")
        endpoint = run.one("azure-native:network:PrivateEndpoint", f"{vault.name}-endpoint")
        (link,) = endpoint.inputs["privateLinkServiceConnections"]
        assert link["privateLinkServiceId"] == vault.outputs["id"] and link["groupIds"] == ["vault"]


def test_customer_keys_rotate_and_only_their_own_consumer_may_use_them(prod_azure):
    keys = {k.name.rsplit("-vault-", 1)[1]: k for k in prod_azure.of_type(KEY)}
    # The primary server's geo-backups have a key and an identity of their own (Azure requires a
    # different identity for the geo-backup key, "Configure data encryption").
    assert set(keys) == {"storage", "database", "backup-vault", "database-geo"}
    grants = prod_azure.of_type(ROLE)
    for purpose, key in keys.items():
        props = key.inputs["properties"]
        assert key.protect and props["kty"] == "RSA" and props["keySize"] >= 3072
        assert props["keyOps"] == ["wrapKey", "unwrapKey"] and props["attributes"]["exportable"] is False
        policy = props["rotationPolicy"]
        assert policy["attributes"]["expiryTime"] == "P730D"
        assert {a["action"]["type"]: a["trigger"] for a in policy["lifetimeActions"]} == {
            "rotate": {"timeAfterCreate": "P365D"},
            "notify": {"timeBeforeExpiry": "P30D"},
        }
        (grant,) = [g for g in grants if g.inputs["scope"] == key.outputs["id"]]
        identity = prod_azure.one(IDENTITY, f"primary-{purpose}-identity")
        assert grant.inputs["principalId"] == identity.outputs["principalId"]
        assert grant.inputs["principalType"] == "ServicePrincipal"
        assert grant.inputs["roleDefinitionId"].endswith(f"/roleDefinitions/{KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER}")


def test_a_rotation_policy_key_vault_would_refuse_is_refused_here():
    """Key Vault: a rotation policy's expiry must be at least 28 days (KeyRotationPolicy.ExpiresIn,
    "It should be at least 28 days"), and rotating after expiry would leave an expired key."""
    for rotate, expires in ((days(7), days(27)), (days(400), days(365))):
        try:
            key_vault.rotation_policy(rotate, expires, days(1))
        except ValueError as e:
            assert "expir" in str(e)
        else:
            raise AssertionError(f"accepted rotate {rotate} expires {expires}")
    assert key_vault.rotation_policy(days(20), days(28), days(7))["attributes"] == {"expiry_time": "P28D"}


def test_database_credentials_are_in_both_vaults_and_plain_nowhere(prod_azure, dr_azure):
    secrets = {run.stack: run.one(SECRET, "database-credentials") for run in (prod_azure, dr_azure)}
    values = {stack: s.inputs["properties"]["value"] for stack, s in secrets.items()}
    assert values["prod-azure"] == values["dr-azure"], "the DR vault holds the very credentials of the primary"
    document = json.loads(values["dr-azure"])
    assert document["username"] == "postoucancer_admin" and len(document["password"]) == 48
    for stack, secret in secrets.items():
        assert secret.protect and {"properties", "properties.value"} & set(secret.secret_inputs), stack
    assert secrets["dr-azure"].inputs["vaultName"] == dr_azure.one(VAULT).outputs["name"]
    assert "databaseCredentials" in prod_azure.secret_outputs
    for run in (prod_azure, dr_azure):
        assert plain_occurrences(run, document["password"]) == [], run.stack


def test_the_dr_vault_waits_for_the_primary_on_the_first_bootstrap_pass():
    first = run_stack("dr-azure")  # the first pass of run_pair: answered from memory
    assert not first.of_type(SECRET)
    assert "databaseCredentials" in first.outputs["nextStep"] and "pulumi up -s prod-azure" in first.outputs["nextStep"]
