"""The manifest: the only thing that makes a dump a backup. Written last, only on success."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from drplan.layout import MANIFEST_FORMAT
from drplan.retention import GfsClass, Tier

from .errors import VerifyFailed


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = MANIFEST_FORMAT
    run_id: str
    database: str
    tier: Tier
    slot: AwareDatetime
    gfs_class: GfsClass
    object_key: str
    version_id: str | None
    stored_bytes: int = Field(ge=0)
    raw_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    compression: str  # e.g. "zstd-3"
    dump_format: str  # "pg_dump -Fc -Z0"
    encryption_key: str
    lock_mode: str | None
    retain_until: AwareDatetime | None
    started_at: AwareDatetime
    finished_at: AwareDatetime
    server_version: str
    pg_dump_version: str
    tool_version: str
    row_counts: dict[str, int]

    def to_bytes(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def parse(cls, raw: bytes, key: str) -> Manifest:
        try:
            return cls.model_validate(json.loads(raw))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VerifyFailed(f"manifest {key} is not valid JSON: {exc}", cause="manifest_malformed",
                               manifest_key=key) from None
        except ValidationError as exc:
            fields = [".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                      for e in exc.errors(include_url=False, include_input=False)]
            raise VerifyFailed(f"manifest {key} is malformed: " + "; ".join(fields), cause="manifest_malformed",
                               manifest_key=key, fields=fields) from None
