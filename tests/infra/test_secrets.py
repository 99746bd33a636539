"""Credentials (issue 3, point 6): generated, in Secrets Manager under a customer key,
replicated to the DR region under a DR-region key; in plain text nowhere they could leak.

The generated values travel as Pulumi secrets (encrypted in the state, masked in the CLI):
the registrations that carry them mark them secret, and they appear in no stack output,
no other input, no log line. The stack files hold no plain credential. Each detector is
also run against a planted leak, so that it is known to be able to fail."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from infra.config import SECRET_KEYS
from infra.mockrun import ROOT, StackRun, run_program, run_stack

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
P = "postoucancer-dr:"


# --- the detectors -------------------------------------------------------------------


def _strings(value: Any, path: str = ""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _under(path: str, secret_paths: list[str]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret_paths)


def plain_occurrences(run: StackRun, value: str) -> list[str]:
    """Everywhere `value` is readable in plain text: stack outputs that are not secret,
    resource inputs that are not registered as secret, log lines, the config."""
    found = []
    for key, out in run.outputs.items():
        if key not in run.secret_outputs and value in json.dumps(out):
            found.append(f"output {key}")
    for r in run.resources:
        for path, text in _strings(r.inputs):
            if value in text and not _under(path, r.secret_inputs):
                found.append(f"input {r.name}.{path}")
    found += [f"log {level}: {msg[:60]}" for level, msg in run.logs if value in msg]
    found += [f"config {k}" for k, v in run.config.items() if value in v]
    return found


# A config key that names a credential (not the ARN, name or id of one).
_CREDENTIAL_KEY = re.compile(r"password|passwd|secret|token|credential|private.?key|access.?key|kubeconfig", re.I)
_REFERENCE_KEY = re.compile(r"(Arn|Arns|Name|Id|Ids|Length|Days|Ttl)$")
# Credential material whatever the key: AWS access key ids, PEM private keys, kubeconfig auth.
_CREDENTIAL_VALUE = re.compile(
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----|client-key-data:|\btoken:\s*\S{20,}"
)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and str(value["secure"]).startswith("v1:")


def plain_credentials(config: dict[str, Any]) -> list[str]:
    """Config entries (paths) that hold a credential without Pulumi's `secure:` encryption."""
    found = []

    def walk(value: Any, path: str, key: str) -> None:
        if _is_secure(value):
            return
        bare = key.split(":", 1)[-1]
        if bare in SECRET_KEYS or (_CREDENTIAL_KEY.search(bare) and not _REFERENCE_KEY.search(bare)):
            found.append(f"{path}: a credential must be set with `pulumi config set --secret`")
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}", k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]", key)
        elif isinstance(value, str) and _CREDENTIAL_VALUE.search(value):
            found.append(f"{path}: looks like credential material")

    for key, value in config.items():
        walk(value, key, key)
    return found


# --- the stacks ----------------------------------------------------------------------


def _generated(run: StackRun) -> dict[str, str]:
    """The generated credentials of a run: SecretVersion name → the password it stores."""
    return {v.name: json.loads(v.inputs["secretString"])["password"] for v in run.of_type(VERSION)}


def test_database_secret_is_replicated_under_a_dr_region_key(prod, dr):
    secret = prod.one(SECRET, "primary-database-credentials")
    assert secret.protect and secret.region == "eu-west-3"
    assert secret.inputs["kmsKeyId"] == prod.one("aws:kms/key:Key", "primary-secrets-key").outputs["arn"]
    (replica,) = secret.inputs["replicas"]
    dr_key = dr.one("aws:kms/key:Key", "dr-secrets-key")
    assert replica == {"region": "eu-central-1", "kmsKeyId": dr_key.outputs["arn"]}
    assert dr_key.region == "eu-central-1" and dr_key.outputs["arn"].split(":")[3] == "eu-central-1"
    assert secret.inputs["recoveryWindowInDays"] > 0


def test_dr_exports_the_replica_secret_arn(prod, dr):
    primary = prod.outputs["databaseSecretArn"]
    replica = dr.outputs["databaseSecretArn"]
    assert replica.split(":")[3] == "eu-central-1" and primary.split(":")[3] == "eu-west-3"
    assert replica.replace(":eu-central-1:", ":eu-west-3:") == primary


