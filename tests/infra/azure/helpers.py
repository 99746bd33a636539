"""Small lookups over recorded Azure runs."""

from __future__ import annotations

import re

from infra.mockrun import Recorded, StackRun

ARM_ID = re.compile(r"^/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\.[A-Za-z]+/.+")
ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
LIFECYCLE = "azure-native:storage:ManagementPolicy"
REPLICATION = "azure-native:storage:ObjectReplicationPolicy"
CONTAINER = "azure-native:storage:BlobContainer"
VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
SECRET = "azure-native:keyvault:Secret"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def of_account(run: StackRun, account: Recorded, type_: str) -> list[Recorded]:
    """The resources of `type_` that name `account` (by accountName, as Azure joins them)."""
    return [r for r in run.of_type(type_) if r.inputs.get("accountName") == account.outputs["name"]]


def one_of_account(run: StackRun, account: Recorded, type_: str) -> Recorded:
    found = of_account(run, account, type_)
    assert len(found) == 1, [r.name for r in found]
    return found[0]
