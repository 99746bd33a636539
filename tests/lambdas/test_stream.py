"""The streaming pieces on their own: parts, checksums, decompression, audit actors."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drplan import layout
from lambdas.core.audit import Actor, AuditEvent, emit
from lambdas.core.stream import VerifyingReader, upload_stream

PART = 5 << 20


def _data(seed: int, size: int) -> bytes:
    rnd = random.Random(seed)
    words = [b"soin", b"espoir", b"chimio", b"famille", bytes(rnd.getrandbits(8) for _ in range(64))]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + rnd.randbytes(rnd.randint(0, 40))
    return bytes(out[:size])


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.sampled_from([0, 1, 1000, (5 << 20) + 17, 12 << 20]),
       threads=st.sampled_from([0, 2]))
def test_parts_round_trip_with_checksum(seed, size, threads):
    data = _data(seed, size)
    parts: dict[int, bytes] = {}
    stats = upload_stream(io.BytesIO(data), parts.__setitem__, part_size=PART, threads=threads, read_size=300_000)
    numbers = sorted(parts)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    assert all(len(parts[n]) == PART for n in numbers[:-1]) and 0 < len(parts[numbers[-1]]) <= PART
    stored = b"".join(parts[n] for n in numbers)
    assert stats.raw_bytes == size and stats.stored_bytes == len(stored)
    assert stats.sha256 == hashlib.sha256(stored).hexdigest()
    reader = VerifyingReader(stored[i:i + 65536] for i in range(0, len(stored), 65536))
    assert b"".join(reader.raw()) == data
    assert reader.complete_frame and reader.stats.sha256 == stats.sha256 and reader.decompress_error is None


def test_truncated_and_corrupted_streams_are_noticed():
    data = _data(1, 3 << 20)
    parts: dict[int, bytes] = {}
    upload_stream(io.BytesIO(data), parts.__setitem__, part_size=PART)
    stored = parts[1]
    truncated = VerifyingReader([stored[: len(stored) // 2]])
    b"".join(truncated.raw())
    assert not truncated.complete_frame
    bad = bytearray(stored)
    bad[len(bad) // 2] ^= 1
    corrupted = VerifyingReader([bytes(bad)])
    b"".join(corrupted.raw())
    assert corrupted.decompress_error is not None or not corrupted.complete_frame
    assert corrupted.stats.sha256 != hashlib.sha256(stored).hexdigest()


def test_a_failing_part_stops_the_stream():
    calls = []

    def upload(number, data):
        calls.append(number)
        if number == 2:
            raise OSError("part 2 refused")

    with pytest.raises(OSError, match="part 2"):
        upload_stream(io.BytesIO(random.Random(3).randbytes(40 << 20)), upload, part_size=PART, threads=0)
    assert 2 in calls and max(calls) < 8  # it did not read the whole source first


def test_slot_ids_sort_chronologically():
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 12, 31, 2, tzinfo=UTC)
    ids = [layout.slot_id(t + timedelta(days=d)) for d in range(-400, 400, 37)]
    assert ids == sorted(ids)


def test_audit_actor_and_record():
    assert Actor.from_environment({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "backup",
                                   "HOSTNAME": "pg-backup-29123-abc"}) == Actor("k8s:backup/pg-backup-29123-abc",
                                                                                "cronjob")
    assert Actor.from_environment({"AUDIT_ACTOR": "alice@ops"}).principal == "alice@ops"
    sink: list = []
    rec = emit(AuditEvent("backup.verify", "failure", Actor("x", "cli"), {"database": "d"}, reason="checksum_mismatch"),
               sink.append)
    assert sink == [rec] and rec["audit"] is True and rec["reason"] == "checksum_mismatch" and rec["event_id"]
