"""Where backups live in a bucket and how they are tagged: shared with the infrastructure.

The lifecycle rules (components/aws, components/azure) filter on GFS_TAG_KEY; the
function roles are scoped to these prefixes. Plain constants, no imports of note.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Object tag carrying the GFS generation (drplan.retention.GfsClass value): lifecycle rules
# expire objects per tag value, so retention is enforced by the storage, not by code.
GFS_TAG_KEY = "gfs-class"
SLOT_TAG_KEY = "backup-slot"
MANIFEST_FORMAT = 1

DATA_DIR = "data"
MANIFEST_DIR = "manifests"
VERIFY_DIR = "verifications"
DUMP_SUFFIX = ".pgdump.zst"


SLOT_ID_FORMAT = "%Y-%m-%dT%H%MZ"


def slot_id(slot: datetime) -> str:
    """A schedule slot as a key component; sorts chronologically as text."""
    return slot.strftime(SLOT_ID_FORMAT)


def parse_slot_id(text: str) -> datetime | None:
    """The slot a key component names (slot_id's inverse), or None if it names none."""
    try:
        return datetime.strptime(text, SLOT_ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _base(prefix: str, database: str) -> str:
    return f"{prefix.strip('/')}/{database}" if prefix.strip("/") else database


def data_key(prefix: str, database: str, slot: datetime, run_id: str) -> str:
    """One object per run: two concurrent runs of a slot never write the same key."""
    return f"{_base(prefix, database)}/{DATA_DIR}/{slot_id(slot)}/{run_id}{DUMP_SUFFIX}"


def manifests_prefix(prefix: str, database: str) -> str:
    return f"{_base(prefix, database)}/{MANIFEST_DIR}/"


def manifest_key(prefix: str, database: str, slot: datetime) -> str:
    """One manifest per slot, claimed with a conditional create: the idempotency key."""
    return f"{manifests_prefix(prefix, database)}{slot_id(slot)}.json"


def verification_key(prefix: str, database: str, slot: datetime, run_id: str) -> str:
    return f"{_base(prefix, database)}/{VERIFY_DIR}/{slot_id(slot)}/{run_id}.json"
