"""The site network (issue 3, point 1): private subnets in several AZs, the endpoints the
data tier and the functions need, least-privilege security groups."""

import ipaddress

import pytest

from components.aws.network import INTERFACE_ENDPOINTS, MIN_AZS, POSTGRES_PORT, REDIS_PORT, subnet_cidrs
from infra.mockrun import run_stack

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def _sg_id(run, role):
    return next(r for r in run.of_type(SG) if r.name.endswith(f"-network-{role}")).id


def _ingress_to(run, role):
    target = _sg_id(run, role)
    return [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == target]


@pytest.mark.parametrize("stack,region", [("prod", "eu-west-3"), ("dr", "eu-central-1")])
def test_private_subnets_span_availability_zones(request, stack, region):
    run = request.getfixturevalue(stack)
    vpc = run.one("aws:ec2/vpc:Vpc")
    assert vpc.region == region and vpc.inputs["enableDnsSupport"] and vpc.inputs["enableDnsHostnames"]
    subnets = run.of_type("aws:ec2/subnet:Subnet")
    zones = {s.inputs["availabilityZone"] for s in subnets}
    assert len(zones) == len(subnets) >= MIN_AZS
    assert all(z.startswith(region) for z in zones)
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    nets = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(ipaddress.ip_network(vpc.inputs["cidrBlock"])) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    # Nothing routes to the internet: no gateways of any kind.
    assert not run.of_type("aws:ec2/internetGateway:InternetGateway")
    assert not run.of_type("aws:ec2/natGateway:NatGateway")


def test_endpoints_for_the_data_tier_and_functions(prod):
    endpoints = {r.inputs["serviceName"]: r for r in prod.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    s3 = endpoints.pop("com.amazonaws.eu-west-3.s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway" and s3.inputs["routeTableIds"]
    assert set(endpoints) == {f"com.amazonaws.eu-west-3.{s}" for s in INTERFACE_ENDPOINTS}
    for e in endpoints.values():
        assert e.inputs["vpcEndpointType"] == "Interface" and e.inputs["privateDnsEnabled"] is True
        assert e.inputs["securityGroupIds"] == [_sg_id(prod, "endpoints")]
        assert len(e.inputs["subnetIds"]) == len(prod.of_type("aws:ec2/subnet:Subnet"))
    assert {"kms", "secretsmanager", "logs", "monitoring"} <= set(INTERFACE_ENDPOINTS)


def test_database_reachable_only_from_app_and_functions(prod):
    rules = _ingress_to(prod, "database")
    sources = {r.inputs["referencedSecurityGroupId"] for r in rules}
    # ...and the credentials' rotation function (docs/security.md).
    assert sources == {_sg_id(prod, "app"), _sg_id(prod, "functions"), _sg_id(prod, "rotation")}
    assert all(r.inputs["fromPort"] == r.inputs["toPort"] == POSTGRES_PORT for r in rules)
    assert not any(r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6") for r in prod.of_type(INGRESS))
    db = prod.one("aws:rds/instance:Instance")
    assert db.inputs["vpcSecurityGroupIds"] == [_sg_id(prod, "database")]


def test_redis_reachable_only_from_app(prod):
    rules = _ingress_to(prod, "redis")
    assert [(r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"]) for r in rules] == [
        (_sg_id(prod, "app"), REDIS_PORT)
    ]


def test_security_groups_have_no_inline_or_open_rules(prod, dr):
    for run in (prod, dr):
        for sg in run.of_type(SG):
            assert not sg.inputs.get("ingress") and not sg.inputs.get("egress"), sg.name
        # The database, cache and endpoint groups never initiate connections.
        senders = {r.inputs["securityGroupId"] for r in run.of_type(EGRESS)}
        assert not senders & {_sg_id(run, "database"), _sg_id(run, "redis"), _sg_id(run, "endpoints")}
        assert not any(r.inputs.get("cidrIpv4") == "0.0.0.0/0" for r in run.of_type(EGRESS))


def test_network_is_exported_for_the_functions_and_the_app(prod):
    net = prod.outputs["network"]
    assert net["vpcId"] == prod.one("aws:ec2/vpc:Vpc").id
    assert sorted(net["privateSubnetIds"]) == sorted(s.id for s in prod.of_type("aws:ec2/subnet:Subnet"))
    assert net["securityGroups"]["functions"] == _sg_id(prod, "functions")


def test_existing_network_from_config(pair_prod):
    run = run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={
            "postoucancer-dr:network": {"vpcId": "vpc-0abc12345678def01", "subnetIds": ["subnet-1", "subnet-2"]}
        },
    )
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    assert not run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"), "an existing network brings its own endpoints"
    assert {sg.inputs["vpcId"] for sg in run.of_type(SG)} == {"vpc-0abc12345678def01"}
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == ["subnet-1", "subnet-2"]


def test_subnet_cidrs():
    assert subnet_cidrs("10.40.0.0/16", 3) == ["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20"]
    with pytest.raises(ValueError):
        subnet_cidrs("10.40.0.0/24", 2)
    with pytest.raises(ValueError):
        subnet_cidrs("10.40.0.0/19", 3)
