"""Redis on ElastiCache (issue 3, point 5)."""

from datetime import datetime

import pytest

from components.aws.redis import ELASTICACHE_MAX_SNAPSHOT_RETENTION_DAYS
from drplan.retention import RETENTION, Tier
from drplan.schedules import SCHEDULES
from infra.mockrun import load_stack_config

P = "postoucancer-dr:"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def _window(text):
    return [datetime.strptime(t[-5:], "%H:%M") for t in text.split("-")]


@pytest.mark.parametrize("stack,region,tier", [("prod", "eu-west-3", Tier.PROD), ("dr", "eu-central-1", Tier.PROD)])
def test_replication_group_is_highly_available_encrypted_and_snapshotted(request, stack, region, tier):
    run = request.getfixturevalue(stack)
    g = run.one(GROUP)
    i = g.inputs
    key = run.one("aws:kms/key:Key", "redis-key")
    assert g.region == key.region == region and g.protect
    assert i["automaticFailoverEnabled"] and i["multiAzEnabled"]
    redis_cfg = load_stack_config(stack).get(P + "redis", {})
    assert i["numCacheClusters"] == 1 + redis_cfg.get("replicas", 1) >= 2
    assert i["atRestEncryptionEnabled"] and i["kmsKeyId"] == key.outputs["arn"]
    assert i["transitEncryptionEnabled"] and i["authToken"]
    assert i["snapshotRetentionLimit"] == RETENTION[tier].redis.days <= ELASTICACHE_MAX_SNAPSHOT_RETENTION_DAYS
    assert i["finalSnapshotIdentifier"]


def test_snapshot_lands_by_the_daily_backup_slot_outside_maintenance(prod):
    i = prod.one(GROUP).inputs
    start, end = _window(i["snapshotWindow"])
    assert end.strftime("%H:%M") == SCHEDULES.full_backup_at_utc.strftime("%H:%M")
    m_start, m_end = _window(i["maintenanceWindow"])
    assert m_end <= start or m_start >= end


def test_auth_token_is_the_generated_secret(prod):
    import json

    version = prod.one("aws:secretsmanager/secretVersion:SecretVersion", "primary-redis-auth")
    assert json.loads(version.inputs["secretString"])["password"] == prod.one(GROUP).inputs["authToken"]
    secret = prod.one("aws:secretsmanager/secret:Secret", "primary-redis-auth")
    assert secret.inputs["kmsKeyId"] == prod.one("aws:kms/key:Key", "primary-secrets-key").outputs["arn"]
    assert prod.outputs["redisSecretArn"] == secret.outputs["arn"]


def test_cache_is_only_in_private_subnets(prod):
    subnets = prod.one("aws:elasticache/subnetGroup:SubnetGroup").inputs["subnetIds"]
    assert sorted(subnets) == sorted(s.id for s in prod.of_type("aws:ec2/subnet:Subnet"))


def test_staging_is_small(staging):
    assert staging.one(GROUP).inputs["nodeType"] == load_stack_config("staging")[P + "redis"]["nodeType"]
    assert staging.one(GROUP).inputs["snapshotRetentionLimit"] == RETENTION[Tier.STAGING].redis.days
