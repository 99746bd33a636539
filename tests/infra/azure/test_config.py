"""Azure stacks' configuration: what `cloud: azure` needs, and each mistake's one-line error
naming the key and the fix (parse only: no stack runs)."""

from __future__ import annotations

import copy

import pytest

from infra.config import ConfigError, parse
from infra.mockrun import load_stack_config

P = "postoucancer-dr:"


def _raw(stack: str) -> dict:
    return {k[len(P) :]: v for k, v in load_stack_config(stack).items() if k.startswith(P) and k != f"{P}kubeconfig"}


def _error(raw: dict, others=()) -> str:
    with pytest.raises(ConfigError) as e:
        parse(raw, None, others)
    return str(e.value)


def test_both_azure_stack_files_are_valid_and_name_each_other():
    prod, dr = parse(_raw("prod-azure")), parse(_raw("dr-azure"))
    assert (prod.region, prod.peer_region, dr.region) == ("francecentral", "germanywestcentral", "germanywestcentral")
    assert (prod.peer_stack, dr.peer_stack) == ("dr-azure", "prod-azure")
    assert prod.resource_group("prod-azure") == "postoucancer-prod-azure"
    # Production locks the backups' immutability by default (vaultLock is on in prod).
    assert prod.immutability_locked and dr.immutability_locked


@pytest.mark.parametrize(
    ("change", "others", "key", "fix"),
    [
        (lambda r: r.pop("azure"), (), "'postoucancer-dr:azure' is missing", "azure.subscriptionId"),
        (lambda r: r["azure"].update(subscriptionId="my-sub"), (), "azure.subscriptionId", "GUID"),
        (lambda r: r["regions"].update(primary="eu-west-3"), (), "regions.primary", "francecentral"),
        (lambda r: r["regions"].update(dr="francecentral"), (), "regions.dr", "another region"),
        (lambda r: r["regions"].update(dr="francesouth"), (), "restricted-access", "germanywestcentral"),
        (lambda r: r["azure"].update(keyVaultAllowedIps=["everyone"]), (), "azure.keyVaultAllowedIps", "CIDR"),
        (lambda r: r["azure"].update(tenantld="typo"), (), "azure.tenantld' is unknown", "did you mean"),
        (lambda r: None, ("aws:region",), "'aws:region' belongs to the aws provider", "pulumi config rm aws:region"),
        # Flexible server: fixed Premium SSD sizes; Burstable excludes HA and read replicas.
        (lambda r: r["azure"].update(postgresStorageGb=100), (), "azure.postgresStorageGb", "128"),
        (lambda r: r["azure"].update(postgresSku="Standard_B2s"), (), "azure.postgresSku", "pulumi config set"),
        (lambda r: r["azure"].update(redisCapacity=5), (), "azure.redisCapacity", "pulumi config set"),
    ],
)
def test_a_bad_azure_config_names_the_key_and_the_fix(change, others, key, fix):
    raw = copy.deepcopy(_raw("dr-azure"))
    change(raw)
    message = _error(raw, others)
    assert key in message and fix in message and "\n" not in message, message


def test_an_aws_stack_refuses_azure_settings():
    raw = {k[len(P) :]: v for k, v in load_stack_config("prod").items() if k.startswith(P) and "kubeconfig" not in k}
    assert "azure-native:location" in _error(raw, ["aws:region", "azure-native:location"])
    raw["azure"] = {
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "tenantId": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
    }
    assert "pulumi config rm azure" in _error(raw, ["aws:region"])


def test_a_locked_immutability_policy_cannot_be_asked_for_without_the_lock():
    raw = copy.deepcopy(_raw("dr-azure"))
    raw.update(tier="staging", objectives=None)
    raw.pop("objectives")
    raw["azure"]["immutability"] = "locked"
    assert "vaultLock is off" in _error(raw)
    raw["azure"]["immutability"] = "unlocked"
    raw["tier"] = "prod"
    cfg = parse(raw)
    assert cfg.locked and not cfg.immutability_locked  # the documented first step of a locked site


def test_the_azure_topology_has_geo_restore_and_aws_does_not():
    """Azure's geo-redundant backups are a recovery source of their own (drplan.recovery,
    "Backup and restore": up to one hour of RPO, no point in time); AWS topologies have none."""
    from drplan.recovery import GEO_BACKUP_REPLICATION_DELAY, recovery_sources

    azure = parse(_raw("prod-azure")).topology
    aws = load_stack_config("prod")
    aws_raw = {k[len(P) :]: v for k, v in aws.items() if k.startswith(P) and "kubeconfig" not in k}
    assert azure.geo_backup and not parse(aws_raw).topology.geo_backup
    geo = next(s for s in recovery_sources(azure) if s.name == "geo-restore (paired region)")
    assert geo.rpo == GEO_BACKUP_REPLICATION_DELAY and geo.survives_region_loss and not geo.point_in_time
