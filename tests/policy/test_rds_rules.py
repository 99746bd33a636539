"""RDS rules: a bad database is caught, a good one passes."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from drplan.retention import RETENTION, Tier
from policy.rules import rds
from tests.policy.harness import ACCOUNT, DR_REGION, PRIMARY_REGION, doc, names, violations

WAL_DAYS = RETENTION[Tier.PROD].wal.days
PRIMARY_ARN = f"arn:aws:rds:{PRIMARY_REGION}:{ACCOUNT}:db:primary-db"


def database(
    *,
    replica: bool = False,
    force_ssl: str | None = "1",
    log_connections: str = "1",
    parameter_group: bool = True,
    **overrides,
) -> None:
    region = DR_REGION if replica else PRIMARY_REGION
    key = aws.kms.Key("db-key", region=region, enable_key_rotation=True, policy=doc())
    pg = None
    if parameter_group:
        params = [{"name": "log_connections", "value": log_connections}, {"name": "log_disconnections", "value": "1"}]
        if force_ssl is not None:
            params.append({"name": "rds.force_ssl", "value": force_ssl})
        pg = aws.rds.ParameterGroup("db-params", region=region, family="postgres16", parameters=params)
    args: dict = {
        "region": region,
        "instance_class": "db.r6g.large",
        "storage_encrypted": True,
        "kms_key_id": key.arn,
        "deletion_protection": True,
        "publicly_accessible": False,
        "parameter_group_name": pg.name if pg is not None else None,
        "monitoring_interval": 60,
        "monitoring_role_arn": f"arn:aws:iam::{ACCOUNT}:role/rds-monitoring",
        "iam_database_authentication_enabled": True,
        "performance_insights_enabled": True,
        "performance_insights_kms_key_id": key.arn,
        "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"],
        "skip_final_snapshot": False,
        "final_snapshot_identifier": "db-final",
        "delete_automated_backups": False,
    }
    if replica:
        # RDS DeleteDBInstance: a read replica is deleted without a final snapshot.
        args.update(replicate_source_db=PRIMARY_ARN, skip_final_snapshot=True, final_snapshot_identifier=None)
    else:
        args.update(
            engine="postgres",
            allocated_storage=100,
            username="postoucancer",
            manage_master_user_password=True,
            multi_az=True,
            backup_retention_period=WAL_DAYS,
        )
    args.update(overrides)
    aws.rds.Instance("db", **args, opts=pulumi.ResourceOptions(protect=True))


@pytest.mark.parametrize(
    ("policy", "bad"),
    [
        (rds.rds_encrypted, {"storage_encrypted": False}),
        (rds.rds_encrypted, {"kms_key_id": None}),
        (rds.rds_encrypted, {"kms_key_id": "alias/aws/rds"}),
        (rds.rds_multi_az, {"multi_az": False}),
        (rds.rds_deletion_protection, {"deletion_protection": False}),
        (rds.rds_backup_retention, {"backup_retention_period": WAL_DAYS - 1}),
        (rds.rds_backup_retention, {"backup_retention_period": None}),
        (rds.rds_not_public, {"publicly_accessible": True}),
        (rds.rds_tls_forced, {"force_ssl": None}),
        (rds.rds_tls_forced, {"force_ssl": "0"}),
        (rds.rds_tls_forced, {"parameter_group": False}),
        (rds.rds_connections_logged, {"log_connections": "0"}),
        (rds.rds_connections_logged, {"parameter_group": False}),
        (rds.rds_performance_insights_encrypted, {"performance_insights_kms_key_id": None}),
        (rds.rds_performance_insights_encrypted, {"performance_insights_kms_key_id": "alias/aws/rds"}),
        (rds.rds_performance_insights_enabled, {"performance_insights_enabled": False}),
        (rds.rds_deletion_keeps_backups, {"skip_final_snapshot": True}),
        (rds.rds_deletion_keeps_backups, {"final_snapshot_identifier": None}),
        (rds.rds_deletion_keeps_backups, {"delete_automated_backups": None}),  # the provider deletes them
        (rds.rds_deletion_keeps_backups, {"delete_automated_backups": True}),
        (rds.rds_iam_auth, {"iam_database_authentication_enabled": False}),
        (rds.rds_logs_exported, {"enabled_cloudwatch_logs_exports": ["upgrade"]}),
        (rds.rds_logs_exported, {"enabled_cloudwatch_logs_exports": None}),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else "-".join(f"{k}={w}" for k, w in v.items()),
)
def test_rds_rule_catches_bad_database_and_passes_good_one(policy, bad):
    assert names(violations(policy, lambda: database(**bad))) == {"db"}
    assert violations(policy, database) == []


@pytest.mark.parametrize("policy", rds.POLICIES, ids=lambda p: p.name)
def test_a_good_cross_region_replica_passes(policy):
    dr = {"role": "dr", "tier": "prod"}
    assert violations(policy, lambda: database(replica=True), region=DR_REGION, site=dr) == []


def test_a_replica_that_asks_for_a_final_snapshot_is_refused():
    """RDS DeleteDBInstance: "FinalDBSnapshotIdentifier ... can't be specified when deleting a read
    replica" and SkipFinalSnapshot must be enabled (cloudposse/terraform-aws-rds-replica#9:
    InvalidParameterCombination). Such a replica could never be deleted or replaced."""
    dr = {"role": "dr", "tier": "prod"}
    for bad in ({"final_snapshot_identifier": "db-final"}, {"skip_final_snapshot": False}):
        found = violations(rds.rds_deletion_keeps_backups, lambda b=bad: database(replica=True, **b), region=DR_REGION,
                           site=dr)
        assert names(found) == {"db"} and "read replica" in found[0].message


def test_replica_must_be_encrypted_and_protected_like_the_primary():
    dr = {"role": "dr", "tier": "prod"}
    bad = lambda: database(replica=True, storage_encrypted=False, deletion_protection=False)  # noqa: E731
    assert names(violations(rds.rds_encrypted, bad, region=DR_REGION, site=dr)) == {"db"}
    assert names(violations(rds.rds_deletion_protection, bad, region=DR_REGION, site=dr)) == {"db"}


def test_multi_az_applies_to_the_primary_site_only():
    single = lambda: database(multi_az=False)  # noqa: E731  (e.g. the DR site after promotion)
    assert violations(rds.rds_multi_az, single, site={"role": "dr", "tier": "prod"}) == []
