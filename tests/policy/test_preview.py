"""During a preview some values are unknown; the stack rules must neither crash nor guess.
They join configuration resources to their bucket through property dependencies, skip what
they cannot know, and tell the site from the stack's `site` export or, failing that, from
the resource names (infra/site.py: "<role>-<base>") with the strictest tier."""

from __future__ import annotations

from pulumi_policy import StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from infra import policy_check
from infra.model import Tier
from policy.rules import s3
from policy.rules._util import BUCKET, BUCKET_POLICY, VERSIONING, Stack


def _preview_view(run, unknown: dict[str, str]):
    """The run's stack resources with `unknown[type]` set to an unknown value, linked by
    property dependency as the engine does."""
    resources = policy_check.stack_resources(run)
    buckets = {r.urn: r for r in resources if r.resource_type == BUCKET}
    for r in resources:
        if r.resource_type in unknown:
            props = dict(r.props)
            (owner,) = [b for b in buckets.values() if b.urn in {d.urn for d in r.dependencies}]
            props[unknown[r.resource_type]] = UNKNOWN_STRING_VALUE
            r.props = unknown_checking_proxy(props)
            r.property_dependencies["bucket"] = [owner]
    return resources


def _run(policy, resources):
    found = []
    policy.validate(StackValidationArgs(resources), lambda msg, urn=None: found.append((msg, urn)))
    return found


def test_unknown_bucket_ids_are_joined_by_property_dependency(prod):
    resources = _preview_view(prod, {VERSIONING: "bucket"})
    assert _run(s3.s3_bucket_versioned, resources) == []


def test_unknown_policy_documents_are_skipped_not_reported(prod):
    resources = _preview_view(prod, {BUCKET_POLICY: "policy"})
    assert _run(s3.s3_tls_only, resources) == []


def test_site_falls_back_to_resource_names_and_the_strictest_tier(dr, staging):
    without_export = [r for r in policy_check.stack_resources(dr) if r.resource_type != "pulumi:pulumi:Stack"]
    site = Stack(StackValidationArgs(without_export)).site()
    assert (site.role.value, site.tier, site.inferred) == ("dr", Tier.PROD, True)
    # Policy config (pulumi preview --policy-pack-config) wins over everything.
    config = {"role": "primary", "tier": "staging"}
    site = Stack(StackValidationArgs(without_export, config)).site()
    assert (site.role.value, site.tier, site.inferred) == ("primary", Tier.STAGING, False)
