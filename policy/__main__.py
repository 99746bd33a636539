"""Entry point of the policy pack: the Pulumi CLI runs this file (`pulumi preview
--policy-pack policy`). Constructing `PolicyPack` starts the analyzer's gRPC server and
blocks, so nothing else may construct it; tests and `infra.policy_check` import
`policy.rules.POLICIES` instead."""

import sys
from pathlib import Path

# The CLI runs this file with policy/ on sys.path; the rules import the plan from drplan/.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.rules import POLICIES  # noqa: E402

PolicyPack(
    name="postoucancer-dr",
    description="Backup and DR guard rails of the Post Ou Cancer platform (rules in policy/rules).",
    enforcement_level=EnforcementLevel.ADVISORY,  # each policy sets its own level; see its description
    policies=POLICIES,
)
