"""What the attacker does to the backups in the ransomware scenario, and what each store refuses.

S3 (moto): the production bucket is compliance-locked, and a copy lives in the backup-only
vault account, out of the production account's reach (`drill.vault`). The attacker holds the
production account's keys: they try to delete every backup in both places; the recovery reads
the vault's copy with the vault account's own keys.

Azure Blob (Azurite): the backup writer's credential has no delete permission, which Azurite
enforces. What protects the backups from the account key in Azure (version-level immutability,
soft delete, blob versioning) Azurite does not implement: each is probed, and reported as not
emulated instead of passed.
"""

from __future__ import annotations

from collections.abc import Callable

from drill.backup_store import BackupStore
from drill.environment import DrillEnvironment
from drill.report import ScenarioResult

Progress = Callable[[str], None]


def attack_the_backups(env: DrillEnvironment, result: ScenarioResult, progress: Progress) -> BackupStore:
    """Run the store's attack, record what it refused; returns the store to recover from."""
    return DEFENCES[env.store.kind](env, result, progress)


def _s3(env: DrillEnvironment, result: ScenarioResult, progress: Progress) -> BackupStore:
    store, vault_account = env.store, env.services.vault
    before = len(store.versions())
    store.sealed += store.seal_unlocked()  # what moto left unlocked since the base backup
    # Replication would have delivered the objects long before the attack (moto runs no
    # replication rules: the drill makes the copy itself, at the incident).
    vault, copied = vault_account.replicate(store, env.workdir / env.name / "vault-hooks")
    progress(f"  {copied} backup object versions copied to the vault account's locked bucket "
             "(the copy replication would make; moto does not replicate)")

    own = store.attack()
    progress(f"  primary wiped; attacker's permanent deletes refused {own.permanent_refused}/{own.versions}, "
             f"{own.markers_placed} delete markers placed")
    result.check("every permanent delete of a locked backup refused",
                 own.permanent_refused == own.versions > 0, f"{own.permanent_refused} of {own.versions} refused")
    result.check("all backup versions intact after the attack", len(store.versions()) == before,
                 f"{len(store.versions())} of {before}")

    attacker = store.creds  # the production account's keys
    accounts = {"attacker": vault_account.account_of(attacker), "vault": vault_account.account_of(vault.creds)}
    foreign = vault.attack(attacker)
    refused, tried = foreign.refused, foreign.tried
    progress(f"  the production account's keys against the vault copy: {refused}/{tried} requests refused")
    result.check("the production account's keys cannot delete the vault copy",
                 accounts["attacker"] != accounts["vault"] and foreign.versions == copied > 0
                 and refused == tried,
                 f"{refused} of {tried} deletes and bucket changes refused (account {accounts['attacker']} "
                 f"against account {accounts['vault']}'s bucket)")
    insider = vault.attack(hide=False)
    result.check("the vault account itself cannot delete a locked copy (COMPLIANCE)",
                 insider.permanent_refused == insider.versions == copied,
                 f"{insider.permanent_refused} of {insider.versions} permanent deletes refused")
    locked = [v for v in vault.versions() if vault.lock_mode(v["Key"], v["VersionId"]) == "COMPLIANCE"]
    result.check("every vault copy intact and compliance-locked", len(locked) == copied,
                 f"{len(locked)} of {copied}")
    result.facts.update(
        backup_versions=own.versions, deletes_refused=own.permanent_refused,
        delete_markers_placed=own.markers_placed, versions_locked_by_the_drill_for_moto=store.sealed,
        vault={"account": accounts["vault"], "attacker_account": accounts["attacker"], "bucket": vault.bucket,
               "versions_copied_by_the_drill_for_replication": copied,
               "attack_with_production_keys": foreign.as_fact(),
               "attack_with_vault_keys": insider.as_fact(), "restored_from": vault.url},
    )
    return vault


def _azure(env: DrillEnvironment, result: ScenarioResult, progress: Progress) -> BackupStore:
    store = env.store
    emulator = f"Azurite {env.services.version()}"
    before = store.blobs()
    blobs, refused = store.writer_deletes()
    progress(f"  primary wiped; the backup writer's deletes refused {refused}/{blobs}")
    result.check("the backup writer's credential cannot delete a backup", refused == blobs > 0,
                 f"{refused} of {blobs} deletes refused (a container SAS without delete permission)")
    probes = store.probe()
    for p in probes:
        name = {"blob versioning": "an overwritten backup keeps its previous version (blob versioning)",
                "soft delete": "a deleted backup can be undeleted (soft delete)"}.get(
                    p.feature, "the account key cannot delete a locked backup (version-level immutability)")
        if p.emulated:
            # The drill assumes the emulator lacks it; if that changed, the drill must use it.
            result.check(name, False, f"{emulator} now implements {p.feature} ({p.detail}): "
                                      "make the drill rely on it (docs/drill.md)")
        else:
            result.not_rehearsed(name, emulator, p.detail)
    progress("  " + "; ".join(f"{p.feature}: {'emulated' if p.emulated else 'not emulated'}" for p in probes))
    after = store.blobs()
    result.check("all backup blobs intact after the attack", after == before and bool(after),
                 f"{len(after)} of {len(before)}")
    result.facts.update(backup_blobs=blobs, deletes_refused=refused,
                        account_key_attack="not run: nothing in the emulator would refuse it",
                        not_emulated={p.feature: p.detail for p in probes if not p.emulated},
                        emulator=emulator)
    return store


DEFENCES: dict[str, Callable[[DrillEnvironment, ScenarioResult, Progress], BackupStore]] = {
    "s3": _s3,
    "azure": _azure,
}
