"""The other site's stack outputs, and what to do while it has none yet."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from infra.config import StackConfig


class Peer:
    """Reads the peer site's outputs through a StackReference.

    Whether an output exists must be known while the program is being built (to decide
    if, say, replication can be configured yet), so the lookup is awaited synchronously,
    the way the SDK's own synchronous invokes do. Values stay Outputs (secrets stay secret).
    """

    def __init__(self, cfg: StackConfig):
        self.name = cfg.peer_stack
        self._ref = pulumi.StackReference(f"peer-{cfg.peer_stack.rsplit('/', 1)[-1]}", stack_name=cfg.peer_stack)
        self.missing: list[str] = []

    def has(self, key: str) -> bool:
        details = _sync_await(self._ref.get_output_details(key))
        return details.value is not None or details.secret_value is not None

    def get(self, key: str) -> pulumi.Output[Any] | None:
        """The peer's output `key`, or None (remembered in `missing`) if it has none yet."""
        if not self.has(key):
            self.missing.append(key)
            return None
        return self._ref.get_output(key)

    def require_all(self, *keys: str) -> dict[str, pulumi.Output[Any]] | None:
        """All of `keys`, or None if any is missing (a partial set is of no use)."""
        values = {k: self.get(k) for k in keys}
        if any(v is None for v in values.values()):
            return None
        return values  # type: ignore[return-value]

    def next_step(self, this_stack: str) -> str | None:
        if not self.missing:
            return None
        peer_stack = self.name.rsplit("/", 1)[-1]
        return (
            f"peer stack '{self.name}' has no outputs {', '.join(sorted(set(self.missing)))} yet: "
            f"run `pulumi up -s {peer_stack}`, then `pulumi up -s {this_stack}` again"
        )
