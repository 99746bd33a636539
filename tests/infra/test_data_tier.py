"""The data tier against the DR model: each Topology flag the objectives table is computed
from is realised by resources (and only then), and the offline plan shows the tier."""

import pytest

from drplan.retention import RETENTION
from infra.config import parse
from infra.mockrun import load_stack_config, run_stack
from infra.plan import render_text

P = "postoucancer-dr:"
PLAN = "aws:backup/plan:Plan"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"


def _topology(stack):
    raw = {k[len(P) :]: v for k, v in load_stack_config(stack).items() if k.startswith(P) and k != P + "kubeconfig"}
    return parse(raw).topology


@pytest.mark.parametrize("pair", ["pair_prod", "pair_staging"])
def test_every_topology_flag_is_realised_by_resources(request, pair):
    run = request.getfixturevalue(pair)
    primary, dr = run.primary, run.dr
    topology = _topology(primary.stack)
    assert topology == _topology(dr.stack)  # both sites describe the same topology
    rules = primary.one(PLAN).inputs["rules"]
    db = primary.one("aws:rds/instance:Instance")
    if topology.point_in_time_recovery:
        assert [r for r in rules if r["enableContinuousBackup"]]
        assert db.inputs["backupRetentionPeriod"] == RETENTION[topology.tier].wal.days
    if topology.cross_region_pitr:
        assert dr.one(REPLICATION).inputs["sourceDbInstanceArn"] == db.outputs["arn"]
    replicas = [r for r in dr.of_type("aws:rds/instance:Instance") if r.inputs.get("replicateSourceDb")]
    assert bool(replicas) == topology.warm_standby
    if topology.dr_copies:
        assert all(r["copyActions"][0]["destinationVaultArn"] == dr.outputs["drBackupVaultArn"] for r in rules)
    # vault_locked makes both the same-region and the DR recovery points immutable in the model.
    assert bool(primary.of_type(LOCK)) == bool(dr.of_type(LOCK)) == topology.vault_locked


def test_a_peer_that_disagrees_with_the_objectives_table_is_reported(pair_prod):
    peer = dict(pair_prod.dr.outputs)
    peer["database"] = {**peer["database"], "warmStandby": False}
    peer["backupVault"] = {**peer["backupVault"], "locked": False}
    run = run_stack("prod", peer_outputs=peer)
    warnings = [m for level, m in run.logs if level == "warning"]
    assert any("database.warmStandby" in m and "organization/postoucancer-dr/dr" in m for m in warnings), warnings
    assert any("vaultLock" in m for m in warnings), warnings
    # The committed stacks plan the data tier in a VPC of its own (no cluster VPC configured): that
    # warning stands until a real network is configured; nothing else may be warned about.
    from infra.aws.app import UNREACHABLE

    assert [m for level, m in pair_prod.primary.logs if level == "warning"] == [UNREACHABLE]


def test_offline_plan_shows_the_data_tier_and_its_cross_region_links(pair_prod):
    text = render_text({"prod": pair_prod})
    for group in (
        "SiteNetwork primary-network",
        "PostgresPrimary primary-database",
        "GeneratedSecret primary-database-credentials",
        "RedisCache primary-redis",
        "BackupVault primary-vault",
        "GfsBackupPlan primary-backup",
        "PostgresStandby dr-database",
        "BackupVault dr-vault",
    ):
        assert f"\n  {group}\n" in text, group
    assert "prod:primary-backup → dr:dr-vault" in text
    assert "dr:dr-database → prod:primary-database" in text
    assert "dr:dr-database-backups → prod:primary-database" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("datacentre-loss"))
    assert "promote warm standby" in row and pair_prod.dr.one("aws:rds/instance:Instance").inputs["replicateSourceDb"]
