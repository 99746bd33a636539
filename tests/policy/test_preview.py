"""During a preview some values are unknown; the stack rules must neither crash nor guess.
They join configuration resources to their bucket through property dependencies, skip what
they cannot know, and tell the site from the stack's `site` export or, failing that, from
the resource names (infra/site.py: "<role>-<base>") with the strictest tier."""

from __future__ import annotations

import dataclasses

from pulumi_policy import StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from drplan.retention import Tier
from infra import policy_check
from infra.mockrun import StackRun
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


def test_site_without_export_comes_from_the_stack_file_then_from_names(dr, staging):
    for run, role, tier in ((dr, "dr", Tier.PROD), (staging, "primary", Tier.STAGING)):
        without_export = [r for r in policy_check.stack_resources(run) if r.resource_type != "pulumi:pulumi:Stack"]
        site = Stack(StackValidationArgs(without_export)).site()
        assert (site.role.value, site.tier, site.source) == (role, tier, "stack file")
    # A stack this repository has no file for: the names say dr, the tier is the strictest.
    renamed = StackRun("elsewhere", dr.config, dr.resources, {}, [])
    renamed.resources = [dataclasses.replace(r, urn=r.urn.replace("urn:pulumi:dr::", "urn:pulumi:elsewhere::"))
                         for r in dr.resources]  # fmt: skip
    without_export = [r for r in policy_check.stack_resources(renamed) if r.resource_type != "pulumi:pulumi:Stack"]
    site = Stack(StackValidationArgs(without_export)).site()
    assert (site.role.value, site.tier, site.source) == ("dr", Tier.PROD, "inferred")
    # Policy config (pulumi preview --policy-pack-config) wins over everything.
    site = Stack(StackValidationArgs(without_export, {"role": "primary", "tier": "staging"})).site()
    assert (site.role.value, site.tier, site.source) == ("primary", Tier.STAGING, "policy config")
