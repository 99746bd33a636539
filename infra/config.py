"""Typed, validated stack configuration.

Everything comes from `pulumi.Config`'s store (the `postoucancer-dr:` namespace), so the
program runs unchanged under the CLI and under any mock harness. Validation happens
before a single resource is registered; a bad value raises `ConfigError`, whose one line
names the key, the bad value and the fix.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import pulumi
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from drplan import recovery
from drplan.handover import BackupPolicy
from drplan.names import PROJECT, STACK_TAG_KEY, Cloud, Role
from drplan.objectives import PLAN_OBJECTIVE, SCENARIO_OBJECTIVES, Objective, Scenario
from drplan.periods import Period, format_duration, parse_duration, parse_period
from drplan.retention import RETENTION, Retention, Tier, effective_retention, override_problems
from drplan.schedules import SCHEDULES

# Read with Config.require_secret by the components that need them; never validated
# (or echoed) through the typed model.
SECRET_KEYS = frozenset({"kubeconfig"})


class ConfigError(pulumi.RunError):
    """A configuration mistake: one line, no traceback (RunError prints none)."""


# --- value parsers (the plan's own spellings, drplan.periods) ------------------------

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
RetentionPeriod = Annotated[Period, BeforeValidator(parse_period)]

# Pulumi stack names: letters, digits, '-', '_', '.'.
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_AZURE_REGION = re.compile(r"^[a-z]+[a-z0-9]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Azure's restricted-access European regions (access on request, for customers with an in-country
# presence; Azure docs "Azure region access request process"): a DR site there cannot be counted on.
AZURE_RESTRICTED_REGIONS = frozenset({"francesouth", "germanynorth", "norwaywest", "switzerlandwest"})
# Premium SSD storage sizes of PostgreSQL flexible server (GiB; Azure "Compute and storage options").
AZURE_POSTGRES_STORAGE_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767)



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


class Regions(_Strict):
    primary: str
    dr: str


class Objectives(_Strict):
    rto: Duration = PLAN_OBJECTIVE.rto
    rpo: Duration = PLAN_OBJECTIVE.rpo

    @field_validator("rto", "rpo")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("a positive duration")
        return v


class RetentionOverrides(_Strict):
    """Longer retention than the tier's minimum (never shorter)."""

    daily: RetentionPeriod | None = None
    weekly: RetentionPeriod | None = None
    monthly: RetentionPeriod | None = None
    yearly: RetentionPeriod | None = None

    def periods(self) -> dict[str, Period | None]:
        return {gen: getattr(self, gen) for gen in type(self).model_fields}


