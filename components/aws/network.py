"""A site's private network for the data tier: VPC, private subnets in several AZs, the
VPC endpoints the database, cache and backup functions need, least-privilege security groups.

Nothing here has a route to the internet: AWS APIs are reached through endpoints (S3 as a
gateway endpoint, KMS, Secrets Manager, CloudWatch Logs and Monitoring as interface
endpoints with private DNS; RDS and AWS Backup for the DR drill's validation function, which
looks up the restored instance and reports to AWS Backup from inside the VPC). With
`existing_vpc_id`/`existing_subnet_ids` the component
creates only the security groups in that network (the existing network must provide the
endpoints: a second interface endpoint with private DNS for the same service is refused).

A VPC the component creates is also hardened: its default security group admits nothing (no
rule in or out, so nothing launched without a group can talk), and its flow logs (all
traffic, accepted and rejected) go to a CloudWatch Logs group under the network's own
customer key, kept `flow_log_retention_days`. CloudWatch Logs rather than S3: the queries an
investigation needs (Logs Insights, metric filters) work on it directly, and an S3 destination
would be one more bucket to lock, log and replicate (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from .iam import from_account, service_trust_policy
from .kms import CustomerKey, CustomerKeyArgs, logs_key_statements

POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443
# Private subnets are spread over this many availability zones (RDS Multi-AZ and
# ElastiCache Multi-AZ need at least two).
MAX_AZS = 3
MIN_AZS = 2
SUBNET_PREFIX = 20  # /20 per subnet: 4096 addresses, room for Lambda ENIs
INTERFACE_ENDPOINTS = ("kms", "secretsmanager", "logs", "monitoring", "rds", "backup")
# A year of flow logs: an intrusion or exfiltration is often found months later, and the
# plan's yearly review looks back over the year. One of CloudWatch Logs' accepted periods.
FLOW_LOG_RETENTION_DAYS = 365
# Aggregate flow records per minute (the finest interval; the default is 10 minutes).
FLOW_LOG_AGGREGATION_SECONDS = 60


@dataclass
class SiteNetworkArgs:
    region: str
    cidr: str = "10.40.0.0/16"
    existing_vpc_id: str | None = None
    existing_subnet_ids: list[str] = field(default_factory=list)
    flow_log_retention_days: int = FLOW_LOG_RETENTION_DAYS
    tags: dict[str, str] = field(default_factory=dict)


def flow_log_trust_policy(account_id: str, region: str) -> str:
    """VPC Flow Logs may assume the delivery role for this account's flow logs only
    (confused-deputy conditions of the VPC user guide, "IAM role for publishing flow logs")."""
    return service_trust_policy(
        "vpc-flow-logs.amazonaws.com",
        {
            **from_account(account_id),
            "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{region}:{account_id}:vpc-flow-log/*"},
        },
    )


def flow_log_delivery_policy(log_group_arn: str) -> str:
    """Write into the one flow-log group (AWS's example grants these on "*")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeliverFlowLogs",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],
                }
            ],
        }
    )


def subnet_cidrs(cidr: str, count: int) -> list[str]:
    """The first `count` /20 blocks of the VPC range, one per availability zone."""
    net = ipaddress.ip_network(cidr)
    if net.prefixlen > SUBNET_PREFIX:
        raise ValueError(f"network cidr {cidr} is smaller than one /{SUBNET_PREFIX} subnet")
    blocks = list(net.subnets(new_prefix=SUBNET_PREFIX))
    if len(blocks) < count:
        raise ValueError(f"network cidr {cidr} holds {len(blocks)} /{SUBNET_PREFIX} subnets, {count} needed")
    return [str(b) for b in blocks[:count]]


