"""PostgreSQL on Azure Database for PostgreSQL flexible server (azure-native `dbforpostgresql`,
API 2025-08-01): the primary (prod-azure site) and the warm standby (dr-azure site).

`PostgresServer` is zone-redundant HA, keeps its automated backups (snapshots + WAL, PITR)
`backup_retention_days` (7..35), geo-redundant backups to the paired region, encrypted with a
customer-managed key (and a second key and identity for the geo-backups), TLS 1.2+ only,
reachable only from its delegated subnet (private access: no public endpoint).

`PostgresReplica` is a cross-region read replica of it (`createMode: Replica`). Activation
(`promote=True`) adds the documented write-only promotion request to the *same* resource:
`replica: {promoteMode: Standalone, promoteOption: Forced}` - "Forced" is the option Azure
documents for regional outages (it does not wait for the failed primary). `createMode` and
`sourceServerResourceId` stay: the latter is create-only (`x-ms-mutability: [read, create]`),
so the provider would *replace* the server if it changed, and protect=True refuses that.

Documented constraints encoded here (each has a test citing its source):
- geo-redundant backup and the key type (CMK or service-managed) can only be chosen at server
  creation ("Backup and restore", "Data encryption"): a change is a replacement, which the
  protected server refuses (`replace_on_changes`);
- with geo-redundant backups a CMK server needs a second key and a *different* user-assigned
  identity for the geo-backup storage ("Configure data encryption");
- read replicas support neither HA nor backups (geo-backups included), nor the Burstable tier,
  nor a Premium SSD v2 primary; their storage and compute must be at least the primary's
  ("Read replicas in Azure Database for PostgreSQL - Flexible Server");
- server parameters must be written one at a time (the server answers ServerIsBusy to
  concurrent configuration writes) and with both `value` and `source`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import pulumi
import pulumi_azure_native as azure_native

from drplan.schedules import SCHEDULES, Schedules
from drplan.thresholds import BACKUP_WINDOW_GAP

# "Backup and restore": retention between 7 (default) and 35 days.
MIN_BACKUP_RETENTION_DAYS = 7
MAX_BACKUP_RETENTION_DAYS = 35
POSTGRES_VERSION = "16"
# TLS only, TLS 1.2 at least, and enough logging to investigate an incident.
SERVER_PARAMETERS = {
    "require_secure_transport": "on",
    "ssl_min_protocol_version": "TLSv1.2",
    "log_connections": "on",
    "log_disconnections": "on",
    "connection_throttle.enable": "on",
}
# The configuration API needs both value and source (azure-rest-api-specs#30143).
PARAMETER_SOURCE = "user-override"
# Create-only properties: changing one means a new server (and its data) - refused, not tried.
CREATE_ONLY = ["backup.geoRedundantBackup", "dataEncryption.type", "sourceServerResourceId", "createMode"]
# "Promote read replicas": Forced skips the checks that need the primary (regional outage).
PROMOTION = {"promote_mode": "Standalone", "promote_option": "Forced"}
STORAGE_TYPE = "Premium_LRS"  # Premium SSD v2 primaries cannot have read replicas

_SKU = re.compile(r"^Standard_(?P<family>[BDE])(?P<vcores>\d+)[a-z]*(_v\d+)?$")
_TIERS = {"B": "Burstable", "D": "GeneralPurpose", "E": "MemoryOptimized"}


@dataclass(frozen=True)
class Sku:
    name: str
    tier: str
    vcores: int


def parse_sku(name: str, field_name: str = "sku_name") -> Sku:
    """`Standard_D4ds_v5` -> GeneralPurpose, 4 vCores; ValueError names the field."""
    m = _SKU.match(name)
    if not m:
        raise ValueError(f"{field_name}: a flexible-server compute size like Standard_D4ds_v5, not {name!r}")
    sku = Sku(name, _TIERS[m.group("family")], int(m.group("vcores")))
    if sku.tier == "Burstable":
        raise ValueError(
            f"{field_name}: {name} is Burstable; read replicas and zone-redundant HA need General Purpose "
            "or Memory Optimized (e.g. Standard_D2ds_v5)"
        )
    return sku


def check_retention(days: int) -> int:
    if not MIN_BACKUP_RETENTION_DAYS <= days <= MAX_BACKUP_RETENTION_DAYS:
        raise ValueError(
            f"backup_retention_days: flexible server keeps backups {MIN_BACKUP_RETENTION_DAYS}.."
            f"{MAX_BACKUP_RETENTION_DAYS} days, not {days}"
        )
    return days


def maintenance_window(schedules: Schedules = SCHEDULES) -> dict:
    """Wednesday (Azure numbers days from Sunday = 0), two gaps after the backup slot: away
    from the nightly backup and from the weekend's weekly backup and restore test."""
    start = datetime.combine(datetime(2024, 1, 3).date(), schedules.full_backup_at_utc) + 2 * BACKUP_WINDOW_GAP
    return {"custom_window": "Enabled", "day_of_week": 3, "start_hour": start.hour, "start_minute": start.minute}


