"""The data tier of a site: PostgreSQL (primary or warm standby), Redis, credentials.

prod: the primary database, its credentials (replicated into the DR region under the dr
stack's secrets key), the cache.
dr:   cross-region automated-backup replication and the read replica of the primary
(both under a DR-region key), promoted on `activated: true`; its own cache.
"""

from __future__ import annotations

import pulumi

from components.aws.database import (
    DatabaseNetwork,
    PostgresPrimary,
    PostgresPrimaryArgs,
    PostgresStandby,
    PostgresStandbyArgs,
)
from components.aws.kms import CustomerKey, CustomerKeyArgs
from components.aws.network import SiteNetwork
from components.aws.redis import RedisCache, RedisCacheArgs
from components.aws.secrets import GeneratedSecret, GeneratedSecretArgs, SecretReplica, replica_arn
from infra.site import Site

BACKUP_TAG = {"backup": "true"}


def _key(site: Site, purpose: str, description: str) -> CustomerKey:
    key = CustomerKey(
        site.name(f"{purpose}-key"),
        CustomerKeyArgs(
            region=site.region,
            description=f"Post Ou Cancer {description} ({site.cfg.role.value} site, {site.region})",
        ),
    )
    site.parts[f"kms.{purpose}"] = key
    return key


def build(site: Site) -> None:
    cfg = site.cfg
    network: SiteNetwork = site.parts["network"]
    db_key = _key(site, "database", "database storage, Performance Insights and replicated backups")
    secrets_key = _key(site, "secrets", "credentials in Secrets Manager")
    cache_key = _key(site, "redis", "cache at rest")
    db_net = DatabaseNetwork(subnet_ids=network.private_subnet_ids, security_group_ids=[network.database_sg.id])
    retention = cfg.retention_policy
    tags = {"postoucancer:stack": site.stack}

    if site.is_primary:
        _primary_database(site, db_key, secrets_key, db_net, tags)
    else:
        _standby_database(site, db_key, db_net, tags)
        site.export("drSecretsKmsKeyArn", secrets_key.arn)

    # The cache is per site and regenerable: each site has its own, with its own token.
    token = GeneratedSecret(
        site.name("redis-auth"),
        GeneratedSecretArgs(region=site.region, kms_key=secrets_key, description="Redis AUTH token", tags=tags),
    )
    redis = RedisCache(
        site.name("redis"),
        RedisCacheArgs(
            region=site.region,
            kms_key=cache_key,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.redis_sg.id],
            auth_token=token.password,
            node_type=cfg.redis.node_type,
            replicas=cfg.redis.replicas,
            snapshot_retention_days=retention.redis.days,
            physical_name=f"{site.stack}-redis",
            tags=tags,
        ),
    )
    site.parts["redis"] = redis
    site.parts["secrets.redis"] = token
    site.export("redisEndpoint", redis.group.primary_endpoint_address)
    site.export("redisSecretArn", token.arn)


def warn_if_peer_disagrees(site: Site, output: str, field: str, mine: object, key: str) -> None:
    """The objectives table of one site describes both: warn when the peer declares otherwise."""
    theirs = site.peer.get(output)
    if theirs is None:
        return

    def check(value: object) -> None:
        if isinstance(value, dict) and field in value and value[field] != mine:
            pulumi.log.warn(
                f"config key '{key}' is {mine} here but {value[field]} on peer stack '{site.peer.name}': the "
                f"objectives table assumes {mine}; set the same value on both stacks"
            )

    pulumi.Output.from_input(theirs).apply(check)


def _primary_database(site: Site, db_key, secrets_key, db_net: DatabaseNetwork, tags: dict[str, str]) -> None:
    cfg = site.cfg
    dr_key = site.peer.get("drSecretsKmsKeyArn")
    credentials = GeneratedSecret(
        site.name("database-credentials"),
        GeneratedSecretArgs(
            region=site.region,
            kms_key=secrets_key,
            description="PostgreSQL master credentials (replicated to the DR region)",
            fields={"username": "postoucancer_admin", "engine": "postgres", "port": 5432, "dbname": cfg.database.name},
            replica=SecretReplica(region=cfg.peer_region, kms_key_arn=dr_key) if dr_key is not None else None,
            tags=tags,
        ),
    )
    db = PostgresPrimary(
        site.name("database"),
        PostgresPrimaryArgs(
            region=site.region,
            kms_key=db_key,
            network=db_net,
            password=credentials.password,
            backup_retention_days=cfg.retention_policy.wal.days,
            instance_class=cfg.database.instance_class,
            allocated_storage_gb=cfg.database.allocated_storage_gb,
            engine_version=cfg.database.engine_version,
            db_name=cfg.database.name,
            username="postoucancer_admin",
            physical_name=f"{site.stack}-database",
            tags={**tags, **BACKUP_TAG, "purpose": "database"},
        ),
    )
    site.parts["database"] = db
    site.parts["secrets.database"] = credentials
    # This stack's objectives table assumes the dr stack's warm standby as configured here.
    warn_if_peer_disagrees(site, "database", "warmStandby", cfg.database.warm_standby, "database.warmStandby")
    site.export("databaseInstanceArn", db.arn)
    site.export("databaseEndpoint", db.instance.address)
    site.export("databaseSecretArn", credentials.arn)
    site.export(
        "database",
        {
            "role": "primary",
            "multiAz": True,
            "credentialsReplicatedTo": cfg.peer_region if dr_key is not None else None,
        },
    )


def _standby_database(site: Site, db_key, db_net: DatabaseNetwork, tags: dict[str, str]) -> None:
    cfg = site.cfg
    source = site.peer.get("databaseInstanceArn")
    standby = PostgresStandby(
        site.name("database"),
        PostgresStandbyArgs(
            region=site.region,
            kms_key=db_key,
            network=db_net,
            source_instance_arn=source,
            backup_retention_days=cfg.retention_policy.wal.days,
            standby_instance_class=cfg.database.standby_instance_class or cfg.database.instance_class,
            promoted_instance_class=cfg.database.instance_class,
            warm_standby=cfg.database.warm_standby,
            promote=cfg.activated,
            engine_version=cfg.database.engine_version,
            physical_name=f"{site.stack}-database",
            tags={**tags, "purpose": "database"},
        ),
    )
    site.parts["database"] = standby
    if standby.replica is not None:
        site.export("replicaInstanceArn", standby.replica.arn)
        site.export("databaseEndpoint", standby.replica.address)
    if standby.backups is not None:
        site.export("replicatedBackupsArn", standby.backups.id)
    primary_secret = site.peer.get("databaseSecretArn")
    if primary_secret is not None:
        # The replica of the prod stack's secret, readable here with the primary region gone.
        site.export(
            "databaseSecretArn",
            pulumi.Output.from_input(primary_secret).apply(lambda a: replica_arn(a, cfg.peer_region, site.region)),
        )
    site.export(
        "database",
        {
            "role": "primary (promoted)"
            if cfg.activated and standby.replica
            else "warm-standby"
            if standby.replica
            else "replicated backups only",
            "warmStandby": cfg.database.warm_standby,
            "crossRegionPitr": standby.backups is not None,
        },
    )
