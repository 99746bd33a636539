"""Hardening (issue 12, point 7; docs/security.md), wired on the real stacks under mocks:
each control is checked where it takes effect (which key, which resource, which condition),
not as a copy of the component's arguments."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.audit_trail import CHANGE_METRIC, CHANGE_METRIC_NAMESPACE, REPORTS_PREFIX, WATCHED_CHANGES
from components.aws.backup_functions import RESERVED_CONCURRENCY
from components.aws.backup_plan import SELECTION_TAG, lock_bounds
from drplan.names import METRIC_NAMESPACE
from drplan.retention import RETENTION, Tier
from drplan.schedules import SCHEDULES

STACKS = ("prod", "dr", "staging", "staging_dr")
KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _site(stack: str) -> str:
    return "dr" if stack in ("dr", "staging_dr") else "primary"


def _named(run, type_, name):
    found = [r for r in run.of_type(type_) if r.name == name]
    assert len(found) == 1, (type_, name, [r.name for r in run.of_type(type_)])
    return found[0]


def _statements(doc) -> list[dict]:
    return json.loads(doc)["Statement"] if isinstance(doc, str) else doc["Statement"]


def _by_arn(run, type_, arn):
    found = [r for r in run.of_type(type_) if r.outputs.get("arn") == arn]
    assert len(found) == 1, (type_, arn)
    return found[0]


def _logs_statement(key) -> dict:
    return next(s for s in _statements(key.inputs["policy"]) if s["Principal"].get("Service", "").startswith("logs."))


def _assert_key_lets_logs_encrypt(run, group) -> None:
    """The group's key is a customer key whose policy lets CloudWatch Logs of this region use it
    for this group (the documented encryption-context condition)."""
    key = _by_arn(run, KEY, group.inputs["kmsKeyId"])
    assert key.protect and key.inputs["enableKeyRotation"] is True
    logs = _logs_statement(key)
    assert logs["Principal"] == {"Service": f"logs.{group.region}.amazonaws.com"}
    allowed = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert f"arn:aws:logs:{group.region}:123456789012:log-group:{group.inputs['name']}" in allowed


# --- Lambda: log groups, concurrency, environment ------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_function_log_groups_are_keyed_and_functions_are_limited(request, stack):
    run = request.getfixturevalue(stack)
    site = _site(stack)
    key = _named(run, KEY, f"{site}-pg-key")
    for fn_key, reserved in RESERVED_CONCURRENCY.items():
        fn = _named(run, FUNCTION, f"{site}-pg-{fn_key}")
        group = _named(run, LOG_GROUP, f"{site}-pg-{fn_key}")
        assert fn.inputs["loggingConfig"]["logGroup"] == group.outputs["name"]
        assert group.inputs["kmsKeyId"] == key.outputs["arn"] and group.inputs["retentionInDays"] > 0
        _assert_key_lets_logs_encrypt(run, group)
        # The environment (bucket, key and secret names) under the same customer key...
        assert fn.inputs["kmsKeyArn"] == key.outputs["arn"]
        # ...which the function's own role may decrypt.
        policy = _statements(_named(run, ROLE_POLICY, f"{site}-pg-{fn_key}").inputs["policy"])
        assert any(s["Resource"] == key.outputs["arn"] and s["Action"] == ["kms:Decrypt"] for s in policy)
        assert fn.inputs["reservedConcurrentExecutions"] == reserved
    assert RESERVED_CONCURRENCY["backup"] == 1


# --- network: flow logs, default security group -------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_created_vpc_has_flow_logs_and_a_closed_default_group(request, stack):
    run = request.getfixturevalue(stack)
    vpc = run.one("aws:ec2/vpc:Vpc")
    default = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == vpc.id
    assert not default.inputs.get("ingress") and not default.inputs.get("egress"), "admits nothing"
    flow = run.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["vpcId"] == vpc.id and flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    group = _by_arn(run, LOG_GROUP, flow.inputs["logDestination"])
    _assert_key_lets_logs_encrypt(run, group)
    assert group.inputs["retentionInDays"] >= 365
    role = _by_arn(run, ROLE, flow.inputs["iamRoleArn"])
    trust = _statements(role.inputs["assumeRolePolicy"])[0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    delivery = next(r for r in run.of_type(ROLE_POLICY) if r.inputs["role"] == role.id)
    assert all(
        res.startswith(group.outputs["arn"]) for s in _statements(delivery.inputs["policy"]) for res in s["Resource"]
    )


def test_an_existing_network_is_left_to_its_owner(pair_prod):
    from infra.mockrun import run_stack

    run = run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={
            "postoucancer-dr:network": {"vpcId": "vpc-0123abcd", "subnetIds": ["subnet-0123abcd", "subnet-4567abcd"]}
        },
    )
    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert not run.of_type("aws:ec2/flowLog:FlowLog") and not run.of_type(
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
    )


# --- RDS: Enhanced Monitoring, rotated credentials ----------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_database_instance_has_enhanced_monitoring(request, stack):
    run = request.getfixturevalue(stack)
    instances = run.of_type("aws:rds/instance:Instance")
    assert instances
    for db in instances:
        assert db.inputs["monitoringInterval"] in (1, 5, 10, 15, 30, 60)
        role = _by_arn(run, ROLE, db.inputs["monitoringRoleArn"])
        trust = _statements(role.inputs["assumeRolePolicy"])[0]
        assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
        attached = [
            a.inputs["policyArn"]
            for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.inputs["role"] == role.outputs["name"]
        ]
        assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_master_credentials_rotate_with_aws_postgres_function(request, stack):
    run = request.getfixturevalue(stack)
    secret = _named(run, "aws:secretsmanager/secret:Secret", "primary-database-credentials")
    rotation = run.one("aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation.inputs["secretId"] == secret.outputs["arn"]
    assert rotation.inputs["rotationRules"]["scheduleExpression"].startswith("cron(")
    app = run.one("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    assert app.inputs["applicationId"].endswith(":applications/SecretsManagerRDSPostgreSQLRotationSingleUser")
    # Pinned: without a version the provider deploys whatever AWS published last.
    assert re.fullmatch(r"\d+\.\d+\.\d+", app.inputs["semanticVersion"])
    function = app.inputs["parameters"]["functionName"]
    assert rotation.inputs["rotationLambdaArn"].endswith(f":function:{function}")
    assert app.urn in rotation.dependencies
    # The function decrypts with the secret's own key, from the private subnets, through the
    # group that may reach the database and the endpoints.
    assert app.inputs["parameters"]["kmsKeyArn"] == secret.inputs["kmsKeyId"]
    rotation_sg = _named(run, "aws:ec2/securityGroup:SecurityGroup", "primary-network-rotation")
    assert app.inputs["parameters"]["vpcSecurityGroupIds"] == rotation_sg.id
    database_sg = _named(run, "aws:ec2/securityGroup:SecurityGroup", "primary-network-database")
    ingress = _named(run, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                     "primary-network-rotation-to-database-in")
    assert ingress.inputs["securityGroupId"] == database_sg.id
    assert ingress.inputs["referencedSecurityGroupId"] == rotation_sg.id and ingress.inputs["fromPort"] == 5432
    # The rotation function needs the host in the secret: the instance's address.
    version = _named(run, "aws:secretsmanager/secretVersion:SecretVersion", "primary-database-credentials")
    value = json.loads(version.inputs["secretString"])
    db = run.one("aws:rds/instance:Instance")
    assert value["host"] == db.outputs["address"] and value["engine"] == "postgres" and value["password"]


def test_dr_site_still_reads_the_replica_of_the_rotated_secret(prod, dr):
    """Rotation changes the value, not the secret: the DR site reads prod's replica as before."""
    prod_secret = prod.outputs["databaseSecretArn"]
    assert dr.outputs["databaseSecretArn"] == prod_secret.replace(":eu-west-3:", ":eu-central-1:")
    assert not dr.of_type("aws:secretsmanager/secretRotation:SecretRotation"), "a replica rotates with its primary"


