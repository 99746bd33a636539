"""PostgreSQL (issue 3, points 2, 3, 7): the primary in prod, replicated automated backups
and the warm standby in dr, promotion on activation; numbers traced to drplan.

The instances' security settings live in components/aws/database.py (`_hardened`) and
the policy pack's RDS rules check them: here, that the rules pass on every stack and
catch each hardened setting turned off on the real recorded instance. The tests below
check wiring (keys, regions, networks, the replica's source) and derivations (windows
from the schedule, retention from drplan), not the settings one by one."""

import dataclasses
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from components.aws import database
from components.aws.backup_plan import SELECTION_TAG
from components.aws.database import RDS_MAX_BACKUP_RETENTION_DAYS, check_retention
from drplan.retention import RETENTION, Tier
from drplan.schedules import SCHEDULES
from drplan.thresholds import BACKUP_WINDOW_GAP
from infra.config import parse
from infra.mockrun import StackRun, load_stack_config, run_stack
from infra.policy_check import evaluate
from policy.rules import rds as rds_rules

P = "postoucancer-dr:"
RDS = "aws:rds/instance:Instance"
BACKUPS = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
KEY = "aws:kms/key:Key"


def _window(text):
    start, end = (datetime.strptime(t[-5:], "%H:%M") for t in text.split("-"))
    return start, end


def _key_region(arn):
    return arn.split(":")[3]


@pytest.fixture(scope="module")
def activated(pair_prod):
    return run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={P + "activated": True})