def test_generated_credentials_reach_their_consumers_as_secrets(prod, staging, dr):
    for run in (prod, staging):
        db = run.one(RDS, "primary-database")
        stored = json.loads(run.one(VERSION, "primary-database-credentials").inputs["secretString"])
        # host: the rotation function connects to it (components/aws/secret_rotation.py).
        assert set(stored) == {"username", "password", "engine", "port", "dbname", "host"}
        assert db.inputs["password"] == stored["password"] and len(stored["password"]) >= 32
        assert "password" in db.secret_inputs
        assert run.one(REDIS).inputs["authToken"] == _generated(run)["primary-redis-auth"]
    for run in (prod, staging, dr):
        for version in run.of_type(VERSION):
            assert "secretString" in version.secret_inputs, version.name
        assert "authToken" in run.one(REDIS).secret_inputs
        # The stack's kubeconfig (a `secure:` config value) reaches its provider as a secret.
        assert "kubeconfig" in run.one("pulumi:providers:kubernetes").secret_inputs


def test_generated_credentials_are_in_plain_text_nowhere(prod, dr, staging, staging_dr):
    for run in (prod, dr, staging, staging_dr):
        generated = _generated(run)
        assert generated, run.stack
        for name, value in generated.items():
            assert plain_occurrences(run, value) == [], (run.stack, name)


def test_the_leak_detector_finds_a_planted_leak():
    leaked = "offline-planted-credential-0123456789"

    def program():
        secret = pulumi.Output.secret(leaked)
        aws.ssm.Parameter("ok", region="eu-west-3", type="SecureString", value=secret)
        aws.sns.Topic("plain", region="eu-west-3", display_name=leaked)
        aws.sns.Topic("tags", region="eu-west-3", tags={"note": f"pw={leaked}"})
        pulumi.log.info(f"connecting with {leaked}")
        pulumi.export("exposed", {"password": leaked})
        pulumi.export("hidden", secret)

    run = run_program(program, "leaky", {"aws:region": "eu-west-3"})
    assert run.secret_outputs == ["hidden"]
    assert sorted(plain_occurrences(run, leaked)) == [
        "input plain.displayName",
        "input tags.tags.note",
        f"log info: connecting with {leaked}",
        "output exposed",
    ]


def test_stack_files_hold_no_plain_credentials():
    files = sorted(ROOT.glob("Pulumi.*.yaml"))
    assert len(files) == 7  # prod, dr, staging, staging-dr, prod-azure, dr-azure, vault
    for path in files:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        assert plain_credentials(config) == [], path.name
        # Each site's stack file does carry its kubeconfig, encrypted (the vault account runs no cluster).
        if config.get(P + "role") != "vault":
            assert _is_secure(config.get(P + "kubeconfig")), path.name


@pytest.mark.parametrize(
    "entry",
    [
        {P + "kubeconfig": "apiVersion: v1\nclusters: []"},
        {P + "database": {"masterPassword": "hunter2hunter2"}},
        {P + "functions": {"apiToken": "abc"}},
        {P + "notes": "AKIAIOSFODNN7EXAMPLE"},
        {P + "alerts": {"emails": ["-----BEGIN RSA PRIVATE KEY-----"]}},
        {P + "kubeconfig": {"secure": "plaintext"}},
    ],
    ids=["kubeconfig", "nested-password", "token", "access-key-id", "pem", "not-encrypted"],
)
def test_the_stack_file_scan_finds_a_plain_credential(entry):
    assert plain_credentials(entry)
    # References to credentials are not credentials.
    assert plain_credentials({P + "functions": {"verifySecretArn": "arn:aws:secretsmanager:x", "tokenTtl": 5}}) == []


def test_prod_before_dr_exists_keeps_credentials_in_region():
    lonely = run_stack("prod", peer_outputs=None)
    assert not lonely.one(SECRET, "primary-database-credentials").inputs.get("replicas")
    assert lonely.outputs["database"]["credentialsReplicatedTo"] is None
    assert "drSecretsKmsKeyArn" in lonely.outputs["nextStep"]