# --- SNS: grants to services scoped to this account ---------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_topic_policies_scope_every_service_grant(request, stack):
    run = request.getfixturevalue(stack)
    policies = run.of_type("aws:sns/topicPolicy:TopicPolicy")
    assert policies
    for p in policies:
        statements = _statements(p.inputs["policy"])
        services = [s for s in statements if s["Effect"] == "Allow" and "Service" in s["Principal"]]
        assert len(services) == 3
        for s in services:
            assert s["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
            assert re.match(r"^arn:aws:(cloudwatch|events|backup):[a-z0-9-]+:123456789012:", s["Condition"]["ArnLike"][
                "aws:SourceArn"
            ])


# --- CloudTrail to CloudWatch Logs, alarm on control changes ------------------------------


@pytest.mark.parametrize("stack", ["dr", "staging_dr"])
def test_trail_delivers_to_a_keyed_log_group_and_changes_alarm(request, stack):
    run = request.getfixturevalue(stack)
    trail = run.one("aws:cloudtrail/trail:Trail")
    group = _named(run, LOG_GROUP, "dr-audit-events")
    assert trail.inputs["cloudWatchLogsGroupArn"] == f"{group.outputs['arn']}:*"
    _assert_key_lets_logs_encrypt(run, group)
    role = _by_arn(run, ROLE, trail.inputs["cloudWatchLogsRoleArn"])
    trust = _statements(role.inputs["assumeRolePolicy"])[0]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"].endswith(f":trail/{trail.inputs['name']}")
    metric_filter = run.one("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    assert metric_filter.inputs["logGroupName"] == group.outputs["name"]
    for source, events in WATCHED_CHANGES.items():
        assert f'$.eventSource = "{source}"' in metric_filter.inputs["pattern"]
        assert all(f'$.eventName = "{e}"' in metric_filter.inputs["pattern"] for e in events)
    assert {"StopLogging", "PutBackupVaultLockConfiguration", "DeleteBackupVaultLockConfiguration"} <= {
        e for events in WATCHED_CHANGES.values() for e in events
    }
    transformation = metric_filter.inputs["metricTransformation"]
    alarm = _named(run, "aws:cloudwatch/metricAlarm:MetricAlarm", "dr-alerts-audit-control-changed")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == (
        transformation["namespace"], transformation["name"]) == (CHANGE_METRIC_NAMESPACE, CHANGE_METRIC)
    topic = _named(run, "aws:sns/topic:Topic", "dr-alerts")
    assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]] and alarm.inputs["threshold"] == 0
    assert alarm.region == trail.region == group.region
    assert "audit-control-changed" in run.outputs["alerts"]["alarms"]