def test_primary_is_wired_to_its_site_key_network_and_backup_selection(prod):
    db = prod.one(RDS, "primary-database")
    i = db.inputs
    key = prod.one(KEY, "primary-database-key").outputs["arn"]
    assert db.region == "eu-west-3" and db.protect
    assert i["kmsKeyId"] == i["performanceInsightsKmsKeyId"] == key
    subnets = prod.one("aws:rds/subnetGroup:SubnetGroup", "primary-database")
    assert i["dbSubnetGroupName"] == subnets.outputs["name"]
    private = {s.id for s in prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert private and set(subnets.inputs["subnetIds"]) == private
    (sg,) = i["vpcSecurityGroupIds"]
    assert sg in {g.id for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup")}
    assert i["finalSnapshotIdentifier"].startswith("prod-"), "physical names carry the stack (shared accounts)"
    key_name, key_value = SELECTION_TAG
    assert i["tags"][key_name] == key_value, "the AWS Backup selection picks the database by this tag"


RDS_RULES = {p.name for p in rds_rules.POLICIES}


def test_the_rds_rules_pass_on_every_stack(prod, dr, staging, staging_dr, activated):
    for run in (prod, dr, staging, staging_dr, activated):
        assert run.of_type(RDS), run.stack
        assert [str(v) for v in evaluate(run, rds_rules.POLICIES)] == [], run.stack


def _turned_off(run: StackRun, name: str, **changes) -> StackRun:
    """The recorded run with one instance's settings changed (inputs and outputs alike)."""
    resources = [
        dataclasses.replace(r, inputs={**r.inputs, **changes}, outputs={**r.outputs, **changes})
        if r.type == RDS and r.name == name
        else r
        for r in run.resources
    ]
    return dataclasses.replace(run, resources=resources)


HARDENED_OFF = [
    ("storageEncrypted", False, {"rds-encrypted"}),
    ("kmsKeyId", "alias/aws/rds", {"rds-encrypted"}),
    ("multiAz", False, {"rds-multi-az"}),
    ("deletionProtection", False, {"rds-deletion-protection"}),
    ("publiclyAccessible", True, {"rds-not-public"}),
    ("backupRetentionPeriod", 1, {"rds-backup-retention"}),
    ("parameterGroupName", None, {"rds-tls-forced", "rds-connections-logged"}),
    ("iamDatabaseAuthenticationEnabled", False, {"rds-iam-auth"}),
    ("performanceInsightsKmsKeyId", None, {"rds-performance-insights-encrypted"}),
    ("performanceInsightsEnabled", False, {"rds-performance-insights-enabled"}),
    ("skipFinalSnapshot", True, {"rds-deletion-keeps-backups"}),
    ("finalSnapshotIdentifier", None, {"rds-deletion-keeps-backups"}),
    ("deleteAutomatedBackups", True, {"rds-deletion-keeps-backups"}),
    ("enabledCloudwatchLogsExports", ["upgrade"], {"rds-logs-exported"}),
    ("monitoringInterval", 0, {"rds-enhanced-monitoring"}),
    ("monitoringRoleArn", None, {"rds-enhanced-monitoring"}),
]


@pytest.mark.parametrize(("setting", "value", "rules"), HARDENED_OFF, ids=[c[0] for c in HARDENED_OFF])
def test_a_hardened_setting_turned_off_on_the_primary_is_reported(prod, setting, value, rules):
    broken = _turned_off(prod, "primary-database", **{setting: value})
    found = evaluate(broken, rds_rules.POLICIES)
    assert {v.policy for v in found} == rules
    assert {v.urn for v in found} == {prod.one(RDS, "primary-database").urn}


@pytest.mark.parametrize(
    ("setting", "value", "rule"),
    [
        ("storageEncrypted", False, "rds-encrypted"),
        ("deletionProtection", False, "rds-deletion-protection"),
        ("publiclyAccessible", True, "rds-not-public"),
        ("deleteAutomatedBackups", True, "rds-deletion-keeps-backups"),
    ],
)
def test_the_standby_is_held_to_the_same_rules(dr, setting, value, rule):
    found = evaluate(_turned_off(dr, "dr-database", **{setting: value}), rds_rules.POLICIES)
    assert {v.policy for v in found} == {rule}


def test_the_rules_cover_every_setting_the_component_hardens():
    """Each setting of components/aws/database.py's _hardened() that matters for safety has a
    rule that catches it turned off (above); the rest are wiring (tested here) or cost."""
    checked = {setting for setting, _, _ in HARDENED_OFF}
    wiring = {"dbSubnetGroupName", "vpcSecurityGroupIds", "backupWindow", "maintenanceWindow"}
    operational = {"storageType", "copyTagsToSnapshot", "performanceInsightsRetentionPeriod", "autoMinorVersionUpgrade"}
    args = SimpleNamespace(
        kms_key=SimpleNamespace(arn="k"), network=SimpleNamespace(security_group_ids=[]), physical_name="x"
    )
    owner = SimpleNamespace(
        subnet_group=SimpleNamespace(name="s"),
        parameter_group=SimpleNamespace(name="p"),
        monitoring_role=SimpleNamespace(arn="m"),
    )
    hardened = {_camel(k) for k in database._hardened("db", args, owner, 7)}
    assert hardened - checked - wiring - operational == set()
    assert {rule for _, _, rules in HARDENED_OFF for rule in rules} == RDS_RULES, "every RDS rule shown to catch"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.capitalize() for w in rest)


def test_primary_keeps_point_in_time_recovery_as_long_as_the_model_says(prod, staging):
    for run, tier in ((prod, Tier.PROD), (staging, Tier.STAGING)):
        days = run.one(RDS).inputs["backupRetentionPeriod"]
        assert days == RETENTION[tier].wal.days <= RDS_MAX_BACKUP_RETENTION_DAYS


def test_backup_window_ends_before_the_daily_slot_and_misses_maintenance(prod):
    i = prod.one(RDS).inputs
    start, end = _window(i["backupWindow"])
    slot = datetime.strptime(SCHEDULES.full_backup_at_utc.strftime("%H:%M"), "%H:%M")
    assert end <= slot - BACKUP_WINDOW_GAP and end - start >= timedelta(minutes=30)
    m_start, m_end = _window(i["maintenanceWindow"])
    assert m_end <= start or m_start >= end


def test_parameter_group_matches_the_engine_and_is_the_one_in_use(prod, dr):
    # What it sets (TLS, connection logging) is the policy pack's to check (rds-tls-forced,
    # rds-connections-logged, above); that it fits the configured engine is wiring.
    for run in (prod, dr):
        pg = run.one("aws:rds/parameterGroup:ParameterGroup")
        engine = load_stack_config(run.stack)[P + "database"].get("engineVersion", "15")
        assert pg.inputs["family"] == f"postgres{engine}"
        db = run.one(RDS)
        assert db.inputs["parameterGroupName"] == pg.outputs["name"]


def test_dr_replicates_automated_backups_under_a_dr_region_key(prod, dr):
    rep = dr.one(BACKUPS)
    key = dr.one(KEY, "dr-database-key")
    assert rep.region == "eu-central-1" and rep.protect
    assert rep.inputs["sourceDbInstanceArn"] == prod.outputs["databaseInstanceArn"]
    assert rep.inputs["kmsKeyId"] == key.outputs["arn"] and _key_region(rep.inputs["kmsKeyId"]) == "eu-central-1"
    assert rep.inputs["retentionPeriod"] == RETENTION[Tier.PROD].wal.days


def test_warm_standby_is_a_cross_region_replica_under_a_dr_region_key(prod, dr):
    replica = dr.one(RDS, "dr-database")
    i = replica.inputs
    assert replica.region == "eu-central-1" and replica.protect
    assert i["replicateSourceDb"] == prod.outputs["databaseInstanceArn"]
    assert _key_region(prod.outputs["databaseInstanceArn"]) == "eu-west-3"
    assert i["kmsKeyId"] == dr.one(KEY, "dr-database-key").outputs["arn"]
    assert _key_region(i["kmsKeyId"]) == "eu-central-1", "a replica's key must live in the replica's region"
    assert i["performanceInsightsKmsKeyId"] == i["kmsKeyId"]
    # A replica inherits these from its source; setting them would fail (or replace on promotion).
    assert not {"username", "password", "dbName", "engine", "engineVersion"} & set(i)
    db_cfg = load_stack_config("dr")[P + "database"]
    assert i["instanceClass"] == db_cfg.get("standbyInstanceClass", db_cfg["instanceClass"])
    assert dr.outputs["replicaInstanceArn"] == replica.outputs["arn"]
    assert dr.outputs["databaseEndpoint"] == replica.outputs["address"]


def test_dr_data_resources_use_dr_region_keys_only(dr, staging_dr):
    for run in (dr, staging_dr):
        for r in run.resources:
            for k in ("kmsKeyId", "kmsKeyArn", "performanceInsightsKmsKeyId"):
                if k in r.inputs:
                    assert _key_region(r.inputs[k]) == "eu-central-1", (r.name, k)


def test_activation_promotes_the_replica_in_place(dr, activated):
    before, after = dr.one(RDS, "dr-database"), activated.one(RDS, "dr-database")
    assert after.urn == before.urn and after.protect and after.inputs["deletionProtection"]
    assert "replicateSourceDb" not in after.inputs or after.inputs["replicateSourceDb"] is None
    changed = {k for k in set(before.inputs) | set(after.inputs) if before.inputs.get(k) != after.inputs.get(k)}
    assert "replicateSourceDb" in changed
    # Promoted, it takes a final snapshot when deleted like any primary; as a replica it cannot.
    assert changed <= {"replicateSourceDb", "multiAz", "instanceClass", "tags", "skipFinalSnapshot",
                       "finalSnapshotIdentifier"}, changed
    assert before.inputs["skipFinalSnapshot"] is True and not before.inputs.get("finalSnapshotIdentifier")
    assert after.inputs["skipFinalSnapshot"] is False and after.inputs["finalSnapshotIdentifier"]
    # Promotion alone keeps the standby's size and single AZ (nothing waits for a conversion)...
    assert after.inputs["multiAz"] is False and after.inputs["instanceClass"] == before.inputs["instanceClass"]
    # Backups keep running across promotion: no backup setting changes.
    assert (
        after.inputs["backupRetentionPeriod"] == before.inputs["backupRetentionPeriod"] == RETENTION[Tier.PROD].wal.days
    )
    assert activated.outputs["database"]["role"] == "primary (promoted)"
    # Promoted, it is tagged for the DR site's own backup plan (declared before activation).
    key, value = SELECTION_TAG
    assert after.inputs["tags"][key] == value != before.inputs["tags"].get(key)
    backup_types = {t for t in dr.types if t.startswith("aws:backup/")}
    assert {r.urn for r in dr.resources if r.type in backup_types} == {
        r.urn for r in activated.resources if r.type in backup_types
    }, "activation creates or deletes no backup resource"


def test_activation_replaces_or_deletes_nothing_stateful(dr, activated):
    stateful = {r.urn: r for r in dr.resources if r.protect}
    after = {r.urn: r for r in activated.resources}
    assert stateful and set(stateful) <= set(after)
    assert all(after[u].protect for u in stateful)
    assert activated.one(BACKUPS).inputs == dr.one(BACKUPS).inputs


def test_without_warm_standby_dr_keeps_replicated_backups_only(pair_prod):
    run = run_stack(
        "dr",
        peer_outputs=pair_prod.primary.outputs,
        overrides={P + "database": {**load_stack_config("dr")[P + "database"], "warmStandby": False}},
    )
    assert not run.of_type(RDS)
    assert run.one(BACKUPS).inputs["sourceDbInstanceArn"] == pair_prod.primary.outputs["databaseInstanceArn"]
    # ... and the config's topology, which the objectives table is computed from, says so.
    raw = {k[len(P) :]: v for k, v in load_stack_config("dr").items() if k.startswith(P) and k != P + "kubeconfig"}
    raw["database"] = {**raw["database"], "warmStandby": False}
    assert parse(raw).topology.warm_standby is False
    assert run.outputs["database"]["role"] == "replicated backups only"


def test_first_dr_pass_is_partial_until_prod_exists(pair_prod):
    first = pair_prod.bootstrap[0]
    assert not first.of_type(RDS) and not first.of_type(BACKUPS)
    assert not first.of_type("aws:backup/plan:Plan"), "the DR plan waits for the prod vault to copy to"
    assert "databaseInstanceArn" in first.outputs["nextStep"]


def test_staging_differs_from_prod_only_in_size_and_its_own_resources(prod, staging):
    a, b = prod.one(RDS).inputs, staging.one(RDS).inputs
    changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    size = {"instanceClass", "allocatedStorage", "maxAllocatedStorage"}
    own = {"kmsKeyId", "performanceInsightsKmsKeyId", "dbSubnetGroupName", "vpcSecurityGroupIds", "parameterGroupName"}
    per_stack = {"password", "finalSnapshotIdentifier", "tags", "monitoringRoleArn"}
    assert changed <= size | own | per_stack, changed - size - own - per_stack
    staging_cfg = load_stack_config("staging")[P + "database"]
    assert b["instanceClass"] == staging_cfg["instanceClass"] != a["instanceClass"]
    assert b["allocatedStorage"] == staging_cfg["allocatedStorageGb"]
    # ... and what differs per site is staging's own: its key, its network, its parameter group.
    assert b["kmsKeyId"] == staging.one(KEY, "primary-database-key").outputs["arn"]
    assert b["parameterGroupName"] == staging.one("aws:rds/parameterGroup:ParameterGroup").outputs["name"]
    assert b["dbSubnetGroupName"] == staging.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]


