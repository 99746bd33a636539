"""The backup functions' infrastructure (issue 4): bucket under Object Lock with GFS expiry,
least-privilege roles, Lambda in the VPC, schedules from the model, retries and a DLQ;
the Kubernetes CronJob realisation. On the real stacks under mocks."""

import json

import pytest

from components.aws.backup_functions import LOG_RETENTION_DAYS, log_retention_days
from drplan import layout
from drplan.periods import HOUR, days, years
from drplan.retention import MULTIPART_ABORT, RETENTION, Tier
from drplan.thresholds import BACKUP_OVERDUE_AFTER
from policy.rules.access import BACKUP_DESTROYING_ACTIONS

BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
SCHEDULE = "aws:scheduler/schedule:Schedule"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def _child(run, parent_type, parent_name, type_):
    parent = run.one(parent_type, parent_name)
    found = [r for r in run.children_of(parent) if r.type == type_]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def _bucket_child(run, site, type_):
    return _child(run, "postoucancer:aws:ReplicatedBucket", f"{site}-pg-backups", type_)


def _actions(statement):
    a = statement["Action"]
    return [a] if isinstance(a, str) else a


def _exact(run, type_, name):
    found = [r for r in run.of_type(type_) if r.name == name]
    assert len(found) == 1, (type_, name)
    return found[0]


