"""Helpers shared by the rules: unknown-safe property access, the stack's resource index,
the site context (role and tier), IAM statement parsing, regions of ARNs.

The rules see the engine's view of a resource: camelCase property names, resource
*inputs* in resource validation, resource *outputs* in stack validation, and during a
preview some values unknown (reading one raises `UnknownValueError`). A rule that cannot
know a value during a preview skips that resource instead of guessing; the same rule sees
the real value at `pulumi up` and in the offline runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ReportViolation, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from drplan.names import PROJECT, Role
from drplan.periods import parse_period
from drplan.retention import RETENTION, GfsClass, Retention, Tier, effective_retention

ROOT = Path(__file__).resolve().parents[2]  # the repository: Pulumi.<stack>.yaml live here
STACK_TYPE = "pulumi:pulumi:Stack"
BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"

_MISSING = object()


def get(props: Mapping[str, Any] | None, *path: str | int, default: Any = None) -> Any:
    """props[path...] or `default` when absent; raises UnknownValueError when unknown."""
    cur: Any = props
    for key in path:
        if cur is None:
            return default
        try:
            if isinstance(key, int):  # noqa: SIM108
                cur = cur[key]
            else:
                cur = cur.get(key, _MISSING) if isinstance(cur, Mapping) else _MISSING
        except (IndexError, KeyError, TypeError):
            return default
        if cur is _MISSING:
            return default
    return default if cur is None else cur


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        return [value]
    return list(value)


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def each_known(items: Iterable[Any], check: Callable[[Any], None]) -> None:
    """Run `check` on each item; an item whose values are unknown (preview) is skipped."""
    for item in items:
        try:
            check(item)
        except UnknownValueError:
            continue


# --- regions ----------------------------------------------------------------------

_ARN = re.compile(r"^arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):")


def arn_region(arn: Any) -> str | None:
    """The region of an ARN (None for global ARNs, e.g. S3 buckets and IAM)."""
    m = _ARN.match(str(arn or ""))
    return (m.group(2) or None) if m else None


def arn_service(arn: Any) -> str | None:
    m = _ARN.match(str(arn or ""))
    return m.group(1) if m else None


def resource_region(props: Mapping[str, Any], provider: Any) -> str | None:
    """pulumi-aws v7 per-resource `region`, else the provider's region."""
    region = get(props, "region")
    if region:
        return str(region)
    if provider is not None:
        region = get(getattr(provider, "props", None), "region")
        if region:
            return str(region)
    return None


# --- the stack ---------------------------------------------------------------------


# Policies that depend on the site declare this schema, so that
# `pulumi preview --policy-pack policy --policy-pack-config cfg.json` may state the site
# explicitly; by default the stack's `site` export (infra/program.py) says it.
SITE_SCHEMA = PolicyConfigSchema(
    properties={
        "role": {"type": "string", "enum": [r.value for r in Role]},
        "tier": {"type": "string", "enum": [t.value for t in Tier]},
        # The stack's retention overrides (longer than the tier's), e.g. {"weekly": "16w"}.
        "retention": {"type": "object"},
    }
)


@dataclass(frozen=True)
class Site:
    role: Role
    tier: Tier
    source: str  # "policy config", "site export", "stack file" or "inferred" (names, strictest tier)
    overrides: tuple[tuple[str, str], ...] = ()  # the stack's retention overrides, as configured

    @property
    def inferred(self) -> bool:
        return self.source == "inferred"

    @property
    def retention(self) -> Retention:
        """The floors the rules enforce: the tier's retention lengthened by the stack's overrides
        (an invalid override, which the program refuses anyway, leaves the tier's floors)."""
        try:
            periods = {gen: parse_period(value) for gen, value in self.overrides if gen in {c.value for c in GfsClass}}
            return effective_retention(self.tier, periods)
        except ValueError:
            return RETENTION[self.tier]


def _overrides(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in value.items())) if isinstance(value, Mapping) else ()


def _stack_file_site(stack: str) -> dict[str, Any]:
    """role/tier from Pulumi.<stack>.yaml of this repository (the pack lives in it)."""
    import yaml

    path = ROOT / f"Pulumi.{stack}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack) or not path.is_file():
        return {}
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: config.get(f"{PROJECT}:{k}") for k in ("role", "tier", "retention")}


