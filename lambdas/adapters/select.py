"""Which object store a run talks to, from the environment: S3 (default) or Azure Blob Storage.

    BACKUP_STORE                      s3 | azure (default s3)
    AZURE_STORAGE_CONNECTION_STRING   local / Azurite (secret: never logged)        } exactly one,
    AZURE_STORAGE_ACCOUNT_URL         https://<account>.blob.core.windows.net       } when azure

With an account URL the credential is DefaultAzureCredential: the managed identity of the
Container Apps job (AZURE_CLIENT_ID selects a user-assigned identity). The request's
`bucket` (and `ledger_bucket`, `export_bucket`) name containers.
Bad settings raise InvalidRequest naming the variable and the fix, before any I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlparse

from lambdas.core.errors import InvalidRequest

STORE_ENV = "BACKUP_STORE"
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL_ENV = "AZURE_STORAGE_ACCOUNT_URL"
STORES = ("s3", "azure")
# Azure container names: 3-63 of lowercase letters, digits and single hyphens.
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def store_kind(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    kind = (environ.get(STORE_ENV) or "s3").strip().lower()
    if kind not in STORES:
        raise InvalidRequest([{"field": STORE_ENV, "problem": f"unknown store {environ.get(STORE_ENV)!r}",
                               "fix": "set BACKUP_STORE to s3 (default) or azure"}], "store configuration")
    return kind


def open_store(bucket: str, environ: Mapping[str, str] | None = None):
    """The ObjectStore for `bucket` (an S3 bucket, or an Azure container) as the environment says."""
    environ = os.environ if environ is None else environ
    if store_kind(environ) == "s3":
        from lambdas.adapters.s3 import S3Store

        return S3Store(bucket)
    return open_azure(bucket, environ)


def open_azure(container: str, environ: Mapping[str, str]):
    problems = []
    if not _CONTAINER.match(container or ""):
        problems.append({"field": "bucket", "problem": f"{container!r} is not a valid Azure container name",
                         "fix": "on Azure the bucket fields name containers: 3-63 lowercase letters, digits and "
                                "single hyphens (no dots)"})
    conn, url = environ.get(CONNECTION_STRING_ENV, "").strip(), environ.get(ACCOUNT_URL_ENV, "").strip()
    if conn and url:
        problems.append({"field": f"{CONNECTION_STRING_ENV} / {ACCOUNT_URL_ENV}", "problem": "both are set",
                         "fix": "set one: the account URL in Azure (managed identity), the connection string "
                                "locally"})
    elif not conn and not url:
        problems.append({"field": f"{CONNECTION_STRING_ENV} / {ACCOUNT_URL_ENV}",
                         "problem": "is required when BACKUP_STORE=azure",
                         "fix": f"set {ACCOUNT_URL_ENV}=https://<account>.blob.core.windows.net (managed identity) "
                                f"or {CONNECTION_STRING_ENV} (local, Azurite)"})
    elif url:
        parsed = urlparse(url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            problems.append({"field": ACCOUNT_URL_ENV, "problem": f"{url!r} is not an account URL",
                             "fix": "use https://<account>.blob.core.windows.net"})
        elif parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            problems.append({"field": ACCOUNT_URL_ENV, "problem": "plain http outside loopback",
                             "fix": "use https:// (bearer tokens must not travel in clear)"})
    if problems:
        raise InvalidRequest(problems, "store configuration")

    from lambdas.adapters.azure_blob import AzureBlobStore

    if conn:
        try:
            return AzureBlobStore.from_connection_string(container, conn)
        except ValueError as exc:  # the SDK's parse error; never echo the string itself (it holds the key)
            raise InvalidRequest([{"field": CONNECTION_STRING_ENV,
                                   "problem": f"not a usable connection string ({str(exc).splitlines()[0][:120]})",
                                   "fix": "use DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;"
                                          "EndpointSuffix=core.windows.net (or BlobEndpoint=... for Azurite)"}],
                                 "store configuration") from None
    return AzureBlobStore.from_account_url(container, url)
