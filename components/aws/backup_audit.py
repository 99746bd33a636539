"""AWS Backup Audit Manager: a framework whose controls are the plan's own requirements, and
report plans that deliver its evidence into the audit bucket.

The controls and their input parameters are AWS's ("Choosing your controls", "Creating
frameworks using the AWS Backup API" in the AWS Backup developer guide; parameter names as
the underlying AWS Config rules define them). Every number comes from drplan through the
stack's effective retention:

  BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK  a rule at least daily (the full-backup
      slot) kept at least the daily generation (requiredFrequencyUnit/Value, requiredRetentionDays)
  BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK      no recovery point kept shorter than the
      shortest rule of the plan (continuous / incremental: drplan WAL and incremental retention)
  BACKUP_RECOVERY_POINT_ENCRYPTED                    every recovery point encrypted
  BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK    (locked tiers) resources backed up into a
      locked vault
  BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION         (with a peer region) copies in the other
      site's region (crossRegionList)

Resource controls are scoped to the resources the plans select (the backup tag), so a warm
standby that no plan protects before activation is not reported as a gap.

Audit Manager evaluates through AWS Config: the region needs a configuration recorder that
records the AWS Backup resource types (docs/security.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from drplan.periods import DAY, HOUR
from drplan.retention import Retention
from drplan.schedules import SCHEDULES, Schedules

from .backup_plan import SELECTION_TAG, lock_bounds

# Framework and report plan names: a letter, then letters, digits and underscores.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,255}$")
# What the report plans deliver: the framework's compliance, and every job of the day.
REPORT_TEMPLATES = ("CONTROL_COMPLIANCE_REPORT", "BACKUP_JOB_REPORT", "COPY_JOB_REPORT", "RESTORE_JOB_REPORT")
REPORT_FORMATS = ["CSV", "JSON"]


@dataclass(frozen=True)
class Control:
    name: str
    parameters: dict[str, str] = field(default_factory=dict)
    scoped_to_backup_tag: bool = False

    def to_args(self) -> dict:
        control: dict = {"name": self.name}
        if self.parameters:
            control["input_parameters"] = [{"name": k, "value": v} for k, v in sorted(self.parameters.items())]
        if self.scoped_to_backup_tag:
            control["scope"] = {"tags": dict([SELECTION_TAG])}
        return control


def controls(
    retention: Retention, *, locked: bool, copy_region: str | None, schedules: Schedules = SCHEDULES
) -> list[Control]:
    """The plan's requirements as Audit Manager controls; every number from drplan."""
    shortest, _ = lock_bounds(retention, schedules)
    found = [
        Control(
            "BACKUP_PLAN_MIN_FREQUENCY_AND_MIN_RETENTION_CHECK",
            {
                # One full backup a day (drplan.schedules: a daily slot).
                "requiredFrequencyUnit": "hours",
                "requiredFrequencyValue": str(int(DAY / HOUR)),
                "requiredRetentionDays": str(retention.daily.days),
            },
        ),
        Control("BACKUP_RECOVERY_POINT_MINIMUM_RETENTION_CHECK", {"requiredRetentionDays": str(shortest)}),
        Control("BACKUP_RECOVERY_POINT_ENCRYPTED"),
    ]
    if locked:
        found.append(Control("BACKUP_RESOURCES_PROTECTED_BY_BACKUP_VAULT_LOCK", scoped_to_backup_tag=True))
    if copy_region is not None:
        found.append(
            Control(
                "BACKUP_RESOURCES_PROTECTED_BY_CROSS_REGION",
                {"crossRegionList": copy_region},
                scoped_to_backup_tag=True,
            )
        )
    return found


@dataclass
class BackupAuditArgs:
    region: str
    retention: Retention  # the stack's effective retention
    locked: bool
    copy_region: str | None  # where the plan's copies go (the peer site's region)
    # Unique per account and region: carry the stack (letters, digits, underscores).
    physical_name: str
    # The bucket (in this region) that receives the reports; None: the framework only.
    report_bucket: pulumi.Input[str] | None = None
    report_prefix: str = "backup-reports"
    schedules: Schedules = field(default_factory=lambda: SCHEDULES)
    tags: dict[str, str] = field(default_factory=dict)


class BackupAudit(pulumi.ComponentResource):
    """`postoucancer:aws:BackupAudit`."""

    framework: aws.backup.Framework
    report_plans: dict[str, aws.backup.ReportPlan]

    def __init__(self, name: str, args: BackupAuditArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("postoucancer:aws:BackupAudit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        framework_name = args.physical_name.replace("-", "_")
        if not NAME.match(framework_name):
            raise ValueError(f"backup framework name {framework_name!r}: a letter, then letters, digits, underscores")
        self.controls = controls(
            args.retention, locked=args.locked, copy_region=args.copy_region, schedules=args.schedules
        )
        self.framework = aws.backup.Framework(
            name,
            region=args.region,
            name=framework_name,
            description="Post Ou Cancer backup and DR plan: frequency, retention, encryption, lock, DR copies",
            controls=[c.to_args() for c in self.controls],
            tags=args.tags,
            opts=child,
        )
        self.report_plans = {}
        if args.report_bucket is not None:
            for template in REPORT_TEMPLATES:
                setting: dict = {"report_template": template}
                if template == "CONTROL_COMPLIANCE_REPORT":
                    setting.update(framework_arns=[self.framework.arn], number_of_frameworks=1)
                short = template.removesuffix("_REPORT").lower()
                self.report_plans[short] = aws.backup.ReportPlan(
                    f"{name}-{short.replace('_', '-')}",
                    region=args.region,
                    name=f"{framework_name}_{short}",
                    description=f"{template} of {framework_name}, into the audit bucket",
                    report_delivery_channel={
                        "s3_bucket_name": args.report_bucket,
                        "s3_key_prefix": args.report_prefix,
                        "formats": REPORT_FORMATS,
                    },
                    report_setting=setting,
                    tags=args.tags,
                    opts=child,
                )
        self.register_outputs({"framework": self.framework.arn, "reports": sorted(self.report_plans)})
