"""The Azure realisation of a site, composed from typed parts (as infra/aws/__init__.py).

Each concern's `build` takes what it needs and returns what it made; the calls below are the
whole dependency graph of a site (read top to bottom: nothing is looked up by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.site import Site

if TYPE_CHECKING:  # the concern modules load the Azure SDK: only when a site is built
    from components.azure.traffic_manager import TrafficManager
    from infra.azure.activation import Activation
    from infra.azure.app import App
    from infra.azure.backups import BackupStore
    from infra.azure.cache import Cache
    from infra.azure.credentials import Credentials
    from infra.azure.data import Database
    from infra.azure.files import Files
    from infra.azure.foundation import Foundation
    from infra.azure.functions import Functions
    from infra.azure.keys import Keys
    from infra.azure.monitoring import Monitoring


@dataclass(frozen=True)
class AzureSite:
    foundation: Foundation
    keys: Keys
    credentials: Credentials
    files: Files
    backups: BackupStore
    database: Database
    cache: Cache
    app: App
    failover: TrafficManager | None  # dr-azure only (and once the primary has its appEndpoint)
    monitoring: Monitoring
    functions: Functions
    activation: Activation


def build(site: Site) -> AzureSite:
    from infra.azure import (
        activation,
        app,
        backups,
        cache,
        credentials,
        data,
        failover,
        files,
        foundation,
        functions,
        keys,
        monitoring,
    )

    base = foundation.build(site)
    vault = keys.build(site, base)
    creds = credentials.build(site, base, vault)
    user_files = files.build(site, base, vault)
    store = backups.build(site, base, vault)
    db = data.build(site, base, vault, creds)
    redis = cache.build(site, base, vault)
    api = app.build(site, db, redis, user_files, creds)
    traffic = failover.build(site, base, api)
    mon = monitoring.build(site, base, vault)
    fns = functions.build(site, base, vault, creds, db, store, mon)
    jobs_env = fns.jobs.environment.id if fns.jobs is not None else None
    monitoring.watch(site, mon, vault, db, redis, user_files, store, jobs_env)
    state = activation.build(site)
    return AzureSite(base, vault, creds, user_files, store, db, redis, api, traffic, mon, fns, state)