def test_rds_retention_limit_is_enforced():
    assert check_retention(RETENTION[Tier.PROD].wal.days) == RETENTION[Tier.PROD].wal.days
    for bad in (0, RDS_MAX_BACKUP_RETENTION_DAYS + 1):
        with pytest.raises(ValueError, match="RDS keeps automated backups"):
            check_retention(bad)


def test_activation_promotes_first_then_converts_to_multi_az_at_production_size(pair_prod, activated):
    """AWS's order (RDS user guide, "Promoting a read replica": promote, then modify the new
    primary): the provider otherwise promotes and converts in one update, and everything that
    depends on the instance waits for the Multi-AZ conversion on the way back to service. The
    conversion is the second step, `activationComplete: true`, and changes nothing else."""
    from infra.activation import diff_completion

    completion = {(c.type, c.name): c for c in diff_completion(pair_prod)}
    assert set(completion) == {(RDS, "dr-database")}, completion
    paths = completion[(RDS, "dr-database")].paths
    assert "multiAz" in paths and paths <= {"multiAz", "instanceClass"}  # the class when a smaller standby
    complete = run_stack("dr", peer_outputs=pair_prod.primary.outputs,
                         overrides={P + "activated": True, P + "activationComplete": True})
    db = complete.one(RDS, "dr-database")
    assert db.inputs["multiAz"] is True
    assert db.inputs["instanceClass"] == load_stack_config("dr")[P + "database"]["instanceClass"]
    assert "replicateSourceDb" not in db.inputs or db.inputs["replicateSourceDb"] is None


def test_completion_before_promotion_is_refused():
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="activationComplete"):
        run_stack("dr", overrides={P + "activationComplete": True})
