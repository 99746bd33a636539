"""A regional ACM certificate for a site's load balancer, validated through DNS.

ACM certificates are regional: each site's ALB needs its own, and each must be validated
("Certificates in ACM are regional resources ... you must request a certificate for each
region", ACM user guide, Supported Regions). ACM gives the same validation CNAME for the same
domain name in every region of an account (hashicorp/terraform-provider-aws#13653: a second
region's request fails to create "its" record because it already exists), so exactly one stack
may own that record: `owns_validation_record` (the dr stack, which owns the zone's failover
records). The other site's certificate is validated by the same record.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class RegionalCertificateArgs:
    region: str
    domain_name: str
    zone_id: str
    owns_validation_record: bool


class RegionalCertificate(pulumi.ComponentResource):
    """`postoucancer:aws:RegionalCertificate`: `arn` is known once the certificate is issued."""

    certificate: aws.acm.Certificate
    validation_records: list[aws.route53.Record]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegionalCertificateArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:RegionalCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.certificate = aws.acm.Certificate(
            name,
            region=args.region,
            domain_name=args.domain_name,
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            options={"certificate_transparency_logging_preference": "ENABLED"},
            # An ALB listener keeps using the old certificate until the new one exists.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        self.validation_records = []
        fqdns: list[pulumi.Output[str]] | None = None
        if args.owns_validation_record:
            option = self.certificate.domain_validation_options.apply(lambda opts: opts[0])
            record = aws.route53.Record(
                f"{name}-validation",
                zone_id=args.zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=60,
                opts=child,
            )
            self.validation_records.append(record)
            fqdns = [record.fqdn]
        validation = aws.acm.CertificateValidation(
            name,
            region=args.region,
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=fqdns,
            opts=child,
        )
        self.arn = validation.certificate_arn
        self.register_outputs({"arn": self.arn})
