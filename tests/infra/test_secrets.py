"""Credentials (issue 3, point 6): generated, in Secrets Manager under a customer key,
replicated to the DR region under a DR-region key; never in plain text in the repo."""

import json

from infra.mockrun import ROOT

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def _password(run, name):
    return json.loads(run.one(VERSION, name).inputs["secretString"])["password"]


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


def test_database_gets_the_generated_password_and_it_is_nowhere_in_the_repo(prod, staging):
    for run, name in ((prod, "primary-database-credentials"), (staging, "primary-database-credentials")):
        password = _password(run, name)
        assert run.one("aws:rds/instance:Instance").inputs["password"] == password
        assert len(password) >= 32
        assert password not in json.dumps(run.outputs)
        for path in [*ROOT.glob("Pulumi*.yaml"), *ROOT.glob("infra/**/*.py"), *ROOT.glob("components/**/*.py")]:
            assert password not in path.read_text(), path
    content = json.loads(prod.one(VERSION, "primary-database-credentials").inputs["secretString"])
    assert set(content) == {"username", "password", "engine", "port", "dbname"}


def test_prod_before_dr_exists_keeps_credentials_in_region():
    from infra.mockrun import run_stack

    lonely = run_stack("prod", peer_outputs=None)
    assert not lonely.one(SECRET, "primary-database-credentials").inputs.get("replicas")
    assert lonely.outputs["database"]["credentialsReplicatedTo"] is None
    assert "drSecretsKmsKeyArn" in lonely.outputs["nextStep"]
