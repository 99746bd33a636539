"""Failback as a sequence that works (issue 12, point 5): the documents' commands, run through
the stacks under mocks (infra/failback.py).

Sources for what a real run would refuse:
- terraform-provider-aws, internal/service/rds/instance.go (resourceInstanceUpdate): setting
  `replicate_source_db` on an instance that is not a replica fails with "cannot elect new
  source database for replication"; removing it promotes the replica in place.
- RDS CreateDBInstanceReadReplica, `MultiAZ`: "You can create a read replica as a Multi-AZ DB
  instance" (so the re-seeded primary needs no conversion after its promotion).
- Pulumi, resource option `protect`: the engine refuses to delete a protected resource until
  `pulumi state unprotect` releases it; `retainOnDelete`: a deleted resource is only dropped
  from the state, the cloud resource stays.
"""

from __future__ import annotations

import json

import pytest

from infra.activation import diff_runs
from infra.failback import FAILBACK_DOC, rehearse, sequence
from infra.mockrun import run_stack

P = "postoucancer-dr:"
INSTANCE = "aws:rds/instance:Instance"


@pytest.fixture(scope="module")
def rehearsal(pair_prod):
    return rehearse(pair_prod)


def test_every_step_of_the_documented_sequence_would_be_accepted(rehearsal):
    assert rehearsal.all_problems() == []
    # Failover (promote, then Multi-AZ), re-seed prod, switch prod, re-seed and deactivate dr.
    assert [up.stack for up in rehearsal.ups] == ["dr", "dr", "prod", "prod", "dr"]


