"""DR activation on Azure: `pulumi config set activated true -s dr-azure && pulumi up -s dr-azure`.

What it changes today (infra/activation.py's diff shows it offline): the DR site's destination
halves of object replication are removed, so that its files and backups containers take writes
(Azure refuses writes to a destination container with 409 while a policy stands); the DR vault
already holds the database credentials, the DR backup account is locked like the primary's.

What it does not change yet, because those concerns are composed later (their components are
built separately): promoting the PostgreSQL replica, scaling the API on the DR AKS cluster,
switching Traffic Manager to the DR endpoint. `PENDING` names them; the stack exports it, so
an activation run says what it did not do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pulumi

from infra.site import Site

PENDING = (
    "promote the PostgreSQL read replica (database concern)",
    "scale the DR API on AKS to production size (app concern)",
    "send Traffic Manager to the DR endpoint (failover concern)",
)


@dataclass(frozen=True)
class Activation:
    activated: bool
    at: str | None
    pending: tuple[str, ...]


def build(site: Site) -> Activation:
    cfg = site.cfg
    site.export("activated", cfg.activated)
    if not site.is_dr:
        return Activation(False, None, ())
    if not cfg.activated:
        site.export("activation", {"activated": False, "pending": list(PENDING)})
        return Activation(False, None, PENDING)
    if cfg.activated_at is None:
        pulumi.log.warn(
            f"activatedAt is not set: the activation time exported is this run's; record it once with "
            f"`pulumi config set activatedAt <time> -s {site.stack}` (python -m infra.activate does)"
        )
    at = (cfg.activated_at or datetime.now(UTC).replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    site.export("activatedAt", at)
    site.export("activation", {"activated": True, "replicationStopped": True, "pending": list(PENDING)})
    return Activation(True, at, PENDING)