# --- IAM: Resource "*" only where AWS requires it -----------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_identity_policies_use_resource_star_only_for_eni_management(request, stack):
    run = request.getfixturevalue(stack)
    stars = []
    for p in run.of_type(ROLE_POLICY) + run.of_type("aws:iam/policy:Policy"):
        for s in _statements(p.inputs["policy"]):
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if s["Effect"] == "Allow" and "*" in resources:
                stars.append((p.name, s.get("Sid"), tuple(sorted(s["Action"]))))
    assert stars, "the Lambda functions' ENI statements are expected"
    eni = [actions for _, sid, actions in stars if sid == "VpcNetworkInterfaces"]
    assert eni and all(all((a.startswith("ec2:") and "NetworkInterface" in a) or a == "ec2:DescribeSubnets" or
                           a.endswith("PrivateIpAddresses") for a in actions) for actions in eni)
    # The testing schedule's actions without resource-level permissions (Service Authorization Reference:
    # no resource type for backup:PutRestoreValidationResult, ssm:CreateOpsItem, cloudwatch:PutMetricData),
    # each alone in its statement; PutMetricData bound to the project's namespace.
    testing = {sid: actions for _, sid, actions in stars if sid != "VpcNetworkInterfaces"}
    assert testing.items() <= STAR_ONLY.items(), testing
    for p in run.of_type(ROLE_POLICY):
        for st in _statements(p.inputs["policy"]):
            if st.get("Sid") in ("PublishDrillMetrics", "PublishTheAge"):
                assert st["Condition"] == {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}


STAR_ONLY = {
    "ReportValidation": ("backup:PutRestoreValidationResult",),
    "PublishDrillMetrics": ("cloudwatch:PutMetricData",),
    "PublishTheAge": ("cloudwatch:PutMetricData",),
    "OpenTrackedTask": ("ssm:CreateOpsItem",),
}


# --- AWS Backup Audit Manager --------------------------------------------------------------


