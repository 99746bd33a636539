"""The SDK internals of infra/sdk.py, each checked against the installed SDK: a Pulumi or
pulumi-policy upgrade that moves one fails here, naming it, not somewhere downstream.
Also the public API that replaced the others (secret unwrapping, the organization)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pulumi
import pulumi_aws as aws
import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationArgs

from infra import sdk
from infra.mockrun import run_program
from infra.peer import Peer
from infra.policy_check import evaluate

PEER = "organization/postoucancer-dr/dr"


def _drift(internal: str) -> str:
    return f"SDK internal {internal} changed: see infra/sdk.py"


def test_sync_await_reads_the_peer_outputs_while_the_program_is_built():
    seen = {}

    def program():
        ref = pulumi.StackReference("peer", stack_name=PEER)
        seen["outputs"] = sdk.sync_await(ref.outputs.future())

    run_program(program, "t", {}, peer_outputs={"bucketArn": "arn:aws:s3:::b"})
    assert seen["outputs"] == {"bucketArn": "arn:aws:s3:::b"}, _drift("pulumi.runtime.sync_await._sync_await")


def test_config_values_holds_every_key_set_for_the_run(monkeypatch):
    seen = {}
    run_program(lambda: seen.update(sdk.config_values()), "t", {"postoucancer-dr:tierr": "prod", "aws:region": "x"})
    # A misspelt key too: validation must see it to report it.
    assert seen.get("postoucancer-dr:tierr") == "prod", _drift("pulumi.runtime.config.CONFIG (set_all_config)")
    # ... and the CLI's PULUMI_CONFIG bag (public: get_config_env).
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"postoucancer-dr:role": "dr"}))
    assert sdk.config_values()["postoucancer-dr:role"] == "dr"


def test_not_applicable_is_recognised_and_skipped_by_the_offline_runner():
    error = sdk.not_applicable_error()
    with pytest.raises(error):
        StackValidationArgs([], {}).not_applicable("x")
    assert error is not Exception, _drift("pulumi_policy.policy._NotApplicableError")

    def validate(args, report):
        args.not_applicable("not for this resource")
        report("unreachable")

    policy = ResourceValidationPolicy(
        name="t", description="t", enforcement_level=EnforcementLevel.MANDATORY, validate=validate
    )
    run = run_program(lambda: aws.sns.Topic("topic", region="eu-west-3"), "t", {"aws:region": "eu-west-3"})
    assert evaluate(run, [policy]) == []


def test_peer_reads_once_keeps_secrets_secret_and_reports_what_is_missing():
    seen = {}

    def program():
        peer = Peer(SimpleNamespace(peer_stack=PEER))  # type: ignore[arg-type]
        token, arn = peer.get("token"), peer.get("bucketArn")
        seen["missing"] = peer.get("notYet")
        seen["token"] = (sdk.sync_await(token.is_secret()), sdk.sync_await(token.future()))
        seen["arn"] = (sdk.sync_await(arn.is_secret()), sdk.sync_await(arn.future()))
        seen["has"] = [peer.has(k) for k in ("token", "bucketArn", "notYet")]
        seen["next"] = peer.next_step("prod")

    outputs = {"token": "s3cr3t", "bucketArn": "arn:aws:s3:::b"}
    run = run_program(program, "prod", {}, peer_outputs=outputs, peer_secrets=["token"])
    assert seen["token"] == (True, "s3cr3t") and seen["arn"] == (False, "arn:aws:s3:::b")
    assert seen["missing"] is None and seen["has"] == [True, True, False]
    assert "has no outputs notYet yet" in seen["next"] and "pulumi up -s dr" in seen["next"]
    assert [r.type for r in run.resources] == ["pulumi:pulumi:StackReference"]


def test_secret_wrappers_are_stripped_from_records_and_the_organization_is_set():
    seen = {}

    def program():
        seen["org"] = pulumi.get_organization()
        pulumi.export("pw", pulumi.Output.secret("hunter2"))

    run = run_program(program, "t", {})
    assert run.outputs["pw"] == "hunter2" and seen["org"] == "organization"
