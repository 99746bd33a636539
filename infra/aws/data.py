"""The data tier of a site: PostgreSQL (primary or warm standby), Redis, credentials.

prod: the primary database, its credentials (replicated into the DR region under the dr
stack's secrets key), the cache.
dr:   cross-region automated-backup replication and the read replica of the primary
(both under a DR-region key), promoted on `activated: true`; its own cache.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from components.aws.secret_rotation import PostgresRotation, PostgresRotationArgs
from components.aws.secrets import GeneratedSecret, GeneratedSecretArgs, SecretReplica, replica_arn
from drplan.names import BACKUP_TAG as BACKUP_TAG_PAIR
from drplan.names import PURPOSE_TAG_KEY
from infra.config import PROJECT, ConfigError
from infra.site import Site

BACKUP_TAG = dict([BACKUP_TAG_PAIR])


@dataclass(frozen=True)
class DataKeys:
    database: CustomerKey  # storage, Performance Insights, replicated automated backups
    secrets: CustomerKey  # Secrets Manager (database credentials, Redis AUTH token)
    redis: CustomerKey


@dataclass(frozen=True)
class DataTier:
    keys: DataKeys
    database: PostgresPrimary | PostgresStandby
    # prod: the generated master credentials; dr: None (it reads the replica of prod's).
    credentials: GeneratedSecret | None
    redis: RedisCache
    redis_token: GeneratedSecret

    @property
    def instance(self):
        """This site's own instance: the primary, or the DR replica (promoted on activation), if any."""
        return getattr(self.database, "instance", None) or getattr(self.database, "replica", None)

    @property
    def host(self) -> pulumi.Output[str] | None:
        return self.instance.address if self.instance is not None else None


def database_secret(site: Site, data: DataTier) -> tuple[pulumi.Input[str] | None, pulumi.Input[str]]:
    """The database credentials this site's clients read, and the key that decrypts them.

    prod: its own generated secret. dr: the replica of prod's secret in this region (readable
    with the primary region gone), once prod has exported it.
    """
    if data.credentials is not None:
        return data.credentials.arn, data.keys.secrets.arn
    arn = site.peer.get("databaseSecretArn")
    if arn is None:
        return None, data.keys.secrets.arn
    replica = pulumi.Output.from_input(arn).apply(lambda a: replica_arn(a, site.cfg.peer_region, site.region))
    return replica, data.keys.secrets.arn


def _key(site: Site, purpose: str, description: str) -> CustomerKey:
    return CustomerKey(
        site.name(f"{purpose}-key"),
        CustomerKeyArgs(
            region=site.region,
            description=f"Post Ou Cancer {description} ({site.cfg.role.value} site, {site.region})",
        ),
    )


def build(site: Site, network: SiteNetwork) -> DataTier:
    cfg = site.cfg
    keys = DataKeys(
        database=_key(site, "database", "database storage, Performance Insights and replicated backups"),
        secrets=_key(site, "secrets", "credentials in Secrets Manager"),
        redis=_key(site, "redis", "cache at rest"),
    )
    secrets_key = keys.secrets
    db_net = DatabaseNetwork(subnet_ids=network.private_subnet_ids, security_group_ids=[network.database_sg.id])
    retention = cfg.retention_policy

    credentials = None
    if site.is_primary:
        database, credentials = _primary_database(site, keys.database, secrets_key, db_net)
        _rotate(site, credentials, secrets_key, network)
    else:
        database = _standby_database(site, keys.database, db_net)
        site.export("drSecretsKmsKeyArn", secrets_key.arn)

    # The cache is per site and regenerable: each site has its own, with its own token.
    token = GeneratedSecret(
        site.name("redis-auth"),
        GeneratedSecretArgs(region=site.region, kms_key=secrets_key, description="Redis AUTH token"),
    )
    redis = RedisCache(
        site.name("redis"),
        RedisCacheArgs(
            region=site.region,
            kms_key=keys.redis,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.redis_sg.id],
            auth_token=token.password,
            node_type=cfg.redis.node_type,
            replicas=cfg.redis.replicas,
            snapshot_retention_days=retention.redis.days,
            physical_name=f"{site.stack}-redis",
        ),
    )
    site.export("redisEndpoint", redis.group.primary_endpoint_address)
    site.export("redisSecretArn", token.arn)
    tier = DataTier(keys, database, credentials, redis, token)
    if site.is_dr and (replica_secret := database_secret(site, tier)[0]) is not None:
        # The replica of the prod stack's secret, readable here with the primary region gone.
        site.export("databaseSecretArn", replica_secret)
    return tier


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


