"""What the site stacks and the vault stack agree on before either exists.

The vault stack is deployed first (it needs only account ids), so its key and bucket policies
name the sites' replication roles before those roles exist: by a name derived from the site's
stack, which the site gives its role. KMS and S3 refuse a policy whose principal does not exist,
so the policies take the sites' account as principal and these ARNs as a condition
(aws:PrincipalArn), which may name a role that is still to come.
"""

from __future__ import annotations

# IAM role names: at most 64 characters.
_ROLE_NAME_MAX = 64
REPLICATED_BASE = "pg-backups"  # the backup functions' bucket (infra/aws/functions.py) replicates there


def replication_role_name(stack: str, base: str = REPLICATED_BASE) -> str:
    name = f"postoucancer-{stack}-{base}-replication"
    if len(name) > _ROLE_NAME_MAX:
        raise ValueError(f"replication role name {name!r} is longer than {_ROLE_NAME_MAX} characters")
    return name


def replication_role_arn(account: str, stack: str, base: str = REPLICATED_BASE) -> str:
    return f"arn:aws:iam::{account}:role/{replication_role_name(stack, base)}"