@pytest.mark.parametrize("stack,tier", [("prod", Tier.PROD), ("dr", Tier.PROD), ("staging", Tier.STAGING)])
def test_audit_framework_checks_the_plans_numbers(request, stack, tier):
    run = request.getfixturevalue(stack)
    framework = run.one("aws:backup/framework:Framework")
    controls = {c["name"]: c for c in framework.inputs["controls"]}
    retention = RETENTION[tier]

    def params(name):
        return {p["name"]: p["value"] for p in controls[name].get("inputParameters", [])}

    assert params("BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK") == {
        "requiredFrequencyUnit": "hours",
        "requiredFrequencyValue": "24",
        "requiredRetentionDays": str(retention.daily.days),
    }
    assert params("BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK") == {
        "requiredRetentionDays": str(lock_bounds(retention, SCHEDULES)[0])
    }
    assert "BACKUP_RECOVERY_POINT_ENCRYPTED" in controls
    peer_region = "eu-west-3" if stack == "dr" else "eu-central-1"
    assert params("BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION") == {"crossRegionList": peer_region}
    assert ("BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK" in controls) == (tier is Tier.PROD)
    # Only what a plan selects: a standby no plan protects before activation is no gap.
    assert controls["BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION"]["scope"]["tags"] == dict([SELECTION_TAG])
    assert framework.region == run.one("aws:backup/vault:Vault").region


def test_staging_framework_follows_its_retention_override(staging):
    """A stack's override reaches the framework like every other realisation of retention."""
    from infra.mockrun import run_stack

    longer = run_stack("staging", overrides={"postoucancer-dr:retention": {"daily": "14d"}})
    controls = {c["name"]: c for c in longer.one("aws:backup/framework:Framework").inputs["controls"]}
    frequency = {p["name"]: p["value"] for p in controls["BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK"][
        "inputParameters"]}
    assert frequency["requiredRetentionDays"] == "14"


@pytest.mark.parametrize("stack", ["dr", "staging_dr"])
def test_reports_are_delivered_into_the_audit_bucket(request, stack):
    run = request.getfixturevalue(stack)
    bucket = _named(run, "aws:s3/bucket:Bucket", "dr-audit-logs")
    framework = run.one("aws:backup/framework:Framework")
    plans = run.of_type("aws:backup/reportPlan:ReportPlan")
    assert {p.inputs["reportSetting"]["reportTemplate"] for p in plans} >= {
        "CONTROL_COMPLIANCE_REPORT", "BACKUP_JOB_REPORT", "COPY_JOB_REPORT", "RESTORE_JOB_REPORT"
    }
    for p in plans:
        channel = p.inputs["reportDeliveryChannel"]
        assert channel["s3BucketName"] == bucket.outputs["bucket"]
        assert f"{channel['s3KeyPrefix']}/" == REPORTS_PREFIX and p.region == bucket.region
    compliance = next(p for p in plans if p.inputs["reportSetting"]["reportTemplate"] == "CONTROL_COMPLIANCE_REPORT")
    assert compliance.inputs["reportSetting"]["frameworkArns"] == [framework.outputs["arn"]]
    # The bucket policy and the key let Backup Audit Manager's service-linked role write there.
    slr = "arn:aws:iam::123456789012:role/aws-service-role/reports.backup.amazonaws.com/AWSServiceRoleForBackupReports"
    policy = next(r for r in run.of_type("aws:s3/bucketPolicy:BucketPolicy") if r.parent == bucket.parent)
    reports = next(s for s in _statements(policy.inputs["policy"]) if s.get("Sid") == "BackupAuditManagerReports")
    assert reports["Action"] == "s3:PutObject" and reports["Resource"] == f"{bucket.outputs['arn']}/{REPORTS_PREFIX}*"
    assert reports["Condition"]["ArnEquals"]["aws:PrincipalArn"] == slr
    key = _named(run, KEY, "dr-audit-key")
    writes = next(s for s in _statements(key.inputs["policy"]) if s.get("Sid") == "BackupAuditManagerWritesReports")
    assert set(writes["Action"]) >= {"kms:GenerateDataKey", "kms:Decrypt"}
    assert writes["Condition"]["ArnEquals"]["aws:PrincipalArn"] == slr


def test_primary_site_has_a_framework_but_no_report_bucket(prod):
    assert prod.of_type("aws:backup/framework:Framework")
    assert not prod.of_type("aws:backup/reportPlan:ReportPlan")
