"""The ground floor: the backup/DR plan's numbers and the names every side shares.

`../shared/seed/backup-dr-plan.md` is the source. Pure Python on purpose: no Pulumi, no
cloud SDK, no boto3. The stack program (infra), the components, the functions (lambdas),
the policy pack and the drill all import from here; nothing here imports them. A number of
the plan appears once, in one of these modules:

  periods     durations and retention periods (30d, 12w, 12mo, 7y), parsing and printing
  objectives  the plan's RTO/RPO and its four scenarios
  schedules   when backups run and how often each test of the plan happens (times, periods)
  retention   tiers, GFS classes, retention per tier, effective retention with overrides
  recovery    recovery sources and the RPO/RTO estimator
  drills      what the monthly DR drill must show (restore time, data age), from the objectives
  thresholds  operational bounds the realisations share (overdue backup, health checks, ...)
  names       the project, site roles, clouds, tag keys, the metric namespace
  layout      where backups live in a bucket or container
  handover    how a stack hands its effective numbers to the functions (environment/event)
"""
