"""The functions' input: one validated model per operation, from environment + event.

Environment variables give the deployment's defaults (set by the Pulumi components),
the event (Lambda payload or CLI --event) overrides per run. A bad input raises
`InvalidRequest` naming the field, where it came from and the fix, before anything runs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from drplan.handover import ENV_VAR as POLICY_ENV
from drplan.handover import BackupPolicy
from drplan.retention import Tier

from .errors import InvalidRequest

_DB_NAME = r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_SM_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
_PREFIX = r"^[A-Za-z0-9!_.*'()/-]{0,200}$"


def _policy(value: Any) -> BackupPolicy:
    if isinstance(value, BackupPolicy):
        return value
    return BackupPolicy.from_json(value)


# The deployment's effective retention and slot rules (drplan.handover), set by the stack.
Policy = Annotated[BackupPolicy, PlainValidator(_policy)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # field -> environment variable (deployment defaults)
    ENV: ClassVar[dict[str, str]] = {}
    # field -> how to fix it
    FIX: ClassVar[dict[str, str]] = {}

    database: str = Field(pattern=_DB_NAME, description="the PostgreSQL database backed up")
    bucket: str = Field(pattern=_BUCKET, description="the backup bucket")
    prefix: str = Field(default="postgres", pattern=_PREFIX)
    tier: Tier = Tier.PROD
    db_dsn: SecretStr | None = None
    db_secret_arn: str | None = Field(default=None, pattern=_SM_ARN)

    @model_validator(mode="after")
    def _one_credential_source(self):
        if self.db_dsn is not None and self.db_secret_arn is not None:
            raise ValueError("db_dsn and db_secret_arn are exclusive: give one credential source")
        return self


_COMMON_ENV = {
    "database": "BACKUP_DATABASE",
    "bucket": "BACKUP_BUCKET",
    "prefix": "BACKUP_PREFIX",
    "tier": "BACKUP_TIER",
    "db_dsn": "DB_DSN",
    "db_secret_arn": "DB_SECRET_ARN",
}
_COMMON_FIX = {
    "database": "set event.database or env BACKUP_DATABASE to a PostgreSQL database name, e.g. postoucancer",
    "bucket": "set event.bucket or env BACKUP_BUCKET to the backup bucket's name (lowercase, 3-63 chars)",
    "prefix": "use a key prefix of letters, digits and / _ . - (default: postgres)",
    "tier": "use one of: " + ", ".join(t.value for t in Tier),
    "db_dsn": "give a libpq DSN (host=... port=... user=... dbname=...) or leave it unset",
    "db_secret_arn": "give the Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
    " or unset it when DB_DSN / PG* variables are used",
    "__root__": "set only one of DB_DSN / DB_SECRET_ARN (or neither: then the PG* libpq variables apply)",
}


class BackupRequest(_Request):
    ENV: ClassVar[dict[str, str]] = {
        **_COMMON_ENV,
        "kms_key_id": "BACKUP_KMS_KEY_ID",
        "compression_level": "BACKUP_COMPRESSION_LEVEL",
        "compression_threads": "BACKUP_COMPRESSION_THREADS",
        "part_size_mb": "BACKUP_PART_SIZE_MB",
        "object_lock": "BACKUP_OBJECT_LOCK",
        "policy": POLICY_ENV,
    }
    FIX: ClassVar[dict[str, str]] = {
        **_COMMON_FIX,
        "kms_key_id": "set env BACKUP_KMS_KEY_ID (or event.kms_key_id) to the backup KMS key's ARN, id or alias/NAME",
        "at": "give an ISO 8601 time with a zone, e.g. 2026-11-27T02:00:00Z, or omit it (now)",
        "compression_level": "use a zstd level from 1 to 19 (default 3)",
        "compression_threads": "use 0 (single-threaded) to 64 compression threads",
        "part_size_mb": "use a part size from 5 to 512 MiB (default 8; S3 allows 10,000 parts: 8 MiB parts = 78 GiB)",
        "object_lock": "use auto (lock when the bucket has Object Lock), on, or off",
        "policy": f"set env {POLICY_ENV} (the stack sets it) or event.policy to the deployment's effective plan, "
        'e.g. {"tier": "prod", "slotUtc": "02:00", "weeklyOn": "sunday", "retention": {"daily": "30d", '
        '"weekly": "12w", "monthly": "12mo", "yearly": "7y"}}',
    }

    kms_key_id: str = Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9:/_-]+$")
    at: AwareDatetime | None = None  # the run's logical time (default: now); picks the slot
    compression_level: int = Field(default=3, ge=1, le=19)
    compression_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0, le=64)
    part_size_mb: int = Field(default=8, ge=5, le=512)
    object_lock: Literal["auto", "on", "off"] = "auto"
    # Not defaulted from the image: a stack's retention override must decide the lock date.
    policy: Policy

    @model_validator(mode="after")
    def _tier_matches_policy(self):
        if "tier" in self.model_fields_set and self.tier is not self.policy.tier:
            raise ValueError(f"tier {self.tier.value!r} disagrees with the policy's tier {self.policy.tier.value!r}")
        return self


class Probe(BaseModel):
    """A read-only SQL check on the restored database: one row, one value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    sql: str = Field(min_length=1, max_length=4000)
    equals: int | str | None = None
    min: float | None = None

    @field_validator("sql")
    @classmethod
    def _one_statement(cls, v: str) -> str:
        if ";" in v.strip().rstrip(";"):
            raise ValueError("a probe is one statement (no ';' inside)")
        return v.strip().rstrip(";")


