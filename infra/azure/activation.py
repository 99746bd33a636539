"""DR activation on Azure: `pulumi config set activated true -s dr-azure && pulumi up -s dr-azure`.

What it changes (infra/activation.py's diff shows it offline, `python -m infra.activate --stack
dr-azure --dry-run` prints it), each in the concern that owns it:
- the PostgreSQL read replica is promoted in place (infra/azure/data.py: the component's
  `promote`, Forced: it does not wait for the lost primary) and the DR backup vault starts
  protecting it (a new backup instance);
- the API on the DR AKS cluster goes to production scale (the HPA's bounds, infra/azure/app.py);
- Traffic Manager's primary endpoint is disabled (infra/azure/failover.py);
- the backup jobs switch from manual trigger to their schedules (infra/azure/functions.py);
- the DR site's destination halves of object replication are removed, so that its files and
  backups containers take writes (Azure refuses writes to a destination container with 409).

Nothing stateful is replaced or deleted (tests/infra/azure/test_activation.py). The second
step, `activationComplete: true`, gives the promoted server zone-redundant HA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pulumi

from infra.site import Site

DONE = (
    "promoted the PostgreSQL read replica (Forced) and protect it in the DR backup vault",
    "scaled the DR API on AKS to production size",
    "disabled the primary endpoint in Traffic Manager",
    "switched the backup jobs to their schedules",
    "removed the destination halves of object replication",
)
# What a second `pulumi up` with `activationComplete: true` still does.
PENDING = ("zone-redundant HA for the promoted server (pulumi config set activationComplete true)",)


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
        site.export("activation", {"activated": False, "onActivation": list(DONE)})
        return Activation(False, None, ())
    if cfg.activated_at is None:
        pulumi.log.warn(
            f"activatedAt is not set: the activation time exported is this run's; record it once with "
            f"`pulumi config set activatedAt <time> -s {site.stack}` (python -m infra.activate does)"
        )
    at = (cfg.activated_at or datetime.now(UTC).replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    pending = () if cfg.activation_complete else PENDING
    site.export("activatedAt", at)
    site.export("activation", {"activated": True, "replicationStopped": True, "done": list(DONE),
                               "pending": list(pending)})
    return Activation(True, at, pending)