def test_the_pair_ends_as_it_began_one_generation_on(rehearsal, pair_prod):
    prod, dr = rehearsal.latest["prod"], rehearsal.latest["dr"]
    primary = prod.one(INSTANCE)
    assert primary.name == "primary-database-g2"
    assert primary.inputs.get("replicateSourceDb") is None and primary.inputs["multiAz"] is True
    assert primary.protect and primary.retain_on_delete
    standby = dr.one(INSTANCE)
    assert standby.name == "dr-database-g2"
    # The new standby follows the new primary: the ARN flows from the prod stack's outputs.
    assert standby.inputs["replicateSourceDb"] == prod.outputs["databaseInstanceArn"] == primary.outputs["arn"]
    backups = dr.one("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert backups.inputs["sourceDbInstanceArn"] == primary.outputs["arn"]
    # DNS is back on the primary site, as after the first bootstrap.
    assert dr.outputs["activated"] is False
    assert dr.outputs["dns"]["primaryTarget"] == pair_prod.dr.outputs["dns"]["primaryTarget"]
    assert dr.outputs["dns"]["primaryTarget"] == prod.outputs["appEndpoint"]
    # The prod site's plan protects its database again; the former one is in no backup selection.
    assert primary.inputs["tags"].get("backup") == "true"


def test_seeding_creates_a_multi_az_replica_of_the_promoted_dr_database(rehearsal):
    seed = rehearsal.ups[2]
    assert seed.stack == "prod"
    created = [c for c in seed.changes if c.type == INSTANCE and c.action == "create"]
    deleted = [c for c in seed.changes if c.type == INSTANCE and c.action == "delete"]
    assert [c.name for c in created] == ["primary-database-g2"]
    assert [c.name for c in deleted] == ["primary-database"]
    replica = seed.run.one(INSTANCE)
    promoted_dr = rehearsal.ups[1].run.one(INSTANCE)
    assert replica.inputs["replicateSourceDb"] == promoted_dr.outputs["arn"]
    assert replica.inputs["multiAz"] is True and replica.inputs["skipFinalSnapshot"] is True
    # A replica born from the DR database inherits its credentials and data: none declared.
    assert not {"password", "username", "dbName"} & set(replica.inputs)
    # While it replicates, AWS Backup of this site leaves it alone (the DR site's plan has the writes).
    assert "backup" not in replica.inputs["tags"]
    # The clients of the site follow the secret and the exported endpoint to the new instance.
    assert seed.run.outputs["databaseEndpoint"] == replica.outputs["address"]


def test_the_switch_is_a_promotion_only(rehearsal):
    switch = rehearsal.ups[3]
    (change,) = [c for c in switch.changes if c.type == INSTANCE]
    assert change.action == "update" and "replicateSourceDb" in change.paths
    assert "multiAz" not in change.paths and "instanceClass" not in change.paths


def test_former_generations_leave_the_program_but_stay_in_aws(rehearsal):
    """Released by the documented `pulumi state unprotect`, and retained on delete."""
    released = {urn for up in rehearsal.ups for urn in up.unprotected}
    deleted = [c for up in rehearsal.ups for c in up.changes if c.action == "delete" and c.stateful]
    assert {c.urn for c in deleted} == released
    for up in rehearsal.ups:
        for c in up.changes:
            if c.action == "delete" and c.type == INSTANCE:
                assert up.before.by_urn(c.urn).retain_on_delete, f"{c.name} would be deleted in AWS"


def test_deactivating_without_a_new_generation_is_what_the_provider_refuses(rehearsal):
    """Today's failback (`activated false` alone) puts replicate_source_db back on the promoted
    instance: the provider's "cannot elect new source database for replication"."""
    promoted = rehearsal.ups[1].run
    prod_after_switch = rehearsal.ups[3].run
    cfg = {k: v for k, v in promoted.config.items() if k not in (P + "activatedAt", P + "activationComplete")}
    naive = run_stack("dr", config=cfg, peer_outputs=prod_after_switch.outputs, overrides={P + "activated": False})
    refused = [c for c in diff_runs(promoted, naive) if c.refused]
    assert [c.name for c in refused] == ["dr-database"]
    assert refused[0].risky and "cannot elect new source database" in str(refused[0])


def test_a_sequence_without_its_unprotect_step_is_caught(pair_prod):
    without = [c for c in sequence() if "state unprotect" not in c.text or "PostgresStandby" in c.text]
    problems = rehearse(pair_prod, commands=without).all_problems()
    assert len(problems) == 1 and "primary-database" in problems[0] and "unprotect" in problems[0]


def test_the_document_names_every_command_the_rehearsal_runs():
    texts = [c.text for c in sequence() if c.path == FAILBACK_DOC]
    assert any("database.replicaOfPeer true" in t for t in texts)
    assert any("database.generation 2 --stack dr" in t for t in texts)


def test_every_state_of_the_sequence_passes_the_policy_pack(rehearsal):
    """The gate a real `pulumi up --policy-pack policy` applies at each step (a replica without a
    final snapshot, a promoted one with it, the seeding primary without the backup tag)."""
    from infra import policy_check

    violations = policy_check.check_stacks([up.run for up in rehearsal.ups])
    assert [str(v) for v in violations if v.mandatory] == []


def test_runs_forked_in_parallel_are_the_runs_made_in_sequence(monkeypatch):
    """The offline plan runs independent ups in forked processes (run_many, workers > 1)."""
    from infra import mockrun

    # Both sides computed here: not read back from the session's shared records.
    monkeypatch.delenv(mockrun.SHARED_RUNS_ENV, raising=False)

    base = mockrun.load_stack_config("staging-dr")
    specs = [
        ("staging-dr", {**base, P + "activated": True, P + "activatedAt": "2026-01-01T00:00:00Z"}, None),
        ("staging-dr", {**base, P + "activated": False}, None),
    ]
    parallel = mockrun.run_many(specs, workers=2)
    for spec in specs:
        mockrun._RUNS.pop(mockrun._run_key(*spec))
    sequential = mockrun.run_many(specs, workers=1)
    for a, b in zip(parallel, sequential, strict=True):
        def shown(run):  # registration order is the event loop's, not the program's
            return sorted((r.urn, json.dumps(r.inputs, sort_keys=True), r.protect) for r in run.resources)

        assert shown(a) == shown(b)
        assert a.outputs == b.outputs
    assert parallel[0].outputs["activated"] is True and parallel[1].outputs["activated"] is False
