"""The Pulumi SDK internals this project cannot do without, in one place.

Everything else uses the SDKs' public API. Each function here names the internal it
relies on; tests/infra/test_sdk_adapter.py checks each one against the installed SDK and
fails with that name when an upgrade moves or changes it.

- `sync_await`: pulumi.runtime.sync_await._sync_await. Whether the peer stack has an
  output must be known while the program is being built (it decides what to register);
  the SDK's own synchronous invokes wait the same way, and there is no public equivalent.
- `config_values`: pulumi.runtime.config.CONFIG. Validation needs every key that is set
  (a misspelt key must be reported), and pulumi.Config only answers for a key it is asked
  about. The CLI hands config over in the PULUMI_CONFIG bag (public: get_config_env) or
  through set_all_config (the mock runtime, the policy server): the latter lands in CONFIG.
- `not_applicable_error`: pulumi_policy's `_NotApplicableError`, which a policy raises
  through the public `args.not_applicable()`. The class itself is private, so it is taken
  from what that public call raises rather than imported by name.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class SdkDrift(RuntimeError):
    """An SDK internal this project relies on has changed: see infra/sdk.py."""


def sync_await(awaitable: Awaitable[T]) -> T:
    """Run `awaitable` to completion from synchronous program code (pumps the event loop)."""
    try:
        from pulumi.runtime.sync_await import _sync_await
    except ImportError as e:  # pragma: no cover - only on an SDK upgrade
        raise SdkDrift(f"pulumi.runtime.sync_await._sync_await is gone ({e}): update infra/sdk.sync_await") from e
    return _sync_await(awaitable)


def config_values() -> dict[str, Any]:
    """Every config value of the current run, keyed `<namespace>:<key>` (strings, as the CLI gives them)."""
    from pulumi.runtime import get_config_env

    try:
        from pulumi.runtime.config import CONFIG
    except ImportError as e:  # pragma: no cover - only on an SDK upgrade
        raise SdkDrift(f"pulumi.runtime.config.CONFIG is gone ({e}): update infra/sdk.config_values") from e
    return {**get_config_env(), **CONFIG.get()}


@cache
def not_applicable_error() -> type[Exception]:
    """The exception class `args.not_applicable()` raises in a pulumi_policy rule."""
    from pulumi_policy import StackValidationArgs

    try:
        StackValidationArgs([], {}).not_applicable("probe")
    except Exception as e:  # whatever it raises is what the runner must recognise
        return type(e)
    raise SdkDrift(
        "pulumi_policy StackValidationArgs.not_applicable() no longer raises (it raised _NotApplicableError): "
        "update infra/sdk.not_applicable_error and infra/policy_check.evaluate"
    )
