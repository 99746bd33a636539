"""The plan's testing schedule ("Backup Testing and Validation"), on the DR site.

The weekly restore test runs on both sites (infra/aws/backup.py, the verify function). The rest
lives with the DR site, which must keep working with the primary region gone, and every period
is drplan.schedules' (rendered by components/aws/cron.testing):

- monthly (`dr_drill_every`): the DR drill, AWS Backup restore testing of the latest locked copy
  of the primary's database in the DR vault into a temporary instance in this region, checked by
  the validation function, which publishes the restore time and the data age; alarms against
  drplan.drills (infra/aws/monitoring.drill_alarm_specs); AWS Backup deletes the instance when the
  validation window (drplan.thresholds.RESTORE_VALIDATION_WINDOW) closes;
- quarterly (`activation_test_every`): a tracked task (OpsItem and on-call notification) with the
  exact commands of the activation dry run and the failover runbook; the test is recorded with
  `python -m infra.activate --record-test`, a daily function publishes the record's age, an alarm
  fires past a quarter plus `activation_test_grace`;
- yearly (`plan_review_every`): a tracked task to review the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.aws import cron
from components.aws.alerts import AlarmSpec, AlertTopic
from components.aws.network import SiteNetwork
from components.aws.restore_testing import RestoreDrill, RestoreDrillArgs
from components.aws.tracked_tasks import ActivationTestWatch, ActivationTestWatchArgs, TrackedTask, TrackedTaskArgs
from drplan.names import activation_test_parameter
from drplan.objectives import Scenario
from drplan.schedules import SCHEDULES
from drplan.thresholds import RESTORE_VALIDATION_WINDOW
from infra.aws.backup import Backups
from infra.aws.data import DataTier, database_secret
from infra.aws.functions import Functions
from infra.aws.monitoring import alarm_specs
from infra.commands import ROOT, activate_command, commands, runbook_path
from infra.site import Site

# The runbook whose commands the quarterly activation test walks through.
FAILOVER_RUNBOOK = Scenario.DATACENTRE_LOSS
# The checks of the yearly review: the objectives as the topology achieves them, the generated
# documents still true, every scenario rehearsed on a real PostgreSQL.
REVIEW_COMMANDS = ("python -m infra.plan", "python -m infra.runbooks --check", "python -m infra.docs --check",
                   "python -m drill")


@dataclass(frozen=True)
class Drills:
    restore_drill: RestoreDrill | None = None  # None before the primary's database exists (bootstrap)
    activation_test: TrackedTask | None = None
    activation_watch: ActivationTestWatch | None = None
    plan_review: TrackedTask | None = None


def activation_test_commands(stack: str) -> list[str]:
    """The activation test, command by command: the offline dry run, the failover runbook's
    commands as the runbook has them (infra.runbooks), the record of the test."""
    return [
        activate_command("--stack", stack, "--dry-run"),
        *(c.text for c in commands(runbook_path(FAILOVER_RUNBOOK))),
        activate_command("--stack", stack, "--record-test"),
    ]


def _activation_task_text(stack: str) -> tuple[str, str, str]:
    commands = activation_test_commands(stack)
    runbook = runbook_path(FAILOVER_RUNBOOK).relative_to(ROOT)
    title = f"Quarterly DR activation test: stack {stack}"
    description = (
        f"The plan's quarterly DR site activation test of stack `{stack}`. It cannot run unattended.\n\n"
        f"1. See offline what activation changes: `{commands[0]}`\n"
        f"2. Walk through the failover runbook `{runbook}`; its {len(commands) - 2} commands, in order, are "
        "in this OpsItem's operational data (postoucancer:commands) and in the on-call notification.\n"
        "3. Fail back as docs/failback.md says.\n"
        f"4. Record the test: `{commands[-1]}` (an alarm fires "
        f"{SCHEDULES.activation_test_overdue_after.days} days after the last record).\n"
    )
    return title, description, "\n".join(commands)


def _review_task_text(stack: str) -> tuple[str, str, str]:
    title = "Yearly review of the backup and DR plan"
    description = (
        "The plan's yearly review: objectives, retention, scenarios and contacts still right?\n\n"
        + "".join(f"- `{c}`\n" for c in REVIEW_COMMANDS)
        + "- read docs/backup-dr-plan.md and the runbooks in docs/runbooks/ against what changed this year\n"
        + f"- the DR drill's and activation tests' results: stack `{stack}`'s alarms and OpsItems\n"
    )
    return title, description, "\n".join(REVIEW_COMMANDS)


def build(site: Site, network: SiteNetwork, data: DataTier, backups: Backups, functions: Functions,
          topic: AlertTopic) -> Drills:
    """The DR site's testing schedule, its alarms on the site's alert `topic` (monitoring.build's
    `testing` hook, so that the dashboard and the `alerts` export list them)."""
    if not site.is_dr:
        return Drills()
    cfg = site.cfg
    stack = site.stack
    specs = alarm_specs(cfg)
    retention = cfg.retention_policy.audit_logs
    drill = None
    peer = site.peer.require_all("databaseInstanceArn")
    secret_arn, secret_key_arn = database_secret(site, data)
    if peer is not None and backups.plan is not None and secret_arn is not None:
        drill = RestoreDrill(
            site.name("drill"),
            RestoreDrillArgs(
                region=site.region,
                plan_name=f"postoucancer_{stack}_drill".replace("-", "_"),
                schedule=_cron(SCHEDULES.dr_drill_every),
                vault_arn=backups.vault.arn,
                resource_arns=[peer["databaseInstanceArn"]],
                iam_role_arn=backups.plan.role.arn,
                subnet_group_name=data.database.subnet_group.name,
                security_group_ids=[network.database_sg.id],
                selection_window=SCHEDULES.dr_drill_every,
                validation_window=RESTORE_VALIDATION_WINDOW,
                image_uri=functions.image,
                function_name=f"postoucancer-{stack}-drill-check",
                database=cfg.database.name,
                db_secret_arn=secret_arn,
                db_secret_kms_key_arn=secret_key_arn,
                function_subnet_ids=network.private_subnet_ids,
                function_security_group_ids=[network.functions_sg.id],
                log_retention=retention,
            ),
        )
        db = cfg.database.name
        for key in ("drill-failed", "drill-restore-too-slow", "drill-data-too-old"):
            topic.raise_alarm(key, specs[key], {"database": db}, _describe(key, specs[key], db))
        _function_alarms(topic, specs, "drill-check", drill.validator)

    title, description, commands = _activation_task_text(stack)
    activation_test = TrackedTask(
        site.name("activation-test"),
        TrackedTaskArgs(
            region=site.region, schedule_name=f"postoucancer-{stack}-activation-test",
            schedule=_cron(SCHEDULES.activation_test_every), title=title, description=description,
            commands=commands, topic_arn=topic.arn, topic_key_arn=topic.key.arn,
        ),
    )
    watch = ActivationTestWatch(
        site.name("activation-watch"),
        ActivationTestWatchArgs(
            region=site.region, parameter_name=activation_test_parameter(stack), stack=stack,
            image_uri=functions.image, function_name=f"postoucancer-{stack}-activation-age",
            schedule_name=f"postoucancer-{stack}-activation-age",
            schedule=_daily(), log_retention=retention,
        ),
    )
    overdue = specs["activation-test-overdue"]
    topic.raise_alarm("activation-test-overdue", overdue, {"stack": stack},
                      f"No DR activation test of {stack} recorded for {SCHEDULES.activation_test_overdue_after.days}"
                      f" days (a quarter plus the grace period): run the quarterly task's commands, then "
                      f"{activate_command('--stack', stack, '--record-test')}")
    _function_alarms(topic, specs, "activation-age", watch.age)

    title, description, commands = _review_task_text(stack)
    review = TrackedTask(
        site.name("plan-review"),
        TrackedTaskArgs(
            region=site.region, schedule_name=f"postoucancer-{stack}-plan-review",
            schedule=_cron(SCHEDULES.plan_review_every), title=title, description=description,
            commands=commands, topic_arn=topic.arn, topic_key_arn=topic.key.arn, severity="3",
        ),
    )
    site.export("testingSchedule", {
        "restoreTest": {"every": SCHEDULES.restore_test_every.days, "where": "both sites (verify function)"},
        "drDrill": {
            "every": SCHEDULES.dr_drill_every.days,
            "schedule": drill.plan.schedule_expression if drill else None,
            "plan": drill.plan.name if drill else None,
            "validator": drill.validator.function.name if drill else None,
        },
        "activationTest": {"every": SCHEDULES.activation_test_every.days,
                           "schedule": activation_test.opens.schedule_expression,
                           "overdueAfterDays": SCHEDULES.activation_test_overdue_after.days,
                           "record": watch.record.name,
                           "recordWith": activate_command("--stack", stack, "--record-test")},
        "planReview": {"every": SCHEDULES.plan_review_every.days, "schedule": review.opens.schedule_expression},
    })
    return Drills(drill, activation_test, watch, review)


def _cron(every) -> str:
    return cron.testing(every, SCHEDULES)


def _daily() -> str:
    """The age is published daily at the testing time of day (a whole-day alarm period reads it)."""
    return cron.daily_at(SCHEDULES.testing_at)


def _describe(key: str, spec: AlarmSpec, db: str) -> str:
    what = {"drill-failed": f"The monthly DR drill's restored copy of {db} failed its checks",
            "drill-restore-too-slow": f"The monthly DR drill's restore of {db} took longer than the RTO leaves",
            "drill-data-too-old": f"The monthly DR drill restored data of {db} older than the copies' RPO"}[key]
    return f"{what} ({spec.source})"


def _function_alarms(topic, specs: dict[str, AlarmSpec], label: str, task) -> None:
    for metric in ("errors", "throttles"):
        spec = specs[f"*-{metric}"]
        topic.raise_alarm(f"{label}-{metric}", spec, {"FunctionName": task.function.name},
                          f"The {label} function reported {spec.metric}")
    topic.raise_alarm(f"{label}-dead-letters", specs["*-dead-letters"], {"QueueName": task.dlq.name},
                      f"A run of the {label} function failed all its retries (dead-letter queue not empty)")

