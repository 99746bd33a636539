"""The backup-only account (issue 15): the `vault` stack and its cross-account wiring, under
the mock runtime. Backups outside the blast radius: what an administrator of the production
account can do must not reach these copies.

Sources encoded here (and in components/aws/vault_account.py, components/aws/replicated_bucket.py):
- AWS Backup developer guide, "Creating backup copies across AWS accounts": accounts of one
  organization with cross-account backup enabled by its management account; a destination vault
  (not the default one) with a customer managed key and an access policy allowing
  backup:CopyIntoBackupVault from the source account; source keys shared with the destination
  account; the copy re-encrypted with the destination vault's key.
- AWS Backup developer guide, "Copy a backup": RDS snapshots are copied either across accounts or
  across regions, not both at once, so each site copies into the vault of its own region.
- AWS Backup developer guide, "Copying continuous backups": the copy of a continuous backup is a
  snapshot (the daily snapshot the vault keeps as the daily generation).
- Amazon S3 user guide, "Configuring replication for buckets in different accounts", "Changing the
  replica owner" and "Granting additional permissions for cross-account scenarios": the destination
  bucket policy grants the source's replication role the replicate actions and
  s3:ObjectOwnerOverrideToBucketOwner; the rule sets `account` and the owner override; the owner of
  the destination key lets the source role encrypt with it; replicating Object-Locked objects needs
  s3:GetObjectRetention and s3:GetObjectLegalHold on the source role and Object Lock on the destination.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest

from components.aws.backup_plan import RuleSpec, vault_account_copy_lifecycle
from drplan.objectives import Scenario
from drplan.recovery import Topology, achieved_objectives, recovery_sources
from drplan.retention import RETENTION, GfsClass, Tier
from infra.config import ConfigError
from infra.config import parse as parse_site
from infra.mockrun import ACCOUNT, load_stack_config, run_stack
from infra.plan import _runs, _site_line, to_json
from infra.runbooks import stack_config
from infra.vault.config import check_account
from infra.vault.config import parse as parse_vault
from infra.vault.names import replication_role_name

P = "postoucancer-dr:"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
KEY = "aws:kms/key:Key"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
PROD = RETENTION[Tier.PROD]
VAULT_ACCOUNT = load_stack_config("vault")[P + "accounts"]["vault"]
SITES = ACCOUNT  # the mock runner's account of the prod and dr stacks


# --- a small IAM evaluator: explicit Deny > Allow > implicit deny ---------------------------


def _matches(patterns, value) -> bool:
    return any(
        fnmatchcase(value.lower(), str(p).lower()) for p in ([patterns] if isinstance(patterns, str) else patterns)
    )


def _condition_holds(condition: dict, context: dict) -> bool:
    for op, tests in (condition or {}).items():
        for key, expected in tests.items():
            expected = [expected] if isinstance(expected, str) else expected
            actual = context.get(key)
            if op in ("StringEquals", "ArnEquals"):
                ok = actual in expected
            elif op == "StringNotEquals":
                ok = actual is not None and actual not in expected
            elif op == "ArnLike":
                ok = actual is not None and _matches(expected, actual)
            elif op == "Bool":
                ok = str(actual).lower() in [str(e).lower() for e in expected]
            else:
                raise AssertionError(f"condition operator {op} not understood by this evaluator")
            if not ok:
                return False
    return True


def _principal_matches(statement: dict, principal_arn: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    if aws is None:
        return False
    account = principal_arn.split(":")[4]
    return any(
        p == "*" or p == principal_arn or p == f"arn:aws:iam::{account}:root"
        for p in ([aws] if isinstance(aws, str) else aws)
    )


def decision(document: str, principal_arn: str, action: str, **context) -> str:
    """'allow' or 'deny' of a resource policy for a principal (of any account) and an action."""
    ctx = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": principal_arn.split(":")[4], **context}
    allowed = False
    for s in json.loads(document)["Statement"]:
        if not _principal_matches(s, principal_arn) or not _matches(s["Action"], action):
            continue
        if not _condition_holds(s.get("Condition"), ctx):
            continue
        if s["Effect"] == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "deny"


def role(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


# --- three stacks, bootstrap order -------------------------------------------------------------


def test_the_offline_plan_shows_three_stacks_in_bootstrap_order(pair_prod):
    """The vault stack needs only account ids: it deploys first; prod's replication and copy
    actions need its bucket, key and vault ARNs (vault → dr → prod → dr)."""
    assert [r.stack for r in pair_prod.deploy_order] == ["vault", "dr", "prod", "dr"]
    # What `python -m infra.plan` prints per stack, in this order (tests/infra/test_plan.py checks the
    # rendered "bootstrap order: pulumi up -s vault → ..." line of the whole plan).
    lines = [_site_line(r) for r in _runs(pair_prod)]
    assert [re.match(r"^--- stack (\S+):", line).group(1) for line in lines] == ["vault", "prod", "dr"]
    assert "backup-only account " + VAULT_ACCOUNT in lines[0]
    assert to_json({"prod": pair_prod})["prod"]["bootstrap"] == ["vault", "dr", "prod", "dr"]
    # Nothing of the vault waits on the sites; nothing of the sites is left waiting on the vault.
    assert "nextStep" not in pair_prod.vault.outputs
    assert "nextStep" not in pair_prod.primary.outputs and "nextStep" not in pair_prod.dr.outputs


def test_a_site_before_the_vault_exists_is_partial_and_names_it_first(pair_prod):
    lonely = run_stack("prod", peer_outputs=pair_prod.bootstrap[0].outputs, stack_outputs={"vault": None})
    assert lonely.outputs["nextStep"].startswith("vault account's stack 'organization/postoucancer-dr/vault'")
    assert "run `pulumi up -s vault`" in lonely.outputs["nextStep"]
    rules = lonely.one("aws:backup/plan:Plan").inputs["rules"]
    assert all(VAULT_ACCOUNT not in c["destinationVaultArn"] for r in rules for c in r.get("copyActions") or [])
    (config,) = [c for c in lonely.of_type(REPLICATION) if "pg-backups" in c.name]
    assert [r["id"] for r in config.inputs["rules"]] == ["to-dr-region"]


# --- the vault stack ----------------------------------------------------------------------------


def test_the_vault_stack_lives_in_the_backup_only_account_with_a_locked_vault_per_site_region(vault):
    arns = [r.outputs["arn"] for r in vault.resources if r.custom and str(r.outputs.get("arn", "")).count(":") >= 5]
    accounts = {a.split(":")[4] for a in arns if a.split(":")[4]}
    assert accounts == {VAULT_ACCOUNT} != {SITES}
    vaults = {v.region: v for v in vault.of_type(VAULT)}
    assert set(vaults) == {"eu-west-3", "eu-central-1"}  # RDS copies stay in their region
    for region, v in vaults.items():
        assert v.protect and v.inputs["forceDestroy"] is False
        (lock,) = [lk for lk in vault.of_type(LOCK) if lk.inputs["backupVaultName"] == v.outputs["name"]]
        assert lock.inputs["changeableForDays"] >= 3 and lock.protect  # set: compliance mode
        assert (lock.inputs["minRetentionDays"], lock.inputs["maxRetentionDays"]) == (
            PROD.shortest.days,
            PROD.longest.days,
        )
        key = next(k for k in vault.of_type(KEY) if k.outputs["arn"] == v.inputs["kmsKeyArn"])
        assert key.region == region and key.protect
    bucket = vault.one("aws:s3/bucket:Bucket", "vault-pg-backups")
    assert bucket.region == "eu-central-1" and bucket.inputs["objectLockEnabled"] is True
    lock = vault.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "vault-pg-backups")
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": PROD.shortest.days}
    versioning = vault.one("aws:s3/bucketVersioning:BucketVersioning", "vault-pg-backups")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def _vault_keys(vault):
    return [json.loads(k.inputs["policy"]) for k in vault.of_type(KEY)]


def test_key_policies_let_prod_and_dr_copy_but_not_delete(vault):
    """AWS Backup "Creating backup copies across AWS accounts" / S3 "Granting additional
    permissions for cross-account scenarios": the sites encrypt with the vault's keys through the
    service; they never decrypt, grant, administer or destroy them, and nobody destroys them."""
    prod_role = role(SITES, replication_role_name("prod"))
    other_role = role(SITES, "attacker")
    for k in vault.of_type(KEY):
        doc, region = k.inputs["policy"], k.region
        bucket_key = "pg-backups" in k.name
        via = f"s3.{region}.amazonaws.com" if bucket_key else f"backup.{region}.amazonaws.com"
        who = prod_role if bucket_key else other_role  # the vault keys trust the account through AWS Backup
        assert decision(doc, who, "kms:Encrypt", **{"kms:ViaService": via}) == "allow", k.name
        assert decision(doc, who, "kms:GenerateDataKey", **{"kms:ViaService": via}) == "allow", k.name
        for action in (
            "kms:Decrypt",
            "kms:CreateGrant",
            "kms:PutKeyPolicy",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
        ):
            assert decision(doc, who, action, **{"kms:ViaService": via}) == "deny", (k.name, action)
        # Not outside the service, and (bucket key) not for another role of the sites' account.
        assert decision(doc, who, "kms:Encrypt", **{"kms:ViaService": "ec2.eu-west-3.amazonaws.com"}) == "deny"
        if bucket_key:
            assert decision(doc, other_role, "kms:Encrypt", **{"kms:ViaService": via}) == "deny"
        # The vault account administers its keys, but even it cannot destroy the copies' keys.
        admin = role(VAULT_ACCOUNT, "admin")
        assert decision(doc, admin, "kms:PutKeyPolicy") == "allow"
        assert decision(doc, admin, "kms:ScheduleKeyDeletion") == decision(doc, admin, "kms:DisableKey") == "deny"


def test_the_vault_access_policy_admits_copies_and_refuses_deletes_from_every_other_account(vault):
    """AWS Backup "Creating backup copies across AWS accounts": the destination vault's access
    policy allows backup:CopyIntoBackupVault from the source account."""
    site_role = role(SITES, "postoucancer-backup-role")
    admin = role(VAULT_ACCOUNT, "admin")
    for p in vault.of_type("aws:backup/vaultPolicy:VaultPolicy"):
        doc = p.inputs["policy"]
        assert decision(doc, site_role, "backup:CopyIntoBackupVault") == "allow"
        for action in (
            "backup:DeleteRecoveryPoint",
            "backup:UpdateRecoveryPointLifecycle",
            "backup:DeleteBackupVault",
            "backup:PutBackupVaultAccessPolicy",
            "backup:DeleteBackupVaultLockConfiguration",
        ):
            assert decision(doc, site_role, action) == "deny", action
            assert decision(doc, role("999999999999", "x"), action) == "deny", action
        # Early deletion is refused to the vault account too; only the lifecycle expires copies.
        assert decision(doc, admin, "backup:DeleteRecoveryPoint") == "deny"


def test_the_vault_bucket_admits_only_the_sites_replication_roles_and_no_deletes(vault, prod):
    """S3 "Configuring replication for buckets in different accounts" / "Changing the replica owner"."""
    (policy,) = [p for p in vault.of_type("aws:s3/bucketPolicy:BucketPolicy") if "vault-pg-backups" in p.name]
    doc = policy.inputs["policy"]
    bucket = vault.outputs["vaultBucketArn"]
    prod_role = prod.one("aws:iam/role:Role", "pg-backups-replication").outputs["arn"]
    assert prod_role == role(SITES, replication_role_name("prod"))  # the name the vault admits is prod's
    for action in ("s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"):
        assert decision(doc, prod_role, action, **{"aws:SecureTransport": "true"}) == "allow", action
    assert decision(doc, role(SITES, "attacker"), "s3:ReplicateObject") == "deny"
    for action in (
        "s3:ReplicateDelete",
        "s3:DeleteObjectVersion",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:BypassGovernanceRetention",
        "s3:PutObjectRetention",
    ):
        assert decision(doc, prod_role, action) == "deny", action
    assert json.loads(doc)["Statement"][-1]["Resource"] == [bucket, f"{bucket}/*"]


def test_the_replication_role_can_only_replicate(prod, vault):
    """S3 cross-account replication: the source role reads versions for replication (and, the
    bucket being Object-Locked, their retention and legal hold), writes replicas with the owner
    override into the vault bucket, decrypts with its own key and encrypts with the replica key."""
    policy = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "pg-backups-replication").inputs["policy"])
    allowed = {
        "s3:GetReplicationConfiguration",
        "s3:ListBucket",
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:ReplicateObject",
        "s3:ReplicateDelete",
        "s3:ReplicateTags",
        "s3:ObjectOwnerOverrideToBucketOwner",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert granted <= allowed and {"s3:GetObjectRetention", "s3:GetObjectLegalHold"} <= granted
    assert all(s["Effect"] == "Allow" and "*" not in str(s["Resource"]).replace("/*", "") for s in policy["Statement"])
    into_vault = next(s for s in policy["Statement"] if s["Resource"] == vault.outputs["vaultBucketArn"] + "/*")
    assert into_vault["Action"] == ["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
    encrypt = next(s for s in policy["Statement"] if s["Resource"] == vault.outputs["vaultBucketKmsKeyArn"])
    assert encrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}}


# --- cross-account wiring: the vault stack's real ARNs in prod's and dr's resources ----------------


def test_the_vault_stacks_outputs_flow_into_prods_replication_and_both_sites_copy_actions(prod, dr, vault):
    out = vault.outputs
    for run in (prod, dr):
        refs = [r for r in run.of_type("pulumi:pulumi:StackReference") if r.name == "peer-vault"]
        assert [r.outputs["name"] for r in refs] == ["organization/postoucancer-dr/vault"]
    (config,) = [c for c in prod.of_type(REPLICATION) if "pg-backups" in c.name]
    rule = next(r for r in config.inputs["rules"] if r["id"] == "to-vault-account")
    dest = rule["destination"]
    assert dest["bucket"] == out["vaultBucketArn"]
    assert dest["encryptionConfiguration"]["replicaKmsKeyId"] == out["vaultBucketKmsKeyArn"]
    assert dest["account"] == out["vaultAccountId"] == VAULT_ACCOUNT
    assert dest["accessControlTranslation"] == {"owner": "Destination"}
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    assert config.inputs["role"] == prod.one("aws:iam/role:Role", "pg-backups-replication").outputs["arn"]
    for run, region in ((prod, "eu-west-3"), (dr, "eu-central-1")):
        rules = {r["ruleName"]: r for r in run.one("aws:backup/plan:Plan").inputs["rules"]}
        into = {
            n: [c for c in r.get("copyActions") or [] if c["destinationVaultArn"].split(":")[4] == VAULT_ACCOUNT]
            for n, r in rules.items()
        }
        assert {n for n, c in into.items() if c} == {"continuous", *(c.value for c in PROD.classes)}
        assert all(c["destinationVaultArn"] == out["vaultBackupVaultArns"][region] for cs in into.values() for c in cs)
        # The keys of what is copied are shared with the vault account.
        grants = run.of_type("aws:kms/grant:Grant")
        assert {g.inputs["granteePrincipal"] for g in grants} == {f"arn:aws:iam::{VAULT_ACCOUNT}:root"}
        keys = {run.one(KEY, "backup-key").outputs["keyId"], run.one(KEY, "database-key").outputs["keyId"]}
        assert {g.inputs["keyId"] for g in grants} == keys
        assert run.outputs["backupPlan"]["copiesToVaultAccount"] == out["vaultBackupVaultArns"][region]


def test_the_vault_copies_keep_the_gfs_retention(prod):
    rules = {r["ruleName"]: r for r in prod.one("aws:backup/plan:Plan").inputs["rules"]}
    for c in PROD.classes:
        (copy,) = [x for x in rules[c.value]["copyActions"] if VAULT_ACCOUNT in x["destinationVaultArn"]]
        assert copy["lifecycle"]["deleteAfter"] == PROD.for_class(c).days
    (copy,) = [x for x in rules["continuous"]["copyActions"] if VAULT_ACCOUNT in x["destinationVaultArn"]]
    assert copy["lifecycle"] == {"deleteAfter": PROD.daily.days}  # the daily snapshot of the continuous backup
    assert vault_account_copy_lifecycle(RuleSpec("incremental", "cron(0 */6 * * ? *)", 7), PROD) is None
    assert vault_account_copy_lifecycle(RuleSpec("yearly", "x", PROD.yearly.days, 90), PROD)["delete_after"] == 2557
    assert GfsClass.YEARLY in PROD.classes


def test_alarms_cover_copy_failures_into_the_vault(prod, dr, vault):
    for run, site, region in ((prod, "primary", "eu-west-3"), (dr, "dr", "eu-central-1")):
        rule = run.one("aws:cloudwatch/eventRule:EventRule", f"{site}-alerts-vault-copy-failed")
        pattern = json.loads(rule.inputs["eventPattern"])
        assert pattern["detail-type"] == ["Copy Job State Change"] and "FAILED" in pattern["detail"]["state"]
        prefix = pattern["detail"]["destinationBackupVaultArn"][0]["prefix"]
        assert out_arn_startswith(vault.outputs["vaultBackupVaultArns"][region], prefix)
    for name in ("replication-failed-vault", "replication-latency-vault"):
        alarm = prod.one("aws:cloudwatch/metricAlarm:MetricAlarm", f"primary-alerts-{name}")
        assert alarm.inputs["dimensions"]["DestinationBucket"] == vault.outputs["vaultBucketName"]
        assert alarm.inputs["dimensions"]["RuleId"] == "to-vault-account"
        assert alarm.inputs["alarmActions"] == [prod.one("aws:sns/topic:Topic", "primary-alerts").outputs["arn"]]


def out_arn_startswith(arn: str, prefix: str) -> bool:
    return arn.startswith(prefix) and prefix.split(":")[4] == VAULT_ACCOUNT


# --- the recovery source ------------------------------------------------------------------------


def test_ransomware_gains_restore_from_the_vault_account():
    with_vault = Topology(tier=Tier.PROD, database_size_gb=20, vault_account=True)
    (source,) = [s for s in recovery_sources(with_vault) if "vault account" in s.name]
    assert source.immutable and source.point_in_time and source.survives_account_compromise
    assert not any(s.survives_account_compromise for s in recovery_sources(with_vault) if s.name != source.name)
    assert not [s for s in recovery_sources(Topology(tier=Tier.PROD, database_size_gb=20)) if "vault account" in s.name]
    ransomware = next(a for a in achieved_objectives(with_vault) if a.scenario is Scenario.RANSOMWARE)
    assert ransomware.met  # the faster in-account source still answers the objective
    assert stack_config("prod").topology.vault_account and stack_config("dr").topology.vault_account
    assert not stack_config("staging").topology.vault_account


# --- bad configuration ----------------------------------------------------------------------------

BASE = {k[len(P) :]: v for k, v in load_stack_config("vault").items() if k.startswith(P)}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"accounts": {"vault": SITES, "sites": SITES}},
            ["'postoucancer-dr:accounts.vault'", "equals accounts.sites", "blast radius"],
        ),
        (
            {"accounts": {"vault": VAULT_ACCOUNT}},
            ["'postoucancer-dr:accounts.sites' is missing", "pulumi config set --path accounts.sites"],
        ),
        ({"accounts": {"sites": SITES}}, ["'postoucancer-dr:accounts.vault' is missing"]),
        ({"accounts": {"vault": 210987654321, "sites": SITES}}, ["accounts.vault", "quoted string"]),
        ({"accounts": {"vault": "2109", "sites": SITES}}, ["accounts.vault", "12-digit"]),
        ({"regions": {"primary": "eu-west-3", "dr": "eu-west-3"}}, ["regions.dr", "equals regions.primary"]),
        ({"role": "primary"}, ["'postoucancer-dr:role'", "pulumi config set role vault"]),
    ],
    ids=["same-account", "missing-sites", "missing-vault", "unquoted", "malformed", "same-regions", "site-role"],
)
def test_bad_vault_config_is_refused_with_the_key_named(change, expected):
    with pytest.raises(ConfigError) as e:
        parse_vault({**BASE, **change}, "eu-central-1")
    for part in expected:
        assert part in str(e.value)


def test_the_vault_stack_refuses_other_credentials_and_a_prod_site_needs_one():
    cfg = parse_vault(BASE, "eu-central-1")
    with pytest.raises(ConfigError, match=r"accounts\.vault.*not the account these credentials are in"):
        check_account(cfg, SITES)
    check_account(cfg, VAULT_ACCOUNT)
    raw = {k[len(P) :]: v for k, v in load_stack_config("prod").items() if k.startswith(P) and k != P + "kubeconfig"}
    raw.pop("vaultStack")
    with pytest.raises(ConfigError, match=r"'postoucancer-dr:vaultStack' is missing"):
        parse_site(raw, "eu-west-3")
    with pytest.raises(ConfigError, match="peer site's stack"):
        parse_site({**raw, "vaultStack": "dr"}, "eu-west-3")


def test_a_site_refuses_a_vault_stack_that_admits_another_account(vault, pair_prod):
    """The vault's policies admit copies from accounts.sites only: a mismatch is a config error
    naming that key of the vault stack, before the site's copies would fail at run time."""
    wrong = {**vault.outputs, "sitesAccountId": "999999999999"}
    with pytest.raises(ConfigError, match=r"accounts\.sites' of stack vault .* -s vault"):
        run_stack("prod", peer_outputs=pair_prod.bootstrap[0].outputs, stack_outputs={"vault": wrong})
