"""Rotation of the PostgreSQL master credentials (a GeneratedSecret) by the rotation function
AWS publishes for PostgreSQL single-user rotation (Serverless Application Repository,
SecretsManagerRDSPostgreSQLRotationSingleUser), deployed into the site's private subnets.

Why this and not RDS `manage_master_user_password`: the credentials are a secret this program
owns and replicates into the DR region under the DR site's key; the DR site's functions and app
read that replica (infra/aws/data.py `database_secret`), and it must stay readable with the
primary region gone. A secret RDS manages is RDS's own: its replication and key are not ours
to declare. Rotating our secret keeps that wiring, and Secrets Manager replicates each new
version to the DR replica.

The function needs the secret to name the host (`host`, written once the instance exists), and
reaches the database (5432) and the Secrets Manager endpoint (443) through the network's
`rotation` security group. Rotations run mid-month at midday UTC, far from the 02:00 backup
slot: single-user rotation changes the password before it moves AWSCURRENT, so a client that
connects in between fails once (the backup function retries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pulumi
import pulumi_aws as aws

from drplan.schedules import SCHEDULES, Schedules

POSTGRES_SINGLE_USER = (
    "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
)
# Pinned like any dependency: an unpinned application deploys whatever AWS published last, and a
# new version is a change to review. The version AWS CDK pins for the same application
# (aws-cdk-lib, aws-secretsmanager SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER).
POSTGRES_SINGLE_USER_VERSION = "1.1.671"
ROTATION_DAY_OF_MONTH = 15  # away from the 1st (monthly backup) and the month's end
ROTATION_WINDOW = "2h"
# Half a day after the backup slot: no backup or restore test is running then.
AFTER_BACKUP = timedelta(hours=12)


def rotation_schedule(schedules: Schedules = SCHEDULES) -> str:
    """Secrets Manager cron: monthly, mid-month, half a day after the backup slot (UTC)."""
    at = (datetime.combine(datetime(2024, 1, 1), schedules.full_backup_at_utc) + AFTER_BACKUP).time()
    return f"cron({at.minute} {at.hour} {ROTATION_DAY_OF_MONTH} * ? *)"


@dataclass
class PostgresRotationArgs:
    region: str
    secret_arn: pulumi.Input[str]
    secret_kms_key_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    security_group_ids: list[pulumi.Input[str]]
    # Lambda function names are per account and region: carry the stack.
    function_name: str
    schedules: Schedules = field(default_factory=lambda: SCHEDULES)


class PostgresRotation(pulumi.ComponentResource):
    """`postoucancer:aws:PostgresRotation`."""

    application: aws.serverlessrepository.CloudFormationStack
    rotation: aws.secretsmanager.SecretRotation

    def __init__(self, name: str, args: PostgresRotationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:PostgresRotation", name, None, opts)
        region = args.region
        self.application = aws.serverlessrepository.CloudFormationStack(
            name,
            region=region,
            name=args.function_name,
            application_id=POSTGRES_SINGLE_USER,
            semantic_version=POSTGRES_SINGLE_USER_VERSION,
            # The template creates the function's role and the permission Secrets Manager invokes it with.
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "functionName": args.function_name,
                # Resolves to the VPC's interface endpoint (private DNS).
                "endpoint": f"https://secretsmanager.{region}.amazonaws.com",
                "vpcSubnetIds": pulumi.Output.all(*args.subnet_ids).apply(lambda ids: ",".join(ids)),
                "vpcSecurityGroupIds": pulumi.Output.all(*args.security_group_ids).apply(lambda ids: ",".join(ids)),
                # The function may decrypt and re-encrypt the secret under its customer key.
                "kmsKeyArn": args.secret_kms_key_arn,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        account_id = aws.get_caller_identity_output().account_id
        function_arn = account_id.apply(lambda a: f"arn:aws:lambda:{region}:{a}:function:{args.function_name}")
        self.rotation = aws.secretsmanager.SecretRotation(
            name,
            region=region,
            secret_id=args.secret_arn,
            rotation_lambda_arn=function_arn,
            rotation_rules={"schedule_expression": rotation_schedule(args.schedules), "duration": ROTATION_WINDOW},
            # The first rotation waits for the schedule: not in the middle of a deployment.
            rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.application]),
        )
        self.register_outputs({"function": function_arn, "schedule": rotation_schedule(args.schedules)})