class Stack:
    """An index over StackValidationArgs.resources."""

    def __init__(self, args: StackValidationArgs):
        self.args = args
        self.resources: list[PolicyResource] = list(args.resources)
        self._by_type: dict[str, list[PolicyResource]] = {}
        for r in self.resources:
            self._by_type.setdefault(r.resource_type, []).append(r)

    def of_type(self, *types: str) -> list[PolicyResource]:
        return [r for t in types for r in self._by_type.get(t, [])]

    def region(self, r: PolicyResource) -> str | None:
        return resource_region(r.props, r.provider)

    @property
    def stack_name(self) -> str | None:
        """From the URNs: urn:pulumi:<stack>::<project>::..."""
        for r in self.resources:
            parts = r.urn.split("::")
            if parts and parts[0].startswith("urn:pulumi:"):
                return parts[0].removeprefix("urn:pulumi:")
        return None

    def site(self) -> Site:
        """The site's role and tier: the policy config, else the stack's `site` export
        (infra/program.py), else the stack's Pulumi.<stack>.yaml, else inferred from the names
        (infra/site.py names everything "<role>-<base>") with the strictest tier."""
        sources: list[tuple[str, Any]] = [("policy config", lambda: self.args.get_config() or {})]
        for root in self.of_type(STACK_TYPE):
            sources.append(("site export", lambda root=root: get(root.props, "site") or {}))
        if self.stack_name:
            sources.append(("stack file", lambda: _stack_file_site(self.stack_name or "")))
        role = tier = retention = None
        source = "inferred"
        for name, read in sources:
            try:
                found = read()
            except UnknownValueError:
                continue
            role, tier = role or found.get("role"), tier or found.get("tier")
            retention = retention or found.get("retention")
            if role and tier:
                source = name
                break
        if role is None:
            dr_prefix = f"{Role.DR.value}-"
            role = Role.DR.value if any(r.name.startswith(dr_prefix) for r in self.resources) else Role.PRIMARY.value
        if tier is None:
            tier = Tier.PROD.value  # unknown: judge by the strictest tier
        return Site(Role(role), Tier(tier), source, _overrides(retention))

    def bucket_of(self, config: PolicyResource, key: str = "bucket") -> PolicyResource | None:
        """The Bucket a bucket-level configuration resource belongs to."""
        return self.find(config, key, BUCKET, ("bucket", "id"))

    def find(
        self, source: PolicyResource, key: str, target_type: str, target_keys: tuple[str, ...]
    ) -> PolicyResource | None:
        """The resource of `target_type` that `source.props[key]` refers to: by value when
        known, else by the property's dependency (a preview of a new stack)."""
        candidates = self.of_type(target_type)
        try:
            value = get(source.props, key)
        except UnknownValueError:
            value = None
        if value is not None:
            for c in candidates:
                for tk in target_keys:
                    try:
                        if get(c.props, tk) == value:
                            return c
                    except UnknownValueError:
                        continue
        deps = source.property_dependencies.get(key) or []
        matches = [d for d in deps if d.resource_type == target_type]
        if len(matches) == 1:
            return matches[0]
        if value is None:
            matches = [d for d in source.dependencies if d.resource_type == target_type]
            if len(matches) == 1:
                return matches[0]
        return None

    def configs_by_bucket(self, config_type: str) -> dict[str, list[PolicyResource]]:
        """Bucket URN → its configuration resources of `config_type`."""
        out: dict[str, list[PolicyResource]] = {}
        for c in self.of_type(config_type):
            b = self.bucket_of(c)
            if b is not None:
                out.setdefault(b.urn, []).append(c)
        return out

    def log_target_buckets(self) -> set[str]:
        """URNs of buckets that receive S3 server access logs."""
        targets: set[str] = set()
        for logging in self.of_type(LOGGING):
            b = self.find(logging, "targetBucket", BUCKET, ("bucket", "id"))
            if b is not None:
                targets.add(b.urn)
        return targets


def stack_policy(
    check: Callable[[Stack, ReportViolation], None],
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        check(Stack(args), report)

    validate.__name__ = check.__name__
    validate.__doc__ = check.__doc__
    return validate


def tags(props: Mapping[str, Any]) -> dict[str, str]:
    return dict(get(props, "tags") or {})


def label(r: PolicyResource) -> str:
    return f"{r.resource_type.rsplit(':', 1)[-1]} '{r.name}'"


# --- IAM ---------------------------------------------------------------------------


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document given as JSON text or a dict."""
    if document is None or document == "":
        return []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    return [dict(s) for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def allows(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def resources(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Resource"))]


def action_matches(pattern: str, action: str) -> bool:
    """Does the IAM action pattern (with * and ?) grant `action`? Case-insensitive, as IAM."""
    regex = "^" + re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, action.lower()) is not None


def iter_statements(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for d in documents:
        yield from policy_statements(d)
