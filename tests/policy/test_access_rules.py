"""Keys, protection, IAM and functions: a bad resource is caught, a good one passes."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from policy.rules import access, functions, keys
from tests.policy.harness import ACCOUNT, DR_REGION, PRIMARY_REGION, doc, names, statement, violations

DR = {"role": "dr", "tier": "prod"}
PRIMARY_KEY = f"arn:aws:kms:{PRIMARY_REGION}:{ACCOUNT}:key/primary"
DR_KEY = f"arn:aws:kms:{DR_REGION}:{ACCOUNT}:key/dr"
IMAGE = f"{ACCOUNT}.dkr.ecr.{PRIMARY_REGION}.amazonaws.com/backup:1"
ASSUME = doc(statement("Allow", "sts:AssumeRole", None, Principal={"Service": "lambda.amazonaws.com"}))


# --- KMS ---------------------------------------------------------------------------------


def key(rotation: bool = True, policy: bool = True, separate_policy: bool = False, **extra) -> None:
    k = aws.kms.Key(
        "key",
        region=PRIMARY_REGION,
        enable_key_rotation=rotation,
        policy=doc(statement("Allow", "kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
        if policy
        else None,
        opts=pulumi.ResourceOptions(protect=True),
        **extra,
    )
    if separate_policy:
        aws.kms.KeyPolicy(
            "key-policy",
            region=PRIMARY_REGION,
            key_id=k.key_id,
            policy=doc(statement("Allow", "kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
        )


def test_kms_rule_catches_unrotated_and_policyless_keys():
    p = keys.kms_key_rotation_and_policy
    assert violations(p, key) == []
    assert names(violations(p, lambda: key(rotation=False))) == {"key"}
    assert names(violations(p, lambda: key(policy=False))) == {"key"}
    # A KeyPolicy resource is as explicit as an inline policy.
    assert violations(p, lambda: key(policy=False, separate_policy=True)) == []
    # Asymmetric keys cannot rotate in KMS: only the policy is required.
    asymmetric = {"customer_master_key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY"}
    assert violations(p, lambda: key(rotation=False, **asymmetric)) == []


@pytest.mark.parametrize(
    ("program", "ok"),
    [
        (lambda k: aws.rds.Instance("copy", region=DR_REGION, instance_class="db.r6g.large",
                                    replicate_source_db=f"arn:aws:rds:{PRIMARY_REGION}:{ACCOUNT}:db:p",
                                    storage_encrypted=True, kms_key_id=k), DR_KEY),
        (lambda k: aws.rds.InstanceAutomatedBackupsReplication(
            "copy", region=DR_REGION, source_db_instance_arn=f"arn:aws:rds:{PRIMARY_REGION}:{ACCOUNT}:db:p",
            kms_key_id=k), DR_KEY),
        (lambda k: aws.backup.Vault("copy", region=DR_REGION, kms_key_arn=k), DR_KEY),
        (lambda k: aws.secretsmanager.Secret("copy", region=PRIMARY_REGION, kms_key_id=PRIMARY_KEY,
                                             replicas=[{"region": DR_REGION, "kms_key_id": k}]), DR_KEY),
        (lambda k: aws.s3.BucketReplicationConfig(
            "copy", region=PRIMARY_REGION, bucket="src", role=f"arn:aws:iam::{ACCOUNT}:role/r",
            rules=[{"id": "r", "status": "Enabled", "destination": {
                "bucket": "arn:aws:s3:::dest", "encryption_configuration": {"replica_kms_key_id": k}}}]), DR_KEY),
    ],
    ids=["rds-replica", "automated-backups-replication", "dr-vault", "secret-replica", "s3-replication"],
)  # fmt: skip
def test_replica_key_rule_catches_a_copy_under_a_key_of_the_failed_region(program, ok):
    assert violations(keys.replica_key_in_own_region, lambda: program(ok), site=DR) == []
    found = violations(keys.replica_key_in_own_region, lambda: program(PRIMARY_KEY), site=DR)
    assert names(found) == {"copy"}, found


def test_replica_key_rule_wants_a_key_arn_on_a_cross_region_replica():
    def replica_without_key():
        aws.rds.Instance(
            "copy",
            region=DR_REGION,
            instance_class="db.r6g.large",
            replicate_source_db=f"arn:aws:rds:{PRIMARY_REGION}:{ACCOUNT}:db:p",
        )

    assert names(violations(keys.replica_key_in_own_region, replica_without_key, site=DR)) == {"copy"}


# --- protect -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda o: aws.s3.Bucket("stateful", region=PRIMARY_REGION, opts=o),
        lambda o: aws.kms.Key("stateful", region=PRIMARY_REGION, opts=o),
        lambda o: aws.backup.Vault("stateful", region=PRIMARY_REGION, opts=o),
        lambda o: aws.secretsmanager.Secret("stateful", region=PRIMARY_REGION, opts=o),
        lambda o: aws.elasticache.ReplicationGroup("stateful", region=PRIMARY_REGION, description="c", opts=o),
        lambda o: aws.rds.Instance("stateful", region=PRIMARY_REGION, instance_class="db.t4g.medium", opts=o),
    ],
    ids=["bucket", "key", "vault", "secret", "redis", "rds"],
)
def test_protect_rule_catches_unprotected_stateful_resources(make):
    p = access.stateful_protected
    assert names(violations(p, lambda: make(pulumi.ResourceOptions(protect=False)))) == {"stateful"}
    assert violations(p, lambda: make(pulumi.ResourceOptions(protect=True))) == []


def test_protect_rule_ignores_stateless_resources():
    assert violations(access.stateful_protected, lambda: aws.iam.Role("r", assume_role_policy=ASSUME)) == []


# --- IAM wildcards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda r: aws.iam.RolePolicy("grant", role=r.id, policy=doc(statement("Allow", "*", "*"))),
        lambda r: aws.iam.Policy("grant", policy=doc(statement("Allow", ["s3:GetObject", "*"], ["*"]))),
        lambda r: aws.iam.RolePolicyAttachment(
            "grant", role=r.name, policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"
        ),
        lambda r: aws.s3.BucketPolicy(
            "grant", region=PRIMARY_REGION, bucket="b", policy=doc(statement("Allow", "*", "*", Principal="*"))
        ),
    ],
    ids=["role-policy", "managed-policy", "admin-attachment", "bucket-policy"],
)
def test_iam_rule_catches_admin_wildcards(make):
    def program():
        make(aws.iam.Role("role", assume_role_policy=ASSUME))

    assert names(violations(access.iam_no_wildcard_admin, program)) == {"grant"}


def test_iam_rule_passes_scoped_statements_and_kms_key_policies():
    def program():
        role = aws.iam.Role("role", assume_role_policy=ASSUME)
        aws.iam.RolePolicy("grant", role=role.id, policy=doc(statement("Allow", "s3:PutObject", "arn:aws:s3:::b/*")))
        aws.iam.RolePolicy("deny-all", role=role.id, policy=doc(statement("Deny", "*", "*")))

    assert violations(access.iam_no_wildcard_admin, program) == []


# --- functions ------------------------------------------------------------------------------------


def function(
    grant: list[str] | None = None,
    managed: str | None = None,
    custom_policy: list[str] | None = None,
    dlq: bool = True,
    alarm: str | None = "Errors",
    alarm_actions: bool = True,
    metric_query: bool = False,
) -> None:
    role = aws.iam.Role("backup-fn", assume_role_policy=ASSUME)
    aws.iam.RolePolicy(
        "backup-fn-write",
        role=role.id,
        policy=doc(statement("Allow", grant or ["s3:PutObject", "s3:GetObject", "s3:PutObjectRetention"], "*")),
    )
    if managed:
        aws.iam.RolePolicyAttachment("backup-fn-managed", role=role.name, policy_arn=managed)
    if custom_policy:
        pol = aws.iam.Policy("backup-fn-extra", policy=doc(statement("Allow", custom_policy, "*")))
        aws.iam.RolePolicyAttachment("backup-fn-extra", role=role.name, policy_arn=pol.arn)
    queue = aws.sqs.Queue("backup-fn-dlq", region=PRIMARY_REGION)
    fn = aws.lambda_.Function(
        "backup-fn",
        region=PRIMARY_REGION,
        role=role.arn,
        package_type="Image",
        image_uri=IMAGE,
        dead_letter_config={"target_arn": queue.arn} if dlq else None,
    )
    topic = aws.sns.Topic("alerts", region=PRIMARY_REGION)
    if alarm is None:
        return
    common = {
        "region": PRIMARY_REGION,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "evaluation_periods": 1,
        "threshold": 1,
        "alarm_actions": [topic.arn] if alarm_actions else [],
    }
    if metric_query:
        aws.cloudwatch.MetricAlarm(
            "backup-fn-errors",
            metric_queries=[
                {
                    "id": "errors",
                    "return_data": True,
                    "metric": {
                        "namespace": "AWS/Lambda",
                        "metric_name": alarm,
                        "dimensions": {"FunctionName": fn.name},
                        "period": 60,
                        "stat": "Sum",
                    },
                }
            ],
            **common,
        )
    else:
        aws.cloudwatch.MetricAlarm(
            "backup-fn-errors",
            namespace="AWS/Lambda",
            metric_name=alarm,
            dimensions={"FunctionName": fn.name},
            statistic="Sum",
            period=60,
            **common,
        )


@pytest.mark.parametrize(
    "bad",
    [
        {"grant": ["s3:PutObject", "s3:DeleteObjectVersion"]},
        {"grant": ["s3:*"]},
        {"grant": ["s3:Delete*"]},
        {"grant": ["s3:BypassGovernanceRetention"]},
        {"grant": ["backup:*"]},
        {"grant": ["rds:DeleteDBSnapshot"]},
        {"managed": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
        {"custom_policy": ["backup:DeleteRecoveryPoint"]},
    ],
    ids=["delete-version", "s3-star", "s3-delete-star", "bypass-governance", "backup-star", "rds-snapshot",
         "s3-full-access", "attached-policy"],
)  # fmt: skip
def test_backup_function_rule_catches_roles_that_can_delete_backups(bad):
    p = access.backup_function_cannot_delete_backups
    assert names(violations(p, lambda: function(**bad))) == {"backup-fn"}
    assert violations(p, function) == []


def test_dead_letter_queue_rule():
    assert names(violations(functions.lambda_dead_letter_queue, lambda: function(dlq=False))) == {"backup-fn"}
    assert violations(functions.lambda_dead_letter_queue, function) == []


@pytest.mark.parametrize(
    "bad",
    [{"alarm": None}, {"alarm": "Throttles"}, {"alarm_actions": False}],
    ids=["no-alarm", "wrong-metric", "nobody-notified"],
)
def test_error_alarm_rule_catches_unwatched_functions(bad):
    assert names(violations(functions.lambda_error_alarm, lambda: function(**bad))) == {"backup-fn"}


def test_error_alarm_rule_passes_metric_and_metric_query_alarms():
    assert violations(functions.lambda_error_alarm, function) == []
    assert violations(functions.lambda_error_alarm, lambda: function(metric_query=True)) == []


def test_backup_function_rule_covers_the_cronjob_role_of_pod_identity():
    def cronjob_role(actions: list[str]):
        def program():
            role = aws.iam.Role("pg-cron", assume_role_policy=ASSUME)
            aws.iam.RolePolicy("pg-cron-backup", role=role.id, policy=doc(statement("Allow", actions, "*")))
            aws.eks.PodIdentityAssociation(
                "pg-cron",
                region=PRIMARY_REGION,
                cluster_name="apps",
                namespace="postoucancer",
                service_account="backup-functions",
                role_arn=role.arn,
            )

        return program

    p = access.backup_function_cannot_delete_backups
    assert violations(p, cronjob_role(["s3:PutObject", "s3:GetObject"])) == []
    assert names(violations(p, cronjob_role(["s3:PutObject", "s3:DeleteObject"]))) == {"pg-cron"}