class Alerts(_Strict):
    emails: list[str] = Field(default_factory=list)
    webhooks: list[str] = Field(default_factory=list)
    # Alarm when the site's backup bucket holds more than this (S3 BucketSizeBytes).
    storage_quota_gb: float = Field(2000, alias="storageQuotaGb", gt=0)

    @field_validator("emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for e in v:
            if not _EMAIL.match(e):
                raise ValueError(f"an e-mail address, not {e!r}")
        return v

    @field_validator("webhooks")
    @classmethod
    def _webhooks(cls, v: list[str]) -> list[str]:
        for u in v:
            if not u.startswith("https://"):
                raise ValueError(f"an https:// URL (alerts leave the account over TLS only), not {u!r}")
        return v


class Database(_Strict):
    engine_version: str = Field("15", alias="engineVersion")
    instance_class: str = Field("db.r6g.large", alias="instanceClass")
    standby_instance_class: str | None = Field(None, alias="standbyInstanceClass")
    allocated_storage_gb: int = Field(100, alias="allocatedStorageGb", ge=20, le=65536)
    # The data size drives the RTO estimate (restore and load time).
    size_gb: float = Field(20, alias="sizeGb", gt=0)
    warm_standby: bool = Field(True, alias="warmStandby")
    name: str = "postoucancer"
    # Failback (docs/failback.md): a promoted instance can never become a replica again, so each
    # re-seeding is a new instance. The generation names it; raising it is the re-seed.
    generation: int = Field(1, ge=1)
    # Failback, primary site only: this generation is a cross-region replica of the peer's
    # (promoted) database until it is set back to false, which promotes it.
    replica_of_peer: bool = Field(False, alias="replicaOfPeer")


class Redis(_Strict):
    node_type: str = Field("cache.r6g.large", alias="nodeType")
    replicas: int = Field(1, ge=1, le=5)


class App(_Strict):
    image: str = "ghcr.io/postoucancer/api:stable"
    replicas: int = Field(3, ge=1, le=100)
    # DR site before activation: 0 is pilot light, 1 is warm standby.
    standby_replicas: int = Field(1, alias="standbyReplicas", ge=0, le=1)
    health_path: str = Field("/health", alias="healthPath")
    hostname: str | None = None  # the public name the Ingress answers for (default: dns.recordName)
    # Production scale: the HPA keeps between `replicas` and `maxReplicas` pods.
    max_replicas: int = Field(10, alias="maxReplicas", ge=1, le=200)
    cpu_target_percent: int = Field(70, alias="cpuTargetPercent", ge=10, le=95)
    port: int = Field(8080, ge=1, le=65535)
    namespace: str = Field("postoucancer", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    cpu_request: str = Field("250m", alias="cpuRequest")
    cpu_limit: str = Field("1", alias="cpuLimit")
    memory_request: str = Field("512Mi", alias="memoryRequest")
    memory_limit: str = Field("512Mi", alias="memoryLimit")
    ingress_class: str = Field("alb", alias="ingressClass")
    certificate_arn: str | None = Field(None, alias="certificateArn", pattern=r"^arn:aws:acm:[a-z0-9-]+:\d{12}:")


class Functions(_Strict):
    """The backup / verify functions (one container image, lambdas/Dockerfile)."""

    # A full image URI; default: this site's ECR repository at `imageTag`.
    image: str | None = Field(None, pattern=r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9._/-]+[:@].+$")
    image_tag: str = Field("1.0.0", alias="imageTag", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    memory_mb: int = Field(2048, alias="memoryMb", ge=512, le=10240)
    timeout: Duration = timedelta(minutes=15)
    # lambda: Lambda + EventBridge Scheduler; kubernetes: CronJobs on the site's cluster.
    runner: str = Field("lambda", pattern=r"^(lambda|kubernetes)$")
    # The site's EKS cluster, whose pods get AWS roles through EKS Pod Identity: the CronJobs of the
    # kubernetes runner get the functions' role, the API pods theirs (infra/aws/app.py).
    eks_cluster_name: str | None = Field(None, alias="eksClusterName")
    # The server verify restores into (a role with CREATEDB), e.g. a small restore-test instance;
    # default: the site's database secret (the scratch database then lives on that instance).
    verify_secret_arn: str | None = Field(
        None, alias="verifySecretArn", pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
    )
    verify_secret_kms_key_arn: str | None = Field(
        None, alias="verifySecretKmsKeyArn", pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$"
    )

    @field_validator("timeout")
    @classmethod
    def _lambda_limit(cls, v: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= v <= timedelta(minutes=15):
            raise ValueError("a duration from 1m to 15m (Lambda runs at most 15 minutes)")
        return v


class Network(_Strict):
    # The site's EKS cluster's VPC and private subnets: the data tier lives there, so that the
    # pods can reach it. Unset: a VPC of its own (an offline plan; the pods cannot reach it).
    vpc_id: str | None = Field(None, alias="vpcId", pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: list[str] = Field(default_factory=list, alias="subnetIds")
    cidr: str = "10.40.0.0/16"
    # The EKS cluster security group: pods that get the data tier's client groups (EKS security
    # groups for pods) keep it too, so that they still reach CoreDNS, the kubelet and the ALB.
    cluster_security_group_id: str | None = Field(
        None, alias="clusterSecurityGroupId", pattern=r"^sg-[0-9a-f]{8,17}$"
    )

    @model_validator(mode="after")
    def _both_or_none(self) -> Network:
        if bool(self.vpc_id) != bool(self.subnet_ids):
            raise ValueError("set both vpcId and subnetIds (an existing network) or neither")
        if self.subnet_ids and len(self.subnet_ids) < 2:
            raise ValueError("subnetIds needs at least two subnets in different availability zones")
        if self.cluster_security_group_id and not self.vpc_id:
            raise ValueError("clusterSecurityGroupId belongs to the cluster's VPC: set vpcId and subnetIds too")
        return self


class Dns(_Strict):
    """Route 53 failover records; owned by the dr stack only (Route 53 is global)."""

    zone_id: str | None = Field(None, alias="zoneId", pattern=r"^Z[A-Z0-9]{1,31}$")
    zone_name: str | None = Field(None, alias="zoneName")
    record_name: str | None = Field(None, alias="recordName")
    ttl: int = Field(60, ge=10, le=300)


class Azure(_Strict):
    """The Azure realisation's own settings (cloud: azure only)."""

    # The subscription and tenant every resource of the site lives in: the site's explicit
    # azure-native provider gets them (no ambient `az account` default decides where it lands).
    subscription_id: str = Field(alias="subscriptionId")
    tenant_id: str = Field(alias="tenantId")
    # Default: postoucancer-<stack> (one per stack: a stack's resources never share a group).
    resource_group: str | None = Field(None, alias="resourceGroup", pattern=r"^[-\w._()]{1,89}[-\w_()]$")
    address_space: str = Field("10.60.0.0/16", alias="addressSpace", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    # The deployer's public egress (CIDRs) that may reach the Key Vault's data plane; everything
    # else is denied (private endpoint and trusted Azure services only).
    key_vault_allowed_ips: list[str] = Field(default_factory=list, alias="keyVaultAllowedIps")
    # The backup accounts' default version-level immutability policy. Azure creates such a policy
    # Unlocked only (storage AccountImmutabilityPolicyState): the first `pulumi up` of a new
    # locked site runs with `unlocked`, the next one locks. Default: Locked where vaultLock is on.
    immutability: str | None = Field(None, pattern=r"^(locked|unlocked)$")
    # PostgreSQL flexible server: compute (General Purpose or Memory Optimized: HA and read
    # replicas exclude Burstable) and provisioned storage, one of the sizes Azure offers.
    postgres_sku: str = Field("Standard_D2ds_v5", alias="postgresSku", pattern=r"^Standard_[DE]\d+[a-z]*(_v\d+)?$")
    postgres_storage_gb: int = Field(128, alias="postgresStorageGb")
    redis_capacity: int = Field(1, alias="redisCapacity", ge=1, le=4)  # Premium P1..P4
    # Traffic Manager's <name>.trafficmanager.net (globally unique); default: derived from the
    # subscription, deterministic (infra/azure/failover.py).
    traffic_manager_name: str | None = Field(
        None, alias="trafficManagerName", pattern=r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
    )
    # The backup/verify image's tag in this site's registry (`az acr build`, docs/azure.md).
    jobs_image_tag: str = Field("1.0.0", alias="jobsImageTag", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    # AKS application routing (managed ingress-nginx) serves the Ingress with this Key Vault
    # certificate (its versionless secret URI); unset: the controller's default certificate.
    tls_certificate_uri: str | None = Field(
        None, alias="tlsCertificateUri", pattern=r"^https://[a-z0-9-]+\.vault\.azure\.net/(certificates|secrets)/.+$"
    )

    @field_validator("postgres_storage_gb")
    @classmethod
    def _storage_size(cls, v: int) -> int:
        if v not in AZURE_POSTGRES_STORAGE_GB:
            raise ValueError(f"one of the flexible server's storage sizes {AZURE_POSTGRES_STORAGE_GB} (GiB)")
        return v

    @field_validator("subscription_id", "tenant_id")
    @classmethod
    def _guid(cls, v: str) -> str:
        if not re.match(_GUID, v):
            raise ValueError("a GUID like 00000000-0000-0000-0000-000000000000 (az account show --query id)")
        return v

    @field_validator("key_vault_allowed_ips")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for ip in v:
            if not re.match(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$", ip):
                raise ValueError(f"public IPv4 addresses or CIDR ranges, not {ip!r}")
        return v


class StackConfig(_Strict):
    cloud: Cloud
    role: Role
    tier: Tier
    regions: Regions
    peer_stack: str = Field(alias="peerStack")
    # The backup-only account's stack (infra/vault): every GFS recovery point is copied, and the
    # backup bucket replicates, into it. Required in the prod tier (docs/vault.md).
    vault_stack: str | None = Field(None, alias="vaultStack")
    activated: bool = False
    # The second step of activation: the promoted database becomes Multi-AZ at production size.
    # Promotion comes first, alone (what AWS does too: promote, then modify), so that nothing that
    # depends on the database waits for the conversion on the way back to service.
    activation_complete: bool = Field(False, alias="activationComplete")
    # When the DR site was activated (ISO 8601, UTC); `python -m infra.activate` sets it.
    activated_at: datetime | None = Field(None, alias="activatedAt")
    objectives: Objectives | None = None
    retention: RetentionOverrides = Field(default_factory=RetentionOverrides)
    vault_lock: bool | None = Field(None, alias="vaultLock")
    # This stack owns its region's account-level singletons (AWS Backup region settings): one
    # per account and region, so of two stacks sharing an account exactly one may. Default: the
    # prod tier's stacks (staging sharing prod's account must not overwrite them).
    owns_account_settings: bool | None = Field(None, alias="ownsAccountSettings")
    alerts: Alerts = Field(default_factory=Alerts)
    database: Database = Field(default_factory=Database)
    redis: Redis = Field(default_factory=Redis)
    app: App = Field(default_factory=App)
    network: Network = Field(default_factory=Network)
    functions: Functions = Field(default_factory=Functions)
    dns: Dns = Field(default_factory=Dns)
    azure: Azure | None = None  # cloud: azure only
    kubeconfig: Any = None  # a secret; read with Config.require_secret, never through here

    # --- derived views ---------------------------------------------------------------
    @property
    def region(self) -> str:
        """The region this stack's site lives in."""
        return self.regions.primary if self.role is Role.PRIMARY else self.regions.dr

    @property
    def peer_region(self) -> str:
        return self.regions.dr if self.role is Role.PRIMARY else self.regions.primary

    @property
    def retention_policy(self) -> Retention:
        """The tier's retention with this stack's overrides: every realisation keeps this."""
        return effective_retention(self.tier, self.retention.periods())

    @property
    def backup_policy(self) -> BackupPolicy:
        """What the functions are handed (BACKUP_POLICY): the effective numbers, not the image's."""
        return BackupPolicy(self.tier, self.retention_policy, SCHEDULES)

    @property
    def account_settings(self) -> bool:
        return self.owns_account_settings if self.owns_account_settings is not None else self.tier is Tier.PROD

    @property
    def locked(self) -> bool:
        """Backup stores under a compliance-mode lock: on by default in prod only."""
        return self.vault_lock if self.vault_lock is not None else self.tier is Tier.PROD

    @property
    def scenario_objectives(self) -> dict[Scenario, Objective] | None:
        """Per scenario: the plan's objective, tightened by the stack's declared one."""
        declared = self.objectives or (Objectives() if self.tier is Tier.PROD else None)
        if declared is None:
            return None  # staging declares none unless set: the plan's objectives are production's
        return {
            s: Objective(rto=min(o.rto, declared.rto), rpo=min(o.rpo, declared.rpo))
            for s, o in SCENARIO_OBJECTIVES.items()
        }

    @property
    def immutability_locked(self) -> bool:
        """Azure backup accounts: the default immutability policy is Locked (see Azure.immutability)."""
        chosen = self.azure.immutability if self.azure is not None else None
        return chosen == "locked" if chosen is not None else self.locked

    def resource_group(self, stack: str) -> str:
        """Azure: the stack's resource group name."""
        given = self.azure.resource_group if self.azure is not None else None
        return given or f"postoucancer-{stack}"

    @property
    def topology(self) -> recovery.Topology:
        return recovery.Topology(
            tier=self.tier,
            database_size_gb=self.database.size_gb,
            warm_standby=self.database.warm_standby,
            vault_locked=self.locked,
            # Azure: the flexible server's geo-redundant backups are a recovery source of their own
            # (restorable in the paired region, drplan.recovery GEO_BACKUP_REPLICATION_DELAY).
            geo_backup=self.cloud is Cloud.AZURE,
            vault_account=self.vault_stack is not None,
        )


# --- loading ------------------------------------------------------------------------

_FIXES = {
    "cloud": "pulumi config set cloud aws   (or azure)",
    "role": "pulumi config set role primary   (or dr)",
    "tier": "pulumi config set tier prod   (or staging)",
    "peerStack": "pulumi config set peerStack <org>/postoucancer-dr/<peer stack>",
    "vaultStack": "pulumi config set vaultStack vault",
    "regions": "pulumi config set --path regions.primary eu-west-3; pulumi config set --path regions.dr eu-central-1",
}


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts[-1] = f"{parts[-1]}[{p}]"
        else:
            parts.append(str(p))
    return ".".join(parts)


def _lookup(raw: dict[str, Any], loc: tuple[Any, ...]) -> Any:
    cur: Any = raw
    for p in loc:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _fix_for(path: str, value: Any) -> str:
    top = path.split(".", 1)[0].split("[", 1)[0]
    if top in _FIXES:
        return _FIXES[top]
    shown = "<value>" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return f"pulumi config set --path {path} {shown}"


def _known_fields(cls: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    known: dict[str, type[BaseModel] | None] = {}
    for name, f in cls.model_fields.items():
        sub = f.annotation
        nested = None
        for cand in (sub, *getattr(sub, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                nested = cand
        known[f.alias or name] = nested
    return known


def _unknown_keys(raw: dict[str, Any], cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Typos first: a misspelt key would otherwise surface as a confusing 'missing' error."""
    messages = []
    known = _known_fields(cls)
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
            messages.append(
                f"config key '{PROJECT}:{path}' is unknown: {hint}"
                f"fix: pulumi config rm --path {path}   (known keys: {', '.join(sorted(known))})"
            )
        elif known[key] is not None and isinstance(value, dict):
            messages.extend(_unknown_keys(value, known[key], f"{path}."))
    return messages


def _decode(value: str) -> Any:
    """Pulumi passes every value as a string; structured ones are JSON."""
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def raw_config() -> dict[str, Any]:
    """This project's config values (secrets excluded), decoded."""
    from infra import sdk

    # Every key that is set, not only the known ones: a misspelt key must be reported.
    merged = sdk.config_values()
    prefix = f"{PROJECT}:"
    return {
        k[len(prefix) :]: _decode(v)
        for k, v in merged.items()
        if k.startswith(prefix) and k[len(prefix) :] not in SECRET_KEYS
    }


def parse(raw: dict[str, Any], aws_region: str | None = None, other_keys: Collection[str] = ()) -> StackConfig:
    """Validate `raw` (this project's keys, decoded) into a StackConfig or raise ConfigError.

    other_keys: the keys set outside this project's namespace (`aws:region`, `azure-native:...`):
    a stack of one cloud must set none of the other's provider."""
    cfg = validate_model(raw, StackConfig)
    _check_semantics(cfg, aws_region)
    _check_cloud(cfg, other_keys)
    return cfg


def validate_model(raw: dict[str, Any], model: type[ModelT]) -> ModelT:
    """`raw` as `model` (StackConfig, or the vault stack's VaultConfig), or the ConfigError that
    names the first unknown, missing or invalid key and its fix."""
    unknown = _unknown_keys(raw, model)
    if unknown:
        raise ConfigError(unknown[0])
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        # A model-level check reports at its parent; keep the path of what was set.
        path = _key_path(loc) or "(root)"
        value = _lookup(raw, loc)
        if err["type"] == "missing":
            raise ConfigError(f"config key '{PROJECT}:{path}' is missing: fix: {_fix_for(path, None)}") from None
        expected = err["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"config key '{PROJECT}:{path}' = {json.dumps(value)} is invalid: expected {expected}; "
            f"fix: {_fix_for(path, value)}"
        ) from None


def _bad(path: str, value: Any, why: str, fix: str) -> ConfigError:
    return ConfigError(f"config key '{PROJECT}:{path}' = {json.dumps(value, default=str)} {why}; fix: {fix}")


def _check_semantics(cfg: StackConfig, aws_region: str | None) -> None:
    pattern = _REGION if cfg.cloud is Cloud.AWS else _AZURE_REGION
    for which in ("primary", "dr"):
        value = getattr(cfg.regions, which)
        if not pattern.match(value):
            example = "eu-west-3" if cfg.cloud is Cloud.AWS else "francecentral"
            spelling = "AWS, like eu-west-3" if cfg.cloud is Cloud.AWS else "Azure, like francecentral"
            raise _bad(
                f"regions.{which}",
                value,
                f"is not a region name of {spelling} (cloud: {cfg.cloud.value})",
                f"pulumi config set --path regions.{which} {example}",
            )
    if cfg.regions.primary == cfg.regions.dr:
        raise _bad(
            "regions.dr",
            cfg.regions.dr,
            "equals regions.primary: a DR site in the same region survives no regional outage",
            "pulumi config set --path regions.dr <another region, e.g. eu-central-1>",
        )
    if cfg.cloud is Cloud.AWS and aws_region and aws_region != cfg.region:
        raise ConfigError(
            f"config key 'aws:region' = \"{aws_region}\" differs from this {cfg.role.value} site's region "
            f'regions.{"primary" if cfg.role is Role.PRIMARY else "dr"} = "{cfg.region}"; '
            f"fix: pulumi config set aws:region {cfg.region}"
        )
    parts = cfg.peer_stack.split("/")
    if not (len(parts) == 1 and _STACK_NAME.match(parts[0])) and not (len(parts) == 3 and all(parts)):
        raise _bad(
            "peerStack",
            cfg.peer_stack,
            "is neither a stack name of this project nor a fully qualified <org>/<project>/<stack>",
            "pulumi config set peerStack <peer stack>   (e.g. dr; the organization is the backend's)",
        )
    if len(parts) == 3 and parts[1] != PROJECT:
        raise _bad(
            "peerStack",
            cfg.peer_stack,
            f"names project '{parts[1]}', not this project '{PROJECT}'",
            f"pulumi config set peerStack {parts[2]}",
        )
    _check_vault_stack(cfg)
    if cfg.activation_complete and not cfg.activated:
        raise _bad(
            "activationComplete",
            True,
            "is the second step of activation: the database is scaled only once promoted",
            "pulumi config set activated true   (then pulumi up; then activationComplete)",
        )
    if cfg.activated and cfg.role is not Role.DR:
        raise _bad(
            "activated",
            True,
            "is only meaningful on the dr site (it promotes the DR site)",
            "pulumi config rm activated",
        )
    _check_activation_and_dns(cfg)
    _check_failback(cfg)
    if cfg.objectives is not None:
        for key in ("rto", "rpo"):
            declared = getattr(cfg.objectives, key)
            plan = getattr(PLAN_OBJECTIVE, key)
            if declared > plan:
                raise _bad(
                    f"objectives.{key}",
                    format_duration(declared),
                    f"is looser than the plan's {format_duration(plan)}",
                    f"pulumi config set --path objectives.{key} {format_duration(plan)}",
                )
        floor = SCHEDULES.wal_archive_every
        if cfg.objectives.rpo < floor:
            raise _bad(
                "objectives.rpo",
                format_duration(cfg.objectives.rpo),
                f"is tighter than the schedules can achieve: WAL is shipped every {format_duration(floor)}",
                f"pulumi config set --path objectives.rpo {format_duration(floor)}   (or longer)",
            )
    problems = override_problems(cfg.tier, cfg.retention.periods())
    for gen, why in problems.items():
        minimum = getattr(RETENTION[cfg.tier], gen)
        fix = (
            f"pulumi config set --path retention.{gen} {minimum}"
            if minimum
            else f"pulumi config rm --path retention.{gen}"
        )
        raise _bad(f"retention.{gen}", str(getattr(cfg.retention, gen)), why, fix)
    if cfg.tier is Tier.PROD and cfg.vault_lock is False:
        raise _bad(
            "vaultLock",
            False,
            "would leave production backups deletable (ransomware scenario)",
            "pulumi config rm vaultLock",
        )


def _check_failback(cfg: StackConfig) -> None:
    db = cfg.database
    if db.replica_of_peer and cfg.role is not Role.PRIMARY:
        raise _bad(
            "database.replicaOfPeer",
            True,
            "is a failback step of the primary site (the dr site's standby follows the primary already)",
            "pulumi config rm --path database.replicaOfPeer",
        )
    if db.replica_of_peer and db.generation < 2:
        raise _bad(
            "database.replicaOfPeer",
            True,
            "needs a new database generation: the existing instance was a primary and RDS cannot make it a "
            "replica (\"cannot elect new source database for replication\")",
            f"pulumi config set --path database.generation {db.generation + 1}",
        )
    if db.replica_of_peer and not db.warm_standby:
        raise _bad(
            "database.replicaOfPeer",
            True,
            "re-seeds from the DR site's promoted database, which exists only with database.warmStandby",
            "pulumi config rm --path database.replicaOfPeer   (restore from the DR site's backups instead)",
        )


# Each cloud's provider namespace: a stack of one cloud sets none of the other's keys.
_PROVIDER_NAMESPACES = {Cloud.AWS: "aws:", Cloud.AZURE: "azure-native:"}


def _check_cloud(cfg: StackConfig, other_keys: Collection[str]) -> None:
    """The cloud-specific sections and provider keys match `cloud`."""
    other = Cloud.AZURE if cfg.cloud is Cloud.AWS else Cloud.AWS
    foreign = sorted(k for k in other_keys if k.startswith(_PROVIDER_NAMESPACES[other]))
    if foreign:
        raise ConfigError(
            f"config key '{foreign[0]}' belongs to the {other.value} provider, but this stack is "
            f"cloud: {cfg.cloud.value} (its program never loads that provider); fix: pulumi config rm {foreign[0]}"
        )
    if cfg.cloud is Cloud.AWS:
        if cfg.azure is not None:
            raise _bad("azure", "{...}", "is for cloud: azure stacks only", "pulumi config rm azure")
        return
    if cfg.azure is None:
        raise ConfigError(
            f"config key '{PROJECT}:azure' is missing (cloud: azure needs the subscription and tenant); "
            "fix: pulumi config set --path azure.subscriptionId <subscription id>; "
            "pulumi config set --path azure.tenantId <tenant id>"
        )
    if cfg.role is Role.DR and cfg.regions.dr in AZURE_RESTRICTED_REGIONS:
        raise _bad(
            "regions.dr",
            cfg.regions.dr,
            "is a restricted-access Azure region (access on request only): a DR site there cannot be counted on",
            "pulumi config set --path regions.dr germanywestcentral",
        )
    if cfg.regions.primary in AZURE_RESTRICTED_REGIONS:
        raise _bad(
            "regions.primary",
            cfg.regions.primary,
            "is a restricted-access Azure region (access on request only)",
            "pulumi config set --path regions.primary francecentral",
        )
    if not cfg.locked and cfg.azure.immutability == "locked":
        raise _bad(
            "azure.immutability",
            "locked",
            "locks the backups although vaultLock is off (a locked policy cannot be removed)",
            "pulumi config rm --path azure.immutability   (or pulumi config set vaultLock true)",
        )


def _check_vault_stack(cfg: StackConfig) -> None:
    if cfg.role is Role.VAULT:
        raise ConfigError(
            f"config key '{PROJECT}:role' = \"vault\" names the backup-only account's stack, whose keys are "
            "accounts.*, regions.*, siteStacks (infra/vault/config.py), not a site's; fix: a site stack has "
            "pulumi config set role primary   (or dr)"
        )
    if cfg.vault_stack is None:
        if cfg.tier is Tier.PROD and cfg.cloud is Cloud.AWS:
            raise ConfigError(
                f"config key '{PROJECT}:vaultStack' is missing: the prod tier keeps a locked copy of every backup in "
                "a backup-only account (an attacker with this account's admin rights must not reach them, "
                "docs/vault.md); fix: pulumi config set vaultStack vault"
            )
        return
    parts = cfg.vault_stack.split("/")
    if not (len(parts) == 1 and _STACK_NAME.match(parts[0])) and not (len(parts) == 3 and all(parts)):
        raise _bad(
            "vaultStack",
            cfg.vault_stack,
            "is neither a stack name of this project nor a fully qualified <org>/<project>/<stack>",
            "pulumi config set vaultStack vault",
        )
    if parts[-1] == cfg.peer_stack.split("/")[-1]:
        raise _bad(
            "vaultStack",
            cfg.vault_stack,
            "is the peer site's stack, not the vault account's",
            "pulumi config set vaultStack vault",
        )


def _check_activation_and_dns(cfg: StackConfig) -> None:
    if cfg.activated_at is not None and not cfg.activated:
        raise _bad(
            "activatedAt",
            cfg.activated_at.isoformat(),
            "is set but activated is false (a stale activation time would be exported)",
            "pulumi config rm activatedAt",
        )
    if cfg.activated_at is not None and cfg.activated_at.tzinfo is None:
        raise _bad(
            "activatedAt",
            cfg.activated_at.isoformat(),
            "has no time zone",
            f"pulumi config set activatedAt {cfg.activated_at.isoformat()}Z",
        )
    if cfg.app.max_replicas < cfg.app.replicas:
        raise _bad(
            "app.maxReplicas",
            cfg.app.max_replicas,
            f"is below app.replicas = {cfg.app.replicas}",
            f"pulumi config set --path app.maxReplicas {cfg.app.replicas}",
        )
    d = cfg.dns
    if bool(d.zone_id) != bool(d.record_name) or (d.zone_id and not d.zone_name):
        raise _bad(
            "dns",
            d.model_dump(by_alias=True, exclude_none=True),
            "needs zoneId, zoneName and recordName together (or none: no DNS failover)",
            "pulumi config set --path dns.zoneId Z...; pulumi config set --path dns.zoneName <zone>; "
            "pulumi config set --path dns.recordName api.<zone>",
        )
    if d.record_name and d.zone_name:
        zone = d.zone_name.rstrip(".").lower()
        name = d.record_name.rstrip(".").lower()
        if not name.endswith("." + zone):
            raise _bad(
                "dns.recordName",
                d.record_name,
                f"is not a name below dns.zoneName {d.zone_name} (a failover CNAME cannot sit at the zone apex)",
                f"pulumi config set --path dns.recordName api.{zone}",
            )


def check_objectives(cfg: StackConfig) -> list[recovery.Achieved]:
    """The achieved RPO/RTO per scenario; raises ConfigError naming each missed scenario."""
    objectives = cfg.scenario_objectives
    achieved = recovery.achieved_objectives(cfg.topology, objectives)
    if objectives is not None:
        missed = [a for a in achieved if not a.met]
        if missed:
            fixes = []
            if any(a.source is None for a in missed):
                fixes.append(
                    "enable what the scenario needs (vaultLock for ransomware, database.warmStandby "
                    "for data-centre loss)"
                )
            if any(a.source is not None and a.source.rto > a.objective.rto for a in missed):
                fixes.append("restore faster: a smaller database.sizeGb per instance (RTO grows with the data to load)")
            if any(a.source is not None and a.source.rpo > a.objective.rpo for a in missed):
                fixes.append("enable database.warmStandby (standby lag bounds the RPO)")
            raise ConfigError(
                "the declared topology misses its objectives: "
                + " | ".join(a.shortfall() for a in missed)
                + "; fix: "
                + "; or ".join(fixes)
            )
    return achieved


def check_stack_tag(stack: str, default_tags: Any) -> None:
    """AWS stacks tag every resource with their stack's name through the provider's default tags."""
    tags = default_tags.get("tags") if isinstance(default_tags, dict) else None
    found = tags.get(STACK_TAG_KEY) if isinstance(tags, dict) else None
    if found != stack:
        shown = "unset" if found is None else json.dumps(found)
        raise ConfigError(
            f"config key 'aws:defaultTags' tags[\"{STACK_TAG_KEY}\"] is {shown}, not this stack's name "
            f"\"{stack}\" (account-wide selections such as AWS Backup's are scoped by it); "
            f"fix: pulumi config set --path 'aws:defaultTags.tags[\"{STACK_TAG_KEY}\"]' {stack}"
        )


def load() -> StackConfig:
    """The current stack's configuration, validated; raises ConfigError."""
    from infra import sdk

    aws = pulumi.Config("aws")
    others = [k for k in sdk.config_values() if not k.startswith(f"{PROJECT}:")]
    cfg = parse(raw_config(), aws.get("region"), others)
    if cfg.cloud is Cloud.AWS:
        check_stack_tag(pulumi.get_stack(), aws.get_object("defaultTags"))
    return with_qualified_peer(cfg, pulumi.get_organization())


def with_qualified_peer(cfg: StackConfig, organization: str) -> StackConfig:
    """`peerStack: dr` means this project's `dr` stack in the current organization: the literal
    `organization` on a self-managed (DIY) backend, the Pulumi Cloud organization otherwise (a
    StackReference needs the fully qualified name, and a hard-coded `organization/...` works on
    self-managed backends only)."""
    update = {}
    if "/" not in cfg.peer_stack:
        update["peer_stack"] = f"{organization}/{PROJECT}/{cfg.peer_stack}"
    if cfg.vault_stack is not None and "/" not in cfg.vault_stack:
        update["vault_stack"] = f"{organization}/{PROJECT}/{cfg.vault_stack}"
    return cfg.model_copy(update=update) if update else cfg
