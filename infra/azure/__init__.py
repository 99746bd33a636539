"""The Azure realisation of a site, composed from typed parts (as infra/aws/__init__.py).

Each concern's `build` takes what it needs and returns what it made; the calls below are the
whole dependency graph of a site. Composed so far: the foundation (provider, resource group,
network), keys and secrets, user files, the backup store, activation. The database, cache,
failover, functions and monitoring concerns plug in here with their own typed results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.site import Site

if TYPE_CHECKING:  # the concern modules load the Azure SDK: only when a site is built
    from infra.azure.activation import Activation
    from infra.azure.backups import BackupStore
    from infra.azure.credentials import Credentials
    from infra.azure.files import Files
    from infra.azure.foundation import Foundation
    from infra.azure.keys import Keys


@dataclass(frozen=True)
class AzureSite:
    foundation: Foundation
    keys: Keys
    credentials: Credentials
    files: Files
    backups: BackupStore
    activation: Activation


def build(site: Site) -> AzureSite:
    from infra.azure import activation, backups, credentials, files, foundation, keys

    base = foundation.build(site)
    vault = keys.build(site, base)
    creds = credentials.build(site, base, vault)
    user_files = files.build(site, base, vault)
    store = backups.build(site, base, vault)
    state = activation.build(site)
    return AzureSite(base, vault, creds, user_files, store, state)
