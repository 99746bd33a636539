"""The data components' name for components/azure/roles.py (one home for the role GUIDs and
the assignment helpers; kept so that their call sites read as before)."""

from __future__ import annotations

from .roles import (  # noqa: F401 - re-exported
    POSTGRES_LTR_BACKUP,
    READER,
    ROLE_NAMES,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
)
from .roles import assign as _assign
from .roles import assign_definition as assign  # noqa: F401 - re-exported
from .roles import role_definition_id as subscription_role  # noqa: F401 - re-exported


def assign_builtin(name: str, *, subscription_id: str, principal_id, role: str, scope, parent):
    return _assign(name, subscription_id=subscription_id, principal_id=principal_id, role=role, scope=scope,
                   parent=parent)