@dataclass
class ServerKey:
    """A customer-managed key and the user-assigned identity the server reads it with (the
    identity needs Key Vault Crypto Service Encryption User on the key)."""

    key_uri: pulumi.Input[str]
    identity_id: pulumi.Input[str]


@dataclass
class PostgresNetwork:
    """Private access: a subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers and the
    private DNS zone (`*.postgres.database.azure.com`) linked to the site's network."""

    delegated_subnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str]


def _network(net: PostgresNetwork) -> dict:
    return {
        "delegated_subnet_resource_id": net.delegated_subnet_id,
        "private_dns_zone_arm_resource_id": net.private_dns_zone_id,
        "public_network_access": "Disabled",
    }


def _identities(*keys: ServerKey | None) -> dict:
    ids = [k.identity_id for k in keys if k is not None]
    return {"type": "UserAssigned", "user_assigned_identities": pulumi.Output.all(*ids).apply(
        lambda xs: {i: {} for i in xs})}


def _distinct_identities(primary: ServerKey, geo: ServerKey) -> pulumi.Input[str]:
    def check(ids: list) -> str:
        if ids[0] is not None and ids[0] == ids[1]:
            raise ValueError(
                "geo_backup_key.identity_id: geo-redundant backups of a CMK server need a second user-assigned "
                "identity for the geo-backup key, not the primary key's (Azure: 'Configure data encryption')"
            )
        return ids[1]

    if isinstance(primary.identity_id, str) and isinstance(geo.identity_id, str):
        return check([primary.identity_id, geo.identity_id])  # known now: fail before anything registers
    return pulumi.Output.all(primary.identity_id, geo.identity_id).apply(check)


def _parameters(name: str, resource_group_name, server, parent) -> list[azure_native.dbforpostgresql.Configuration]:
    """One at a time: each waits for the previous (concurrent writes fail with ServerIsBusy)."""
    made: list[azure_native.dbforpostgresql.Configuration] = []
    for key, value in SERVER_PARAMETERS.items():
        made.append(
            azure_native.dbforpostgresql.Configuration(
                f"{name}-{key.replace('.', '-').replace('_', '-')}",
                resource_group_name=resource_group_name,
                server_name=server.name,
                configuration_name=key,
                value=value,
                source=PARAMETER_SOURCE,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[server, *made[-1:]]),
            )
        )
    return made


@dataclass
class PostgresServerArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    network: PostgresNetwork
    key: ServerKey
    administrator_password: pulumi.Input[str]
    sku_name: str
    storage_size_gb: int
    backup_retention_days: int
    # Required while geo_redundant_backup: a key in the paired region and its own identity.
    geo_backup_key: ServerKey | None = None
    geo_redundant_backup: bool = True
    administrator_login: str = "postoucancer_admin"
    version: str = POSTGRES_VERSION
    availability_zone: str = "1"
    standby_availability_zone: str = "2"
    server_name: str | None = None
    schedules: Schedules = SCHEDULES
    tags: dict[str, str] = field(default_factory=dict)


class PostgresServer(pulumi.ComponentResource):
    """`postoucancer:azure:PostgresServer`."""

    server: azure_native.dbforpostgresql.Server
    id: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:PostgresServer", name, None, opts)
        sku = parse_sku(args.sku_name)
        retention = check_retention(args.backup_retention_days)
        encryption: dict = {
            "type": "AzureKeyVault",
            "primary_key_uri": args.key.key_uri,
            "primary_user_assigned_identity_id": args.key.identity_id,
        }
        if args.geo_redundant_backup:
            if args.geo_backup_key is None:
                raise ValueError(
                    "geo_backup_key: geo-redundant backups of a CMK server need a key in the paired region and "
                    "its own user-assigned identity (or set geo_redundant_backup=False, only at creation)"
                )
            encryption["geo_backup_key_uri"] = args.geo_backup_key.key_uri
            encryption["geo_backup_user_assigned_identity_id"] = _distinct_identities(args.key, args.geo_backup_key)
        self.server = azure_native.dbforpostgresql.Server(
            name,
            server_name=args.server_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=args.version,
            create_mode="Create",
            sku={"name": sku.name, "tier": sku.tier},
            storage={"storage_size_gb": args.storage_size_gb, "auto_grow": "Enabled", "type": STORAGE_TYPE},
            administrator_login=args.administrator_login,
            administrator_login_password=pulumi.Output.secret(args.administrator_password),
            auth_config={"password_auth": "Enabled", "active_directory_auth": "Disabled"},
            availability_zone=args.availability_zone,
            high_availability={"mode": "ZoneRedundant", "standby_availability_zone": args.standby_availability_zone},
            backup={
                "backup_retention_days": retention,
                "geo_redundant_backup": "Enabled" if args.geo_redundant_backup else "Disabled",
            },
            identity=_identities(args.key, args.geo_backup_key if args.geo_redundant_backup else None),
            data_encryption=encryption,
            network=_network(args.network),
            maintenance_window=maintenance_window(args.schedules),
            tags={**args.tags, "role": "primary"},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=True,
                replace_on_changes=CREATE_ONLY,
                # Generated once, kept in Key Vault from then on: later changes are rotations.
                ignore_changes=["administratorLoginPassword"],
            ),
        )
        self.parameters = _parameters(name, args.resource_group_name, self.server, self)
        self.id = self.server.id
        self.register_outputs({"id": self.id, "fqdn": self.server.fully_qualified_domain_name})


