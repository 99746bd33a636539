"""What every concern of a site is built from: the validated config, the peer, the exports.

What one concern hands another is not stored here: each concern's `build` takes the typed
results it needs as arguments and returns its own (infra/aws/__init__.py composes them), so
a dependency shows in a signature and build order is the order of the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from drplan.names import Role
from infra.config import StackConfig
from infra.peer import Peer


@dataclass
class Site:
    cfg: StackConfig
    stack: str
    peer: Peer
    # The backup-only account's stack (config vaultStack), read like the peer; None without one.
    vault: Peer | None = None

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
