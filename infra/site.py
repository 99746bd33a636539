"""What every concern of a site is built from: the validated config, the peer, the exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.config import Role, StackConfig
from infra.peer import Peer


@dataclass
class Site:
    cfg: StackConfig
    stack: str
    peer: Peer
    # Components built by earlier concerns, for later ones (e.g. "kms.data", "network").
    parts: dict[str, Any] = field(default_factory=dict)

    @property
    def is_primary(self) -> bool:
        return self.cfg.role is Role.PRIMARY

    @property
    def is_dr(self) -> bool:
        return self.cfg.role is Role.DR

    @property
    def region(self) -> str:
        return self.cfg.region

    def name(self, base: str) -> str:
        """Resource names carry the site so that prod and dr never collide in one account."""
        return f"{self.cfg.role.value}-{base}"

    def export(self, key: str, value: Any) -> None:
        pulumi.export(key, value)