def _policy(run, name):
    return json.loads(_exact(run, "aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


# --- the backup bucket -----------------------------------------------------------------


@pytest.mark.parametrize("stack,site,region", [("prod", "primary", "eu-west-3"), ("dr", "dr", "eu-central-1")])
def test_backup_bucket_is_locked_in_compliance_mode_in_prod(request, stack, site, region):
    run = request.getfixturevalue(stack)
    bucket = run.one(BUCKET, f"{site}-pg-backups")
    assert bucket.protect and bucket.region == region
    assert bucket.inputs["objectLockEnabled"] is True
    assert "backup" in bucket.inputs["tags"]["purpose"]
    lock = _bucket_child(run, site, LOCK)
    default = lock.inputs["rule"]["defaultRetention"]
    assert default["mode"] == "COMPLIANCE"
    # The default covers the shortest generation; the function locks longer classes per object.
    assert default["days"] == RETENTION[Tier.PROD].shortest.days
    versioning = _bucket_child(run, site, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in lock.dependencies


def test_staging_bucket_lock_is_governance(staging):
    lock = _bucket_child(staging, "primary", LOCK)
    assert lock.inputs["rule"]["defaultRetention"]["mode"] == "GOVERNANCE"
    assert lock.inputs["rule"]["defaultRetention"]["days"] == RETENTION[Tier.STAGING].shortest.days


@pytest.mark.parametrize("stack,tier", [("prod", Tier.PROD), ("staging", Tier.STAGING), ("dr", Tier.PROD)])
def test_lifecycle_expires_each_gfs_class_by_tag(request, stack, tier):
    run = request.getfixturevalue(stack)
    site = "dr" if stack == "dr" else "primary"
    rules = _bucket_child(run, site, LIFECYCLE).inputs["rules"]
    retention = RETENTION[tier]
    by_tag = {
        r["filter"]["tag"]["value"]: r["expiration"]["days"]
        for r in rules
        if r.get("filter", {}).get("tag", {}).get("key") == layout.GFS_TAG_KEY
    }
    assert by_tag == {c.value: retention.for_class(c).days for c in retention.classes}
    whole = [r for r in rules if r["filter"] == {}]
    assert whole and whole[0]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == MULTIPART_ABORT.days
    assert whole[0]["noncurrentVersionExpiration"]["noncurrentDays"] == retention.deleted_files.days
    assert all(r["status"] == "Enabled" for r in rules)


def test_prod_backup_bucket_replicates_to_the_dr_bucket_with_locks(prod, dr):
    repl = _bucket_child(prod, "primary", "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    dest = repl.inputs["rules"][0]["destination"]
    assert dest["bucket"] == dr.one(BUCKET, "dr-pg-backups").outputs["arn"]
    assert (
        dest["encryptionConfiguration"]["replicaKmsKeyId"]
        == dr.one("aws:kms/key:Key", "dr-pg-backups-key").outputs["arn"]
    )
    policy = _policy(prod, "primary-pg-backups-replication")
    reads = {a for s in policy["Statement"] for a in _actions(s)}
    assert {"s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:GetObjectVersionTagging"} <= reads
    assert not dr.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig") or all(
        "pg-backups" not in r.name for r in dr.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    )


def test_files_bucket_is_unchanged_by_the_lock_options(prod):
    files = prod.one(BUCKET, "primary-files")
    assert not files.inputs.get("objectLockEnabled")
    assert not [r for r in prod.of_type(LOCK) if "files" in r.name]
    policy = _policy(prod, "primary-files-replication")
    assert "s3:GetObjectRetention" not in {a for s in policy["Statement"] for a in _actions(s)}


# --- roles: write, never delete --------------------------------------------------------


@pytest.mark.parametrize("fn", ["backup", "verify"])
def test_function_roles_cannot_delete_backups(prod, fn):
    policy = _policy(prod, f"primary-pg-{fn}")
    granted = [a for s in policy["Statement"] if s["Effect"] == "Allow" for a in _actions(s)]
    assert not any(a.endswith(":*") or a == "*" for a in granted)
    destroying = {a.lower() for a in BACKUP_DESTROYING_ACTIONS}
    assert not [a for a in granted if a.lower() in destroying]
    assert not any("Delete" in a and a.startswith(("s3:", "kms:", "backup:", "rds:")) for a in granted)


def test_backup_role_is_scoped_to_its_bucket_prefix_key_and_secret(prod):
    policy = {s["Sid"]: s for s in _policy(prod, "primary-pg-backup")["Statement"]}
    bucket_arn = prod.one(BUCKET, "primary-pg-backups").outputs["arn"]
    key_arn = prod.one("aws:kms/key:Key", "primary-pg-backups-key").outputs["arn"]
    secret = prod.one("aws:secretsmanager/secret:Secret", "primary-database-credentials")
    db = "postoucancer"
    assert set(policy["WriteBackups"]["Resource"]) == {
        f"{bucket_arn}/postgres/{db}/{layout.DATA_DIR}/*",
        f"{bucket_arn}/postgres/{db}/{layout.MANIFEST_DIR}/*",
    }
    assert "s3:PutObjectRetention" in policy["WriteBackups"]["Action"]
    assert policy["ListOwnPrefix"]["Condition"] == {"StringLike": {"s3:prefix": [f"postgres/{db}/*"]}}
    assert policy["EncryptWithBackupKey"]["Resource"] == key_arn
    assert policy["ReadDatabaseSecret"]["Resource"] == secret.outputs["arn"]
    kms_resources = [s["Resource"] for s in policy.values() if any(a.startswith("kms:") for a in _actions(s))]
    secrets_key = prod.one("aws:kms/key:Key", "primary-secrets-key").outputs["arn"]
    # The functions' own key decrypts their environment (kms_key_arn).
    env_key = prod.one("aws:kms/key:Key", "primary-pg-key").outputs["arn"]
    assert sorted(kms_resources) == sorted([key_arn, secrets_key, env_key]), "KMS use only on its own keys"


def test_verify_role_writes_only_verification_records(prod):
    policy = {s["Sid"]: s for s in _policy(prod, "primary-pg-verify")["Statement"]}
    bucket_arn = prod.one(BUCKET, "primary-pg-backups").outputs["arn"]
    writes = [s for s in policy.values() if "s3:PutObject" in _actions(s)]
    assert [s["Resource"] for s in writes] == [f"{bucket_arn}/postgres/postoucancer/{layout.VERIFY_DIR}/*"]
    # Verify lists a manifest's versions (it trusts only the first): only under its own prefix.
    listing = policy["ListOwnPrefix"]
    assert "s3:ListBucketVersions" in listing["Action"] and listing["Resource"] == bucket_arn
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["postgres/postoucancer/*"]}}


def test_scheduler_role_only_invokes_the_two_functions(prod):
    policy = _policy(prod, "primary-pg-scheduler")
    fns = sorted(f.outputs["arn"] for f in prod.of_type(FUNCTION) if f.name.startswith("primary-pg-"))
    invoke = next(s for s in policy["Statement"] if "lambda:InvokeFunction" in _actions(s))
    assert sorted(invoke["Resource"]) == fns and len(fns) == 2


# --- functions --------------------------------------------------------------------------


@pytest.mark.parametrize("fn,handler", [("backup", "backup_handler"), ("verify", "verify_handler")])
def test_function_is_an_image_in_the_private_subnets(prod, fn, handler):
    f = prod.one(FUNCTION, f"primary-pg-{fn}")
    assert f.inputs["packageType"] == "Image"
    assert f.inputs["imageConfig"]["commands"] == ["awslambdaric", f"lambdas.aws_lambda.{handler}"]
    repo = prod.one("aws:ecr/repository:Repository", "primary-backup-functions")
    image = prod.one("docker-build:index:Image", "primary-backup-functions-image")
    assert f.inputs["imageUri"] == f"{repo.outputs['repositoryUrl']}@{image.outputs['digest']}"
    assert ".dkr.ecr.eu-west-3.amazonaws.com/" in f.inputs["imageUri"]
    assert image.urn in f.dependencies, "the function is created only after its image is pushed"
    subnets = prod.of_type("aws:ec2/subnet:Subnet")
    assert len(f.inputs["vpcConfig"]["subnetIds"]) == len(subnets) >= 2
    assert all(s.urn in f.dependencies for s in subnets)
    sg = prod.one("aws:ec2/securityGroup:SecurityGroup", "primary-network-functions")
    assert len(f.inputs["vpcConfig"]["securityGroupIds"]) == 1 and sg.urn in f.dependencies
    dlq = prod.one("aws:sqs/queue:Queue", "primary-pg-dlq")
    assert f.inputs["deadLetterConfig"]["targetArn"] == dlq.outputs["arn"]
    assert f.inputs["role"] == _exact(prod, "aws:iam/role:Role", f"primary-pg-{fn}").outputs["arn"]


def test_backup_environment_matches_the_functions_config(prod):
    env = prod.one(FUNCTION, "primary-pg-backup").inputs["environment"]["variables"]
    assert env["BACKUP_BUCKET"] == prod.one(BUCKET, "primary-pg-backups").outputs["bucket"]
    assert env["BACKUP_KMS_KEY_ID"] == prod.one("aws:kms/key:Key", "primary-pg-backups-key").outputs["arn"]
    assert env["BACKUP_TIER"] == "prod" and env["BACKUP_OBJECT_LOCK"] == "on"
    assert (
        env["DB_SECRET_ARN"]
        == prod.one("aws:secretsmanager/secret:Secret", "primary-database-credentials").outputs["arn"]
    )
    verify = prod.one(FUNCTION, "primary-pg-verify").inputs["environment"]["variables"]
    assert float(verify["VERIFY_MAX_AGE_HOURS"]) == BACKUP_OVERDUE_AFTER / HOUR
    # Every variable is one the functions know (lambdas/core/config.py).
    from lambdas.core.config import BackupRequest, VerifyRequest
    from lambdas.core.pg import _ENV as LIBPQ_ENV  # PGHOST & co., read by the connection

    assert set(env) <= set(BackupRequest.ENV.values()) | set(LIBPQ_ENV.values())
    assert set(verify) <= set(VerifyRequest.ENV.values()) | set(LIBPQ_ENV.values())


def test_functions_reach_their_own_sites_database(prod, dr):
    """The DR site reads the primary's replicated secret (primary host inside): PGHOST must
    point its functions at the DR instance, which activation promotes."""
    prod_db = _exact(prod, "aws:rds/instance:Instance", "primary-database")
    dr_db = _exact(dr, "aws:rds/instance:Instance", "dr-database")
    assert prod_db.outputs["address"] != dr_db.outputs["address"]
    for run, db, site in ((prod, prod_db, "primary"), (dr, dr_db, "dr")):
        for fn in ("backup", "verify"):
            env = run.one(FUNCTION, f"{site}-pg-{fn}").inputs["environment"]["variables"]
            assert env["PGHOST"] == db.outputs["address"], (site, fn)
    dr_env = dr.one(FUNCTION, "dr-pg-backup").inputs["environment"]["variables"]
    assert ":eu-central-1:" in dr_env["DB_SECRET_ARN"]


def test_log_groups_keep_logs_as_long_as_the_audit_requirement(prod):
    audit = RETENTION[Tier.PROD].audit_logs
    for fn in ("backup", "verify"):
        f = prod.one(FUNCTION, f"primary-pg-{fn}")
        group = prod.one("aws:cloudwatch/logGroup:LogGroup", f"primary-pg-{fn}")
        assert f.inputs["loggingConfig"]["logGroup"] == group.inputs["name"] == f"/aws/lambda/{f.inputs['name']}"
        assert group.inputs["retentionInDays"] >= audit.days
        assert group.inputs["retentionInDays"] in LOG_RETENTION_DAYS
        assert group.protect


def test_log_retention_picks_the_shortest_allowed_value_covering_the_period():
    # CloudWatch Logs accepts 2557 days (7 years) as a retention value: exactly the plan's audit retention.
    assert 2557 in LOG_RETENTION_DAYS
    assert log_retention_days(years(7)) == 2557
    assert log_retention_days(days(8)) == 14  # the next allowed value above, never below
    with pytest.raises(ValueError):
        log_retention_days(years(20))


# --- schedules, retries, dead letters ---------------------------------------------------


def test_schedules_come_from_the_model_with_retries_and_dlq(prod):
    dlq = prod.one("aws:sqs/queue:Queue", "primary-pg-dlq")
    # The plan: full backups daily at 02:00 UTC; the weekly restore test 4 h after Sunday's.
    expected = {"backup": "cron(0 2 * * ? *)", "verify": "cron(0 6 ? * SUN *)"}
    for fn, cron in expected.items():
        s = prod.one(SCHEDULE, f"primary-pg-{fn}")
        assert s.inputs["scheduleExpression"] == cron
        assert s.inputs["scheduleExpressionTimezone"] == "UTC"
        assert s.inputs["state"] == "ENABLED"
        target = s.inputs["target"]
        assert target["arn"] == prod.one(FUNCTION, f"primary-pg-{fn}").outputs["arn"]
        assert target["deadLetterConfig"]["arn"] == dlq.outputs["arn"]
        assert target["retryPolicy"]["maximumRetryAttempts"] >= 1
        invoke = prod.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", f"primary-pg-{fn}")
        assert invoke.inputs["maximumRetryAttempts"] >= 1
        # Retries give up before the backup counts as overdue.
        assert invoke.inputs["maximumEventAgeInSeconds"] < BACKUP_OVERDUE_AFTER.total_seconds()


def _function_schedules(run):
    # The backup functions' (the testing schedule's tasks, infra/aws/drills.py, run on the standby).
    return [s for s in run.of_type(SCHEDULE) if s.parent_type == "postoucancer:aws:BackupFunctions"]


def test_dr_schedules_are_off_until_activation(dr, pair_prod):
    assert {s.inputs["state"] for s in _function_schedules(dr)} == {"DISABLED"}
    from infra.mockrun import run_stack

    activated = run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={"postoucancer-dr:activated": True})
    assert {s.inputs["state"] for s in _function_schedules(activated)} == {"ENABLED"}
    # The DR functions read the DR-region replica of prod's database secret.
    env = activated.one(FUNCTION, "dr-pg-backup").inputs["environment"]["variables"]
    assert ":eu-central-1:" in env["DB_SECRET_ARN"]


