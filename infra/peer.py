"""The other site's stack outputs, and what to do while it has none yet."""

from __future__ import annotations

from typing import Any

import pulumi

from infra import sdk
from infra.config import StackConfig


class Peer:
    """Reads the peer site's outputs through a StackReference.

    Whether an output exists must be known while the program is being built (to decide
    if, say, replication can be configured yet), so the peer's outputs are awaited
    synchronously, once per program run, the first time they are asked about; later
    questions are answered from that snapshot. The values handed out stay Outputs of the
    StackReference (`get_output`), so secrets stay secret and dependents depend on it.
    """

    def __init__(self, cfg: StackConfig):
        self.name = cfg.peer_stack
        self._ref = pulumi.StackReference(f"peer-{cfg.peer_stack.rsplit('/', 1)[-1]}", stack_name=cfg.peer_stack)
        self.missing: list[str] = []
        self._present: frozenset[str] | None = None

    def _keys(self) -> frozenset[str]:
        if self._present is None:
            # Unknown during a preview of a peer that is itself being created: nothing yet.
            outputs = sdk.sync_await(self._ref.outputs.future()) or {}
            self._present = frozenset(k for k, v in outputs.items() if v is not None)
        return self._present

    def has(self, key: str) -> bool:
        return key in self._keys()

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
