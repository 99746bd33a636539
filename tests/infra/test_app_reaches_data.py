"""The app reaches its data (issue 12, point 6), and its load balancer has a certificate.

The database and Redis security groups admit only the app group (components/aws/network.py), so
something must put that group on the API pods: the data tier runs in the cluster's VPC
(network.vpcId/subnetIds) and the pods carry the group through EKS security groups for pods (the
VPC CNI's SecurityGroupPolicy; AWS EKS user guide, "Security groups for Pods": the cluster
security group is kept on the pods so that they still reach CoreDNS and the kubelet). Chosen over
the node group's groups (every pod of a node would reach the database) and over VPC peering (a
second network to keep in step, and the groups of a peered VPC cannot be referenced across
regions).
"""

import pytest

from infra.aws.app import UNREACHABLE
from infra.mockrun import run_stack

P = "postoucancer-dr:"
SGP = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
CLUSTER = {
    "vpcId": "vpc-0abc12345678def01",
    "subnetIds": ["subnet-0aaa1111bbbb2222c", "subnet-0ccc3333dddd4444e"],
    "clusterSecurityGroupId": "sg-0c1a5e12345678abc",
}


@pytest.fixture(scope="module")
def in_cluster_vpc(pair_prod):
    return run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={P + "network": CLUSTER, P + "functions": {"runner": "kubernetes", "eksClusterName": "prod-eks"}},
    )


def test_the_data_tier_lives_in_the_clusters_vpc(in_cluster_vpc):
    groups = in_cluster_vpc.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups and {g.inputs["vpcId"] for g in groups} == {CLUSTER["vpcId"]}
    assert not in_cluster_vpc.of_type("aws:ec2/vpc:Vpc")
    subnet_group = in_cluster_vpc.one("aws:rds/subnetGroup:SubnetGroup")
    assert sorted(subnet_group.inputs["subnetIds"]) == sorted(CLUSTER["subnetIds"])


def test_api_pods_carry_the_app_group_and_the_cluster_group(in_cluster_vpc):
    app_sg = in_cluster_vpc.one("aws:ec2/securityGroup:SecurityGroup", "primary-network-app")
    policy = next(p for p in in_cluster_vpc.of_type(SGP) if p.name == "primary-api-pod-security-groups")
    assert policy.inputs["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "api"}}
    assert policy.inputs["spec"]["securityGroups"]["groupIds"] == [app_sg.id, CLUSTER["clusterSecurityGroupId"]]
    api = in_cluster_vpc.one("kubernetes:apps/v1:Deployment", "primary-api")
    assert api.inputs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "api"
    # ...and that group is exactly what the database admits.
    db_sg = in_cluster_vpc.one("aws:ec2/securityGroup:SecurityGroup", "primary-network-database")
    rules = [r for r in in_cluster_vpc.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.inputs.get("securityGroupId") == db_sg.id]
    assert app_sg.id in {r.inputs.get("referencedSecurityGroupId") for r in rules}


def test_backup_job_pods_carry_the_functions_group(in_cluster_vpc):
    functions_sg = in_cluster_vpc.one("aws:ec2/securityGroup:SecurityGroup", "primary-network-functions")
    policy = next(p for p in in_cluster_vpc.of_type(SGP) if p.name == "primary-pg-cron-pod-security-groups")
    assert policy.inputs["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "backup-functions"}}
    assert policy.inputs["spec"]["securityGroups"]["groupIds"] == [functions_sg.id, CLUSTER["clusterSecurityGroupId"]]


def test_a_site_network_the_cluster_cannot_reach_is_said_so(prod, in_cluster_vpc):
    assert UNREACHABLE in [m for level, m in prod.logs if level == "warning"]
    assert "network.clusterSecurityGroupId" in UNREACHABLE and "fix:" in UNREACHABLE
    assert not prod.of_type(SGP)
    assert UNREACHABLE not in [m for _level, m in in_cluster_vpc.logs]


def test_each_region_has_its_own_certificate_and_one_stack_owns_the_validation_record(prod, dr):
    """ACM certificates are regional (ACM user guide, "Supported Regions"); the validation CNAME is
    the same for a domain in every region of an account (hashicorp/terraform-provider-aws#13653),
    so only the dr stack (the zone's owner here) writes it."""
    for run, region in ((prod, "eu-west-3"), (dr, "eu-central-1")):
        site = "primary" if run is prod else "dr"
        cert = run.one("aws:acm/certificate:Certificate", f"{site}-api-certificate")
        assert cert.region == region and cert.inputs["validationMethod"] == "DNS"
        assert cert.inputs["domainName"] == "api.postoucancer.example"
        validation = run.one("aws:acm/certificateValidation:CertificateValidation", f"{site}-api-certificate")
        assert validation.inputs["certificateArn"] == cert.outputs["arn"]
        ingress = run.one("kubernetes:networking.k8s.io/v1:Ingress", f"{site}-api")
        annotations = ingress.inputs["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == cert.outputs["arn"]
    records = [r for run in (prod, dr) for r in run.of_type("aws:route53/record:Record") if "validation" in r.name]
    (record,) = records
    assert record.name == "dr-api-certificate-validation" and record.inputs["type"] == "CNAME"
    dr_cert = dr.one("aws:acm/certificate:Certificate", "dr-api-certificate")
    prod_cert = prod.one("aws:acm/certificate:Certificate", "primary-api-certificate")
    assert prod_cert.outputs["domainValidationOptions"][0]["resourceRecordName"] == record.inputs["name"]
    assert dr_cert.outputs["domainValidationOptions"] == prod_cert.outputs["domainValidationOptions"]
