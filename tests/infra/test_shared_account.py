"""Two stacks in one account (issue 12, point 4): prod and staging (and their DR stacks) recorded
as one account sees them. AWS names are unique per account and region for these resource types
(KMS aliases: "The alias name must be unique in the account and Region", AWS KMS CreateAlias; S3
bucket names globally; RDS identifiers, ElastiCache groups, Backup vaults and restore-testing
plans, Lambda functions, schedules, ECR repositories, SSM parameters, Secrets Manager names per
account and region), and some resources are one per account and region (AWS Backup
UpdateRegionSettings, ECR PutReplicationConfiguration replace the whole setting)."""

from collections import Counter

import pytest

from infra.mockrun import run_pair

# type -> the input holding the physical name AWS requires to be unique (absent: Pulumi autonames it).
PHYSICAL_NAME = {
    "aws:kms/alias:Alias": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:rds/instance:Instance": "identifier",
    "aws:rds/instance:Instance#snapshot": "finalSnapshotIdentifier",
    "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId",
    "aws:elasticache/replicationGroup:ReplicationGroup#snapshot": "finalSnapshotIdentifier",
    "aws:backup/vault:Vault": "name",
    "aws:backup/plan:Plan": "name",
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": "name",
    "aws:lambda/function:Function": "name",
    "aws:scheduler/schedule:Schedule": "name",
    "aws:ecr/repository:Repository": "name",
    "aws:ssm/parameter:Parameter": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudtrail/trail:Trail": "name",
}
SINGLETONS = ("aws:backup/regionSettings:RegionSettings", "aws:ecr/replicationConfiguration:ReplicationConfiguration",
              "aws:backup/globalSettings:GlobalSettings")


@pytest.fixture(scope="module")
def account(pair_prod, pair_staging):
    return [pair_prod.primary, pair_prod.dr, pair_staging.primary, pair_staging.dr]


def _physical_names(run):
    for r in run.resources:
        for key, field in PHYSICAL_NAME.items():
            if key.split("#")[0] == r.type and r.inputs.get(field):
                # Route 53 / IAM are global; the rest are per region (S3 names are global too).
                scope = "global" if r.type == "aws:s3/bucket:Bucket" else r.region
                yield (r.type, scope, r.inputs[field]), r.name


def test_no_physical_name_collides_between_stacks_of_one_account(account):
    owners: dict = {}
    for run in account:
        for key, name in _physical_names(run):
            owners.setdefault(key, []).append(f"{run.stack}:{name}")
    collisions = {k: v for k, v in owners.items() if len(v) > 1}
    assert collisions == {}
    assert any(k[0] == "aws:kms/alias:Alias" for k in owners), "the test sees the aliases"


def test_each_account_singleton_has_one_owner_per_region(account):
    per_region = Counter((r.type, r.region) for run in account for r in run.resources if r.type in SINGLETONS)
    assert per_region and max(per_region.values()) == 1, per_region
    owners = {run.stack for run in account for r in run.resources if r.type in SINGLETONS}
    assert owners == {"prod", "dr"}, "staging shares prod's account: it must not overwrite its settings"


def test_the_backup_region_opt_in_is_managed_explicitly(pair_prod):
    for run in (pair_prod.primary, pair_prod.dr):
        settings = run.one("aws:backup/regionSettings:RegionSettings")
        assert settings.region == run.outputs["site"]["region"]
        assert settings.inputs["resourceTypeOptInPreference"] == {"RDS": True, "S3": True}


def test_a_staging_account_of_its_own_can_own_its_settings(pair_staging):
    run = run_pair("staging", "staging-dr", primary_overrides={"postoucancer-dr:ownsAccountSettings": True}).primary
    assert run.one("aws:backup/regionSettings:RegionSettings").region == "eu-west-3"