class VerifyRequest(_Request):
    ENV: ClassVar[dict[str, str]] = {
        **_COMMON_ENV,
        "probes": "VERIFY_PROBES",
        "record": "VERIFY_RECORD",
        "max_age_hours": "VERIFY_MAX_AGE_HOURS",
    }
    FIX: ClassVar[dict[str, str]] = {
        **_COMMON_FIX,
        "manifest_key": "give the key of a manifest under <prefix>/<database>/manifests/, or omit it for the newest",
        "probes": 'give a JSON list like [{"name": "posts", "sql": "SELECT count(*) FROM posts", "min": 1}]',
        "record": "true to write a verification record next to the backups, false not to",
        "max_age_hours": "give the largest acceptable age of the verified backup in hours, or omit it",
    }

    manifest_key: str | None = Field(default=None, min_length=1, max_length=1024)
    probes: list[Probe] = Field(default_factory=list, max_length=50)
    record: bool = True
    max_age_hours: float | None = Field(default=None, gt=0)

    @field_validator("probes", mode="before")
    @classmethod
    def _probes_json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v) if v.strip() else []
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
        return v

    @field_validator("manifest_key")
    @classmethod
    def _manifest_under_prefix(cls, v: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model one: the error then names manifest_key and its fix.
        return manifest_of_database(v, info)


def manifest_of_database(key: str | None, info: ValidationInfo) -> str | None:
    """A request's manifest_key must lie under its own database's manifests/ (validator body)."""
    database = info.data.get("database")
    if key is not None and database and f"/{database}/manifests/" not in f"/{key}":
        raise ValueError(f"{key!r} is not a manifest of database {database!r}")
    return key


def load_request(model: type[_Request], event: Any, environ: Mapping[str, str] | None = None):
    """Merge environment defaults and the event, validate; raise InvalidRequest on error."""
    environ = os.environ if environ is None else environ
    what = f"{model.__name__.removesuffix('Request').lower()} request"
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise InvalidRequest(
            [{"field": "event", "problem": f"must be a JSON object, got {type(event).__name__}",
              "fix": "send a JSON object such as {\"database\": \"postoucancer\"}"}],
            what,
        )
    data: dict[str, Any] = {}
    source: dict[str, str] = {}
    for field, var in model.ENV.items():
        if environ.get(var, "") != "":
            data[field] = environ[var]
            source[field] = f"env {var}"
    for key, value in event.items():
        data[key] = value
        source[key] = f"event.{key}"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_problems(model, exc, source), what) from None


def _problems(model: type[_Request], exc: ValidationError, source: dict[str, str]) -> list[dict[str, str]]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        top = loc[0] if loc else "__root__"
        field = ".".join(loc) if loc else "request"
        if err["type"] == "extra_forbidden":
            known = sorted(model.model_fields)
            fix = f"remove it; known fields: {', '.join(known)}"
            problem = "unknown field"
        elif err["type"] == "missing":
            env = model.ENV.get(top)
            problem = "is required" + (f" (event.{top} or env {env})" if env else f" (event.{top})")
            fix = model.FIX.get(top, "set it")
        else:
            problem = re.sub(r"^Value error, ", "", err["msg"])
            if top in source:
                problem += f" (from {source[top]})"
            if loc:
                fix = model.FIX.get(top, "correct the value")
            else:  # a whole-request rule: only the credential one has a fix of its own
                fix = model.FIX["__root__"] if "db_dsn" in problem else "correct the request"
        problems.append({"field": field, "problem": problem, "fix": fix})
    return problems
