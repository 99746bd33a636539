"""Operational bounds that several realisations must agree on (not numbers of the plan itself,
but each chosen once, here, so that alarms, policies and components cannot drift apart)."""

from __future__ import annotations

from datetime import timedelta

from .periods import HOUR, MINUTE

# Replication Time Control: S3 replicates 99.99 % of objects within 15 minutes.
REPLICATION_TIME_CONTROL = 15 * MINUTE
# A backup that has not completed within this long of its slot is missing (alarm).
BACKUP_OVERDUE_AFTER = 26 * HOUR
# DNS failover: the primary's health endpoint is probed this often and fails over after this
# many consecutive failures (Route 53 accepts 10 s or 30 s only; Traffic Manager 10 s or 30 s).
# recovery.Assumptions.dns_switch budgets for them plus the record TTL.
HEALTH_CHECK_INTERVAL = timedelta(seconds=10)
HEALTH_CHECK_FAILURES = 3
# AWS Backup restore testing: the restored copy stays this long for the validation function
# to check it before it is deleted.
RESTORE_VALIDATION_WINDOW = 4 * HOUR
# Backup / snapshot jobs must not start within this long after the database's own automated
# backup window ends (AWS recommends an hour between them).
BACKUP_WINDOW_GAP = 1 * HOUR