def _primary_database(
    site: Site, db_key: CustomerKey, secrets_key: CustomerKey, db_net: DatabaseNetwork
) -> tuple[PostgresPrimary, GeneratedSecret]:
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
            deferred=True,  # the host is written once the instance exists
        ),
    )
    replicate_from = _failback_source(site)
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
            # While it replicates the DR site's database during failback, that database is the
            # one written to and the DR site's plan protects it; promoted, this site's plan does.
            tags={PURPOSE_TAG_KEY: "database", **({} if replicate_from is not None else BACKUP_TAG)},
            generation=cfg.database.generation,
            replicate_from=replicate_from,
        ),
    )
    # The rotation function connects to the host the secret names.
    credentials.store({"host": db.instance.address})
    # This stack's objectives table assumes the dr stack's warm standby as configured here.
    warn_if_peer_disagrees(site, "database", "warmStandby", cfg.database.warm_standby, "database.warmStandby")
    site.export("databaseInstanceArn", db.arn)
    site.export("databaseIdentifier", db.instance.identifier)
    site.export("databaseEndpoint", db.instance.address)
    site.export("databaseSecretArn", credentials.arn)
    site.export(
        "database",
        {
            "role": "failback replica (of the DR site's database)" if replicate_from is not None else "primary",
            "multiAz": True,
            "generation": cfg.database.generation,
            "credentialsReplicatedTo": cfg.peer_region if dr_key is not None else None,
        },
    )
    return db, credentials


def _failback_source(site: Site) -> pulumi.Output[str] | None:
    """`database.replicaOfPeer`: the DR site's (promoted) database this generation replicates."""
    if not site.cfg.database.replica_of_peer:
        return None
    source = site.peer.get("replicaInstanceArn")
    if source is None:
        raise ConfigError(
            f"config key '{PROJECT}:database.replicaOfPeer' = true needs the DR database to replicate, but peer "
            f"stack '{site.peer.name}' exports no replicaInstanceArn (no warm standby, or never deployed); fix: "
            f"pulumi config rm --path database.replicaOfPeer   (and restore from the DR site's backups instead)"
        )
    return source


def _rotate(site: Site, credentials: GeneratedSecret, key: CustomerKey, network: SiteNetwork) -> PostgresRotation:
    """The master credentials rotate monthly (AWS's PostgreSQL single-user rotation function);
    each new version replicates to the DR region's replica secret."""
    rotation = PostgresRotation(
        site.name("database-credentials-rotation"),
        PostgresRotationArgs(
            region=site.region,
            secret_arn=credentials.arn,
            secret_kms_key_arn=key.arn,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.rotation_sg.id],
            function_name=f"postoucancer-{site.stack}-db-rotation",
        ),
    )
    site.export("databaseCredentialsRotation", {"schedule": rotation.rotation.rotation_rules.schedule_expression})
    return rotation


def _standby_database(site: Site, db_key: CustomerKey, db_net: DatabaseNetwork) -> PostgresStandby:
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
            production_scale=cfg.activation_complete,
            engine_version=cfg.database.engine_version,
            physical_name=f"{site.stack}-database",
            tags={PURPOSE_TAG_KEY: "database"},
            generation=cfg.database.generation,
        ),
    )
    if standby.replica is not None:
        site.export("replicaInstanceArn", standby.replica.arn)
        site.export("databaseIdentifier", standby.replica.identifier)
        site.export("databaseEndpoint", standby.replica.address)
    if standby.backups is not None:
        site.export("replicatedBackupsArn", standby.backups.id)
    site.export(
        "database",
        {
            "role": "primary (promoted)"
            if cfg.activated and standby.replica
            else "warm-standby"
            if standby.replica
            else "replicated backups only",
            "warmStandby": cfg.database.warm_standby,
            "generation": cfg.database.generation,
            "crossRegionPitr": standby.backups is not None,
        },
    )
    if not cfg.activated:
        # A standby follows the primary's current generation; after a failback the primary's is
        # newer until this site re-seeds (database.generation here too).
        warn_if_peer_disagrees(site, "database", "generation", cfg.database.generation, "database.generation")
    return standby
