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

    def __init__(self, cfg: StackConfig | None = None, *, stack_name: str | None = None, what: str = "peer stack"):
        """The peer site of `cfg`, or (stack_name) another stack of the project: the vault account's."""
        name = stack_name if stack_name is not None else cfg.peer_stack if cfg is not None else None
        if name is None:
            raise ValueError("Peer needs a StackConfig or a stack_name")
        self.name = name
        self.what = what
        self._ref = pulumi.StackReference(f"peer-{name.rsplit('/', 1)[-1]}", stack_name=name)
        self.missing: list[str] = []
        self._present: frozenset[str] | None = None
        self._values: dict[str, Any] = {}

    def _keys(self) -> frozenset[str]:
        if self._present is None:
            # Unknown during a preview of a peer that is itself being created: nothing yet.
            outputs = sdk.sync_await(self._ref.outputs.future()) or {}
            self._values = {k: v for k, v in outputs.items() if v is not None}
            self._present = frozenset(self._values)
        return self._present

    def value(self, key: str) -> Any:
        """The peer's output `key` as a plain value (None: not there yet), for what the program
        must know while it is being built (an account id to name in a key policy)."""
        if not self.has(key):
            self.missing.append(key)
            return None
        return self._values[key]

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
            f"{self.what} '{self.name}' has no outputs {', '.join(sorted(set(self.missing)))} yet: "
            f"run `pulumi up -s {peer_stack}`, then `pulumi up -s {this_stack}` again"
        )