def test_each_site_builds_and_pushes_its_own_image_before_its_functions(prod, dr):
    """No run creates a function from an image that does not exist: the image is built from
    lambdas/Dockerfile and pushed into the site's own repository by the same deployment, and the
    function takes it by digest. ECR replication is not relied on: it copies only images pushed
    after its rule exists (Amazon ECR user guide, "Private image replication")."""
    for run, site, region in ((prod, "primary", "eu-west-3"), (dr, "dr", "eu-central-1")):
        repo = run.one("aws:ecr/repository:Repository", f"{site}-backup-functions")
        assert repo.region == region and repo.inputs["imageTagMutability"] == "IMMUTABLE"
        image = run.one("docker-build:index:Image", f"{site}-backup-functions-image")
        assert image.inputs["push"] is True and image.inputs["buildOnPreview"] is False
        assert image.inputs["dockerfile"]["location"].endswith("lambdas/Dockerfile")
        assert image.inputs["tags"] == [f"{repo.outputs['repositoryUrl']}:1.0.0"]
        assert image.inputs["registries"][0]["address"] == repo.outputs["repositoryUrl"]
        for fn in run.of_type(FUNCTION):
            assert fn.inputs["imageUri"].endswith(image.outputs["digest"]) and image.urn in fn.dependencies
    assert not prod.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")


