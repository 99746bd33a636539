"""The rules of the project's policy pack, importable without starting a policy server.

`policy/__main__.py` hands `POLICIES` to `PolicyPack(...)` (which serves them to the Pulumi
engine and blocks); `infra/policy_check.py` evaluates the very same objects offline over the
resources that the program registers under Pulumi's mock runtime.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from . import access, azure_data, azure_keyvault, azure_storage, backup, functions, hardening, keys, rds, s3, vault

POLICIES: list[Policy] = [
    *s3.POLICIES,
    *backup.POLICIES,
    *rds.POLICIES,
    *keys.POLICIES,
    *access.POLICIES,
    *functions.POLICIES,
    *hardening.POLICIES,
    *azure_data.POLICIES,
    *azure_storage.POLICIES,
    *azure_keyvault.POLICIES,
    *vault.POLICIES,
]

BY_NAME: dict[str, Policy] = {p.name: p for p in POLICIES}
MANDATORY = frozenset(p.name for p in POLICIES if p.enforcement_level is EnforcementLevel.MANDATORY)

__all__ = ["BY_NAME", "MANDATORY", "POLICIES"]
