"""Physical names of resources whose names are global on Azure (storage accounts, key vaults):
deterministic per subscription and stack, so that ids are predictable and the peer site can be
told them, and short enough for Azure's limits."""

from __future__ import annotations

import hashlib
import re


def _suffix(*parts: str, length: int) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def storage_account_name(subscription_id: str, stack: str, purpose: str) -> str:
    """3-24 lowercase letters and digits, globally unique (Azure storage account naming rules)."""
    stem = re.sub(r"[^a-z0-9]", "", f"poc{purpose}".lower())[:14]
    name = stem + _suffix(subscription_id, stack, purpose, length=24 - len(stem))
    if not re.fullmatch(r"[a-z0-9]{3,24}", name):  # pragma: no cover - guarded by construction
        raise ValueError(f"{name!r} is not a valid storage account name")
    return name


def key_vault_name(subscription_id: str, stack: str) -> str:
    """3-24 letters, digits and hyphens, starting with a letter, globally unique (Key Vault rules)."""
    stem = re.sub(r"[^a-z0-9-]", "", f"poc-{stack}".lower())[:15].rstrip("-")
    return f"{stem}-{_suffix(subscription_id, stack, 'vault', length=23 - len(stem))}"


def traffic_manager_name(subscription_id: str, stack: str) -> str:
    """`<name>.trafficmanager.net`: 1-63 letters, digits and hyphens, globally unique."""
    return f"postoucancer-{_suffix(subscription_id, stack, 'traffic-manager', length=10)}"


def registry_name(subscription_id: str, stack: str) -> str:
    """A container registry: 5-50 letters and digits, globally unique (`<name>.azurecr.io`)."""
    stem = re.sub(r"[^a-z0-9]", "", f"poc{stack}".lower())[:20]
    return stem + _suffix(subscription_id, stack, "registry", length=12)