class SiteNetwork(pulumi.ComponentResource):
    """`postoucancer:aws:SiteNetwork`.

    Security groups (who may talk to whom):
      app        → database:5432, redis:6379, endpoints:443   (application servers)
      functions  → database:5432, endpoints:443, S3 via the gateway endpoint  (backup/verify Lambdas)
      database   ← app, functions; no egress
      redis      ← app; no egress
      rotation   → database:5432, endpoints:443  (the credentials' rotation function)
      endpoints  ← app, functions on 443; no egress
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    app_sg: aws.ec2.SecurityGroup
    functions_sg: aws.ec2.SecurityGroup
    database_sg: aws.ec2.SecurityGroup
    redis_sg: aws.ec2.SecurityGroup
    rotation_sg: aws.ec2.SecurityGroup
    endpoints_sg: aws.ec2.SecurityGroup | None = None
    endpoints: dict[str, aws.ec2.VpcEndpoint]
    # A created VPC only (an existing network's owner decides its own).
    default_sg: aws.ec2.DefaultSecurityGroup | None = None
    flow_log: aws.ec2.FlowLog | None = None
    flow_log_group: aws.cloudwatch.LogGroup | None = None

    def __init__(self, name: str, args: SiteNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:SiteNetwork", name, None, opts)
        region = args.region
        child = pulumi.ResourceOptions(parent=self)
        self.endpoints = {}
        self.vpc: aws.ec2.Vpc | None = None
        if args.existing_vpc_id:
            self.vpc_id = pulumi.Output.from_input(args.existing_vpc_id)
            self.private_subnet_ids = [pulumi.Output.from_input(s) for s in args.existing_subnet_ids]
            self.cidr = None
            route_table_ids: list[pulumi.Output[str]] = []
        else:
            self.cidr = args.cidr
            self.vpc = aws.ec2.Vpc(
                name,
                region=region,
                cidr_block=args.cidr,
                enable_dns_support=True,  # interface endpoints' private DNS needs both
                enable_dns_hostnames=True,
                tags={"Name": name, **args.tags},
                opts=child,
            )
            self.vpc_id = self.vpc.id
            self._harden_vpc(name, args, self.vpc)
            zones = aws.get_availability_zones(state="available", region=region).names[:MAX_AZS]
            if len(zones) < MIN_AZS:
                raise ValueError(f"region {region} offers {len(zones)} availability zones; {MIN_AZS} are needed")
            table = aws.ec2.RouteTable(
                f"{name}-private", region=region, vpc_id=self.vpc.id, tags={"Name": f"{name}-private"}, opts=child
            )
            route_table_ids = [table.id]
            self.private_subnet_ids = []
            for zone, block in zip(zones, subnet_cidrs(args.cidr, len(zones)), strict=True):
                subnet = aws.ec2.Subnet(
                    f"{name}-private-{zone}",
                    region=region,
                    vpc_id=self.vpc.id,
                    availability_zone=zone,
                    cidr_block=block,
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-private-{zone}", "tier": "private", **args.tags},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-private-{zone}", region=region, subnet_id=subnet.id, route_table_id=table.id, opts=child
                )
                self.private_subnet_ids.append(subnet.id)

        def sg(role: str, description: str) -> aws.ec2.SecurityGroup:
            # No egress block: the provider removes AWS's default allow-all egress rule.
            return aws.ec2.SecurityGroup(
                f"{name}-{role}",
                region=region,
                vpc_id=self.vpc_id,
                description=description,
                revoke_rules_on_delete=True,
                tags={"Name": f"{name}-{role}", **args.tags},
                opts=child,
            )

        self.app_sg = sg("app", "Application servers: clients of the database and the cache")
        self.functions_sg = sg("functions", "Backup and restore-verify functions")
        self.database_sg = sg("database", "PostgreSQL: reachable from the app and the backup functions only")
        self.redis_sg = sg("redis", "Redis: reachable from the app only")
        self.rotation_sg = sg("rotation", "Credential rotation function: the database and Secrets Manager only")

        def allow(rule: str, source: aws.ec2.SecurityGroup, target: aws.ec2.SecurityGroup, port: int) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}-in",
                region=region,
                security_group_id=target.id,
                referenced_security_group_id=source.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=rule,
                opts=child,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{rule}-out",
                region=region,
                security_group_id=source.id,
                referenced_security_group_id=target.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=rule,
                opts=child,
            )

        allow("app-to-database", self.app_sg, self.database_sg, POSTGRES_PORT)
        allow("functions-to-database", self.functions_sg, self.database_sg, POSTGRES_PORT)
        allow("app-to-redis", self.app_sg, self.redis_sg, REDIS_PORT)
        allow("rotation-to-database", self.rotation_sg, self.database_sg, POSTGRES_PORT)

        if self.vpc is not None:
            self.endpoints_sg = sg("endpoints", "Interface VPC endpoints of AWS APIs")
            allow("app-to-endpoints", self.app_sg, self.endpoints_sg, HTTPS_PORT)
            allow("functions-to-endpoints", self.functions_sg, self.endpoints_sg, HTTPS_PORT)
            allow("rotation-to-endpoints", self.rotation_sg, self.endpoints_sg, HTTPS_PORT)
            s3 = aws.ec2.VpcEndpoint(
                f"{name}-s3",
                region=region,
                vpc_id=self.vpc_id,
                service_name=f"com.amazonaws.{region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=route_table_ids,
                tags={"Name": f"{name}-s3", **args.tags},
                opts=child,
            )
            self.endpoints["s3"] = s3
            # The functions reach S3 through the gateway endpoint's prefix list only.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-functions-to-s3-out",
                region=region,
                security_group_id=self.functions_sg.id,
                prefix_list_id=s3.prefix_list_id,
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                description="functions-to-s3",
                opts=child,
            )
            for service in INTERFACE_ENDPOINTS:
                self.endpoints[service] = aws.ec2.VpcEndpoint(
                    f"{name}-{service}",
                    region=region,
                    vpc_id=self.vpc_id,
                    service_name=f"com.amazonaws.{region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=self.private_subnet_ids,
                    security_group_ids=[self.endpoints_sg.id],
                    tags={"Name": f"{name}-{service}", **args.tags},
                    opts=child,
                )
        self.register_outputs(
            {
                "flowLogId": self.flow_log.id if self.flow_log is not None else None,
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "databaseSecurityGroupId": self.database_sg.id,
                "functionsSecurityGroupId": self.functions_sg.id,
            }
        )

    def _harden_vpc(self, name: str, args: SiteNetworkArgs, vpc: aws.ec2.Vpc) -> None:
        """The created VPC's default security group closed, and its flow logs recorded."""
        region = args.region
        child = pulumi.ResourceOptions(parent=self)
        # Adopts the VPC's default group and removes every rule from it: no ingress, no egress.
        self.default_sg = aws.ec2.DefaultSecurityGroup(
            f"{name}-default",
            region=region,
            vpc_id=vpc.id,
            tags={"Name": f"{name}-default (no rules: use a role's group)", **args.tags},
            opts=child,
        )
        # Log group names are per account and region: carry the stack.
        group_name = f"/postoucancer/{pulumi.get_stack()}/vpc-flow-logs/{name}"
        key = CustomerKey(
            f"{name}-flow-logs-key",
            CustomerKeyArgs(
                region=region,
                description=f"Post Ou Cancer VPC flow logs of {name}",
                extra_statements=logs_key_statements(region, [group_name]),
                tags=args.tags,
            ),
            opts=child,
        )
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            region=region,
            name=group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=key.arn,
            tags=args.tags,
            opts=child,
        )
        account_id = aws.get_caller_identity_output().account_id
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description=f"VPC Flow Logs: delivers {name}'s flow logs to its log group",
            assume_role_policy=account_id.apply(lambda a: flow_log_trust_policy(a, region)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=self.flow_log_group.arn.apply(flow_log_delivery_policy),
            opts=child,
        )
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-flow-logs",
            region=region,
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=FLOW_LOG_AGGREGATION_SECONDS,
            tags={"Name": f"{name}-flow-logs", **args.tags},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
