"""Names that more than one side must agree on: the project, site roles, clouds, tags, metrics.

The stack program writes them, the policy pack and the functions read them: a typo on one
side would silently disable a rule or a lifecycle, so each is spelled once, here.
"""

from __future__ import annotations

from enum import StrEnum

PROJECT = "postoucancer-dr"  # Pulumi.yaml `name`, and the config namespace


class Role(StrEnum):
    PRIMARY = "primary"
    DR = "dr"
    # The backup-only account's stack (infra/vault): no site, the copies out of the sites' blast radius.
    VAULT = "vault"


class Cloud(StrEnum):
    AWS = "aws"
    AZURE = "azure"


# Every resource of a stack carries the stack's name under this tag (provider default tags),
# so that an account-wide selection can be scoped to one stack.
STACK_TAG_KEY = "postoucancer:stack"
# Resources carrying this tag are picked up by the site's backup plan.
BACKUP_TAG = ("backup", "true")
# What a bucket is for ("files", "backups", "gdpr-ledger", "audit-trail", "access-logs").
PURPOSE_TAG_KEY = "purpose"

# The functions' metrics: CloudWatch Embedded Metric Format namespace and service name.
METRIC_NAMESPACE = "PostOuCancer/Backups"
METRIC_SERVICE = "postoucancer-backup"

# The plan's periodic tests publish these with PutMetricData into METRIC_NAMESPACE: the monthly DR
# drill per database (dimension `database`), the age of the last recorded activation test per DR
# stack (dimension `stack`). The functions write them, the alarms read them.
DRILL_SUCCESS = "DrillSuccess"
DRILL_RESTORE_SECONDS = "DrillRestoreSeconds"
DRILL_DATA_AGE_SECONDS = "DrillDataAgeSeconds"
ACTIVATION_TEST_AGE_SECONDS = "ActivationTestAgeSeconds"


# The record's value until the first test is recorded: the clock then runs from the parameter's
# creation (its LastModifiedDate), i.e. from the DR stack's deployment.
ACTIVATION_TEST_NOT_RECORDED = "none recorded yet"


def activation_test_parameter(stack: str) -> str:
    """The SSM parameter holding when the DR stack's last activation test was recorded (ISO 8601,
    UTC): written by `python -m infra.activate --record-test`, read by the daily age function."""
    return f"/postoucancer/{stack}/activation-test/last-recorded"
