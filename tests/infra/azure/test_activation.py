"""DR activation of the Azure pair (what exists of it) and the offline plan that shows it: the
activation diff, the activated stack passing the pack (the dry run of `python -m infra.activate
--stack dr-azure` is docs/azure.md's, tests/infra/azure/test_docs.py), the objectives table,
realistic ARM ids, the cross-region links, no secret in the printed plan. One module: the
activation runs are shared (answered from memory) by the plan's rendering."""

from __future__ import annotations

import json

from infra import policy_check
from infra.activation import activation_runs, diff_activation, diff_completion, output_changes
from infra.azure.activation import DONE, PENDING
from infra.plan import cross_stack_edges, render_text, to_json
from tests.infra.azure.helpers import ARM_ID, REPLICATION, ROLE

PG = "azure-native:dbforpostgresql:Server"


def test_activation_promotes_scales_and_switches_traffic_and_replaces_nothing(pair_azure):
    """`activated: true` on dr-azure: exactly the replica's promotion (Forced: Azure's option
    for a regional outage, REST API Servers_Update), the HPA at production bounds, the primary's
    Traffic Manager endpoint disabled, the jobs on their schedules, the DR vault protecting the
    promoted server, the destination halves of replication gone; nothing stateful replaced or
    deleted (the replica's create-only properties, REPLACED_BY, do not change)."""
    changes = diff_activation(pair_azure)
    assert {(c.action, c.type, c.name) for c in changes} == {
        ("delete", REPLICATION, "dr-backups-replication"),
        ("delete", REPLICATION, "dr-files-replication"),
        ("update", PG, "dr-database"),
        ("update", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "dr-api-hpa"),
        ("update", "azure-native:trafficmanager:Endpoint", "dr-traffic-manager-primary"),
        ("update", "azure-native:app:Job", "dr-functions-backup"),
        ("update", "azure-native:app:Job", "dr-functions-verify"),
        ("create", "azure-native:dataprotection:BackupInstance", "dr-backup-vault-database"),
        ("create", ROLE, "dr-backup-vault-database-ltr-backup"),
        ("create", ROLE, "dr-backup-vault-database-reader"),
    }
    assert not any(c.risky for c in changes)
    by_name = {c.name: c for c in changes}
    server = by_name["dr-database"]
    assert server.stateful
    assert {p.path: p.after for p in server.properties} == {
        "replica.promoteMode": "Standalone", "replica.promoteOption": "Forced", "tags.role": "primary",
    }
    hpa = {p.path: p.after for p in by_name["dr-api-hpa"].properties}
    assert hpa == {"spec.minReplicas": 3, "spec.maxReplicas": 12}
    endpoint = by_name["dr-traffic-manager-primary"].properties
    assert [(p.path, p.before, p.after) for p in endpoint] == [("endpointStatus", "Enabled", "Disabled")]
    # The second step gives the promoted server zone-redundant HA, and only that.
    (complete,) = diff_completion(pair_azure)
    assert complete.name == "dr-database" and not complete.risky
    assert {p.path: p.after for p in complete.properties} == {
        "highAvailability.mode": "ZoneRedundant", "highAvailability.standbyAvailabilityZone": "2",
    }


def test_the_activated_site_says_what_it_did_and_what_is_pending(pair_azure):
    before, after = activation_runs(pair_azure)
    changed = {c.path: (c.before, c.after) for c in output_changes(before, after)}
    assert changed["activated"] == (False, True)
    assert changed["filesReplication.role"] == ("destination", "primary since activation")
    assert changed["standby.promoted"] == (False, True)
    assert changed["dns.serving"] == ("primary", "dr")
    assert changed["app.scale"] == ("warm-standby", "production")
    assert after.outputs["activation"]["done"] == list(DONE)
    assert after.outputs["activation"]["pending"] == list(PENDING)
    assert "activatedAt" in after.outputs
    assert [str(v) for v in policy_check.evaluate(after) if v.mandatory] == []


SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # the stack files' placeholder
# The activity-log export and the custom role are subscription resources, not a group's.
SUBSCRIPTION_SCOPED = {
    "azure-native:monitor:SubscriptionDiagnosticSetting",
    "azure-native:authorization:RoleDefinition",
}


def test_every_azure_resource_has_a_realistic_arm_id(prod_azure, dr_azure):
    for run in (prod_azure, dr_azure):
        for r in run.resources:
            if not r.type.startswith("azure-native:"):
                continue
            rid, group = r.outputs["id"], run.outputs["azure"]["resourceGroup"]
            if r.type in SUBSCRIPTION_SCOPED:
                assert rid.startswith(f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft."), (r.type, rid)
            elif r.type == "azure-native:resources:ResourceGroup":
                assert rid == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
            else:
                assert ARM_ID.match(rid) and f"/resourceGroups/{group}/providers/" in rid, (r.type, rid)
                assert r.id == rid, "other resources reference the same id the provider answered"


def test_the_objectives_table_is_exported_and_printed(pair_azure):
    for run in (pair_azure.primary, pair_azure.dr):
        table = run.outputs["objectives"]
        assert set(table) == {"database-corruption", "datacentre-loss", "ransomware", "accidental-deletion"}
        assert all(row["declared"] and row["met"] for row in table.values())
    text = render_text({"prod-azure": pair_azure})
    assert "pulumi up -s dr-azure → pulumi up -s prod-azure → pulumi up -s dr-azure → pulumi up -s prod-azure" in text
    assert text.count("objectives (achieved vs declared") == 2
    assert text.count("source geo-restore (paired region): RPO 1h") == 2  # each site lists every source
    assert "databaseCredentials = [secret]" in text


def test_cross_region_links_are_the_replication_halves_and_the_replica(pair_azure):
    edges = {(a, b) for a, b, _ in cross_stack_edges(pair_azure)}
    assert edges == {
        ("dr-azure:dr-database", "prod-azure:primary-database"),
        ("prod-azure:primary-files-replication", "dr-azure:dr-files"),
        ("prod-azure:primary-backups-replication", "dr-azure:dr-backups"),
        ("dr-azure:dr-files-replication", "prod-azure:primary-files"),
        ("dr-azure:dr-backups-replication", "prod-azure:primary-backups"),
    }


def test_the_plan_json_holds_no_generated_credential(pair_azure):
    password = json.loads(
        pair_azure.primary.one("azure-native:keyvault:Secret", "database-credentials").inputs["properties"]["value"]
    )["password"]
    outputs = to_json({"prod-azure": pair_azure})["prod-azure"]["sites"][0]["outputs"]
    assert outputs["databaseCredentials"] == "[secret]"
    assert password not in json.dumps(outputs)