def test_an_existing_image_is_used_as_given_and_nothing_is_built(pair_prod):
    from infra.mockrun import run_stack

    given = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/postoucancer/prod/backup-functions@sha256:" + "a" * 64
    overrides = {"postoucancer-dr:functions": {"image": given}}
    run = run_stack("prod", peer_outputs=pair_prod.dr.outputs, overrides=overrides)
    assert not run.of_type("docker-build:index:Image")
    assert {f.inputs["imageUri"] for f in run.of_type(FUNCTION)} == {given}


# --- Kubernetes CronJobs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s_prod(pair_prod):
    from infra.mockrun import run_stack

    return run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={"postoucancer-dr:functions": {"runner": "kubernetes", "eksClusterName": "prod-eks"}},
    )


def test_cronjobs_reach_the_sites_database(k8s_prod):
    db = _exact(k8s_prod, "aws:rds/instance:Instance", "primary-database")
    for job in k8s_prod.of_type("kubernetes:batch/v1:CronJob"):
        container = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PGHOST"] == db.outputs["address"], job.name


def test_cronjobs_forbid_concurrency_and_are_bounded(k8s_prod):
    jobs = {r.name: r for r in k8s_prod.of_type("kubernetes:batch/v1:CronJob")}
    assert set(jobs) == {"primary-pg-cron-backup", "primary-pg-cron-verify"}
    backup = jobs["primary-pg-cron-backup"].inputs["spec"]
    assert backup["schedule"] == "0 2 * * *" and backup["timeZone"] == "Etc/UTC"
    assert jobs["primary-pg-cron-verify"].inputs["spec"]["schedule"] == "0 6 * * SUN"
    sa = k8s_prod.one("kubernetes:core/v1:ServiceAccount", "primary-pg-cron-functions")
    for job in jobs.values():
        spec = job.inputs["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        jt = spec["jobTemplate"]["spec"]
        assert 0 < jt["activeDeadlineSeconds"] < BACKUP_OVERDUE_AFTER.total_seconds()
        pod = jt["template"]["spec"]
        assert pod["serviceAccountName"] == sa.inputs["metadata"]["name"]
        c = pod["containers"][0]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["image"].endswith(k8s_prod.one("docker-build:index:Image").outputs["digest"])
        assert job.provider.startswith(k8s_prod.one("pulumi:providers:kubernetes", "primary-k8s").urn)
    # Workload identity: the role is bound to the CronJobs' ServiceAccount, and it cannot delete.
    assoc = k8s_prod.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "primary-pg-cron")
    assert assoc.inputs["serviceAccount"] == sa.inputs["metadata"]["name"]
    assert assoc.inputs["roleArn"] == _exact(k8s_prod, "aws:iam/role:Role", "primary-pg-cron").outputs["arn"]
    assert not k8s_prod.of_type(FUNCTION), "one runner at a time"


def test_verify_can_restore_on_a_separate_server(pair_prod):
    from infra.mockrun import run_stack

    scratch = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:restore-test-AbCdEf"
    run = run_stack(
        "prod",
        peer_outputs=pair_prod.dr.outputs,
        overrides={"postoucancer-dr:functions": {"verifySecretArn": scratch}},
    )
    db_secret = run.one("aws:secretsmanager/secret:Secret", "primary-database-credentials").outputs["arn"]
    verify_env = run.one(FUNCTION, "primary-pg-verify").inputs["environment"]["variables"]
    backup_env = run.one(FUNCTION, "primary-pg-backup").inputs["environment"]["variables"]
    assert verify_env["DB_SECRET_ARN"] == scratch and backup_env["DB_SECRET_ARN"] == db_secret
    verify = {s["Sid"]: s for s in _policy(run, "primary-pg-verify")["Statement"]}
    assert verify["ReadDatabaseSecret"]["Resource"] == scratch, "verify reads only its own server's secret"
    backup = {s["Sid"]: s for s in _policy(run, "primary-pg-backup")["Statement"]}
    assert backup["ReadDatabaseSecret"]["Resource"] == db_secret