@dataclass
class PostgresReplicaArgs:
    resource_group_name: pulumi.Input[str]
    location: str  # the DR region
    network: PostgresNetwork  # the DR site's delegated subnet and DNS zone
    key: ServerKey  # a key of the DR region: the replica's storage
    source_server_id: pulumi.Input[str]
    source_location: str
    source_sku_name: str
    source_storage_size_gb: int
    sku_name: str | None = None  # default: the primary's (never smaller: Azure requires it)
    storage_size_gb: int | None = None
    promote: bool = False  # the site's `activated: true`
    # Once promoted (a second `pulumi up`): zone-redundant HA, which a replica cannot have.
    production_scale: bool = False
    availability_zone: str = "1"
    standby_availability_zone: str = "2"
    version: str = POSTGRES_VERSION
    server_name: str | None = None
    schedules: Schedules = SCHEDULES
    tags: dict[str, str] = field(default_factory=dict)


class PostgresReplica(pulumi.ComponentResource):
    """`postoucancer:azure:PostgresReplica`."""

    server: azure_native.dbforpostgresql.Server
    id: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresReplicaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:azure:PostgresReplica", name, None, opts)
        if args.location == args.source_location:
            raise ValueError(f"location: the warm standby belongs in the DR region, not the primary's {args.location}")
        if args.production_scale and not args.promote:
            raise ValueError("production_scale: applies to a promoted standby only (set promote / activated first)")
        source = parse_sku(args.source_sku_name, "source_sku_name")
        sku = parse_sku(args.sku_name or args.source_sku_name)
        if sku.vcores < source.vcores:
            raise ValueError(
                f"sku_name: {sku.name} has fewer vCores than the primary's {source.name}; Azure requires a read "
                "replica's compute to be at least the primary's"
            )
        storage = args.storage_size_gb or args.source_storage_size_gb
        if storage < args.source_storage_size_gb:
            raise ValueError(
                f"storage_size_gb: {storage} GB is less than the primary's {args.source_storage_size_gb} GB; a read "
                "replica's storage must be at least the primary's"
            )
        scaled = args.promote and args.production_scale
        extra: dict = {"replica": PROMOTION} if args.promote else {}
        self.server = azure_native.dbforpostgresql.Server(
            name,
            server_name=args.server_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=args.version,
            create_mode="Replica",
            source_server_resource_id=args.source_server_id,
            sku={"name": sku.name, "tier": sku.tier},
            storage={"storage_size_gb": storage, "auto_grow": "Enabled", "type": STORAGE_TYPE},
            availability_zone=args.availability_zone,
            # Replicas support no HA and take no backups; promoted, backups start by themselves
            # (geo-redundancy cannot be added: it is create-only), HA is its own later step.
            high_availability={"mode": "ZoneRedundant", "standby_availability_zone": args.standby_availability_zone}
            if scaled
            else {"mode": "Disabled"},
            identity=_identities(args.key),
            data_encryption={
                "type": "AzureKeyVault",
                "primary_key_uri": args.key.key_uri,
                "primary_user_assigned_identity_id": args.key.identity_id,
            },
            network=_network(args.network),
            maintenance_window=maintenance_window(args.schedules),
            tags={**args.tags, "role": "primary" if args.promote else "warm-standby"},
            **extra,
            opts=pulumi.ResourceOptions(parent=self, protect=True, replace_on_changes=CREATE_ONLY),
        )
        # A replica inherits the primary's parameters at creation, but later changes are not
        # replicated: the DR server carries the same TLS settings itself.
        self.parameters = _parameters(name, args.resource_group_name, self.server, self)
        self.id = self.server.id
        self.register_outputs({"id": self.id, "fqdn": self.server.fully_qualified_domain_name})


# "Read Replica Lag" (seconds since the last replayed transaction), published by the replica;
# its budget is drplan.recovery.ASSUMPTIONS.standby_lag_budget.
REPLICA_LAG_METRIC = "physical_replication_delay_in_seconds"
