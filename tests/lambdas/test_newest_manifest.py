"""Which manifest verify and export take as the newest, when the store's clock ties.

S3 (and moto) give LastModified to the second: a manifest forged in the same second as a real
backup's ties with it. The real one must win whatever slot the forged key claims; the forged
one still fails verify on its own (tests/lambdas/test_tamper.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drplan import layout
from lambdas.core.storage import ObjectVersion
from lambdas.core.verify import newest_manifest

PREFIX, DB = "postgres", "postoucancer"
NOW = datetime(2026, 12, 2, 12, 24, 1, tzinfo=UTC)


class _Listing:
    def __init__(self, versions: list[ObjectVersion]) -> None:
        self.versions = versions

    def list_versions(self, prefix: str) -> list[ObjectVersion]:
        return [v for v in self.versions if v.key.startswith(prefix)]


def _manifest(slot: datetime, stored_at: datetime) -> ObjectVersion:
    return ObjectVersion(layout.manifest_key(PREFIX, DB, slot), "v1", stored_at)


def test_a_future_dated_key_stored_in_the_same_second_does_not_win_the_tie():
    real = _manifest(NOW.replace(minute=0, second=0), NOW)
    forged = _manifest(datetime(2099, 1, 1, 2, 0, tzinfo=UTC), NOW)
    for order in ([real, forged], [forged, real]):
        assert newest_manifest(_Listing(order), PREFIX, DB) == real.key


def test_the_later_write_wins_even_over_a_future_claim():
    # Only a tie is broken by the claim: a forged manifest written later is still the newest
    # (verify then refuses it as future-dated rather than silently passing an older backup).
    real = _manifest(NOW.replace(minute=0, second=0), NOW)
    forged = _manifest(datetime(2099, 1, 1, 2, 0, tzinfo=UTC), NOW + timedelta(seconds=1))
    assert newest_manifest(_Listing([real, forged]), PREFIX, DB) == forged.key


def test_same_second_real_backups_still_order_by_slot():
    earlier = _manifest(NOW - timedelta(hours=2), NOW)
    later = _manifest(NOW - timedelta(hours=1), NOW)
    assert newest_manifest(_Listing([later, earlier]), PREFIX, DB) == later.key


def test_slot_ids_parse_back():
    slot = datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert layout.parse_slot_id(layout.slot_id(slot)) == slot
    assert layout.parse_slot_id("not-a-slot") is None
