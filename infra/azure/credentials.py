"""The database credentials, available in the DR region without the primary.

The primary site generates the administrator password (pulumi-random: generated once, kept
in the state as a secret, never in a stack file) and stores the credentials in its own Key
Vault; it exports them as a *secret* stack output. The DR site reads that output through its
StackReference and stores the same credentials in its own Key Vault, in its own region: when
the primary region is gone, the promoted replica's credentials are in the DR vault, owned by
the DR stack. Until the primary has run (first bootstrap pass) the DR vault has none yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_azure_native import keyvault

from infra.azure.foundation import Foundation
from infra.azure.keys import Keys
from infra.site import Site

SECRET_NAME = "database-credentials"  # noqa: S105 - the name of a Key Vault secret, not a value
# Long and alphanumeric: valid as a PostgreSQL Flexible Server administrator password (8-128
# characters from three of upper, lower, digits, symbols) without quoting trouble anywhere.
PASSWORD_LENGTH = 48
ADMIN_LOGIN = "postoucancer_admin"


@dataclass(frozen=True)
class Credentials:
    secret: keyvault.Secret | None  # None on the DR site before the primary's first run
    username: str
    password: pulumi.Output[str] | None


def build(site: Site, base: Foundation, keys: Keys) -> Credentials:
    if site.is_primary:
        password = random.RandomPassword(
            site.name("database-password"),
            length=PASSWORD_LENGTH,
            special=False,
            min_upper=4,
            min_lower=4,
            min_numeric=4,
            opts=pulumi.ResourceOptions(parent=keys.vault),
        ).result
        document = pulumi.Output.secret(password).apply(
            lambda p: json.dumps({"username": ADMIN_LOGIN, "password": p, "engine": "postgres", "port": 5432})
        )
        site.export("databaseCredentials", pulumi.Output.secret(document))
    else:
        document = site.peer.get("databaseCredentials")
        password = document.apply(lambda d: json.loads(d)["password"]) if document is not None else None
    if document is None:
        site.export("databaseSecret", None)
        return Credentials(None, ADMIN_LOGIN, None)
    secret = keys.vault.secret(SECRET_NAME, document, readers=[], content_type="application/json")
    site.export("databaseSecret", {"vaultUri": keys.vault.uri, "name": SECRET_NAME})
    return Credentials(secret, ADMIN_LOGIN, pulumi.Output.secret(password))
