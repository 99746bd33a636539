"""A tiny program runner for the Azure data components under Pulumi's mock runtime.

It answers registrations the way ARM does what the components read back: an ARM resource id
(`/subscriptions/<sub>/resourceGroups/<rg>/providers/<type>/<name>`), and a principal id for a
system-assigned identity. Resource options (parent, protect, replace_on_changes, dependencies)
are recorded from the registration requests, like infra/mockrun.py does for whole stacks.
One program per test module, a handful of components each: the suite stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-data"


def arm_id(kind: str, name: str) -> str:
    return f"{RG_ID}/providers/{kind}/{name}"


@dataclass
class Res:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    protect: bool
    replace_on_changes: list[str]
    dependencies: list[str]
    id: str = ""


@dataclass
class Run:
    resources: list[Res] = field(default_factory=list)

    def of_type(self, token: str) -> list[Res]:
        return [r for r in self.resources if r.type == token]

    def one(self, token: str, name: str) -> Res:
        found = [r for r in self.of_type(token) if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {token} {name}, found {[r.name for r in self.of_type(token)]}")
        return found[0]

    def by_urn(self, urn: str) -> Res:
        return next(r for r in self.resources if r.urn == urn)


def _plain(value: Any) -> Any:
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# Maps whose keys are data, not property names.
_DATA_MAPS = {"tags", "userAssignedIdentities"}


def untranslated_keys(value: Any, path: str = "") -> list[str]:
    """Keys still in the SDK's snake_case: an input the SDK did not translate to the engine's
    names (a dict passed where a union type expects its Args class) reaches ARM misspelled."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else k
            if "_" in k and not k.startswith("__"):
                found.append(where)
            if k not in _DATA_MAPS:
                found += untranslated_keys(v, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += untranslated_keys(v, f"{path}[{i}]")
    return found


def run(program: Callable[[], None]) -> Run:
    """Run `program` under mocks; exceptions it raises propagate (the constraint tests)."""
    import pulumi
    from pulumi.runtime import mocks as pm
    from pulumi.runtime import rpc
    from pulumi.runtime import stack as rt_stack

    out = Run()

    class Mocks(pm.Mocks):
        def new_resource(self, args):
            state = dict(args.inputs)
            kind = args.typ.split(":")[1].replace("/", ".") if ":" in args.typ else args.typ
            name = state.get("name") or args.name
            rid = arm_id(f"Microsoft.{kind}", str(name))
            state.setdefault("name", name)
            identity = state.get("identity")
            if isinstance(identity, dict):
                identity = dict(identity)
                # The SDKs take user-assigned identities as a list of ids; ARM answers a map.
                if isinstance(identity.get("userAssignedIdentities"), list):
                    identity["userAssignedIdentities"] = {i: {} for i in identity["userAssignedIdentities"]}
                if "SystemAssigned" in str(identity.get("type", "")):
                    digest = hashlib.sha256(rid.encode()).hexdigest()
                    identity["principalId"] = f"{digest[:8]}-{digest[8:12]}-4000-8000-{digest[:12]}"
                state["identity"] = identity
            return rid, state

        def call(self, args):
            return {}

    class Monitor(pm.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                out.resources.append(
                    Res(
                        type=request.type,
                        name=request.name,
                        urn=response.urn,
                        inputs=_plain(rpc.deserialize_properties(request.object)),
                        parent=request.parent,
                        protect=bool(request.protect),
                        replace_on_changes=list(request.replaceOnChanges),
                        dependencies=list(request.dependencies),
                        id=response.id,
                    )
                )
            return response

    def _run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            mocks = Mocks()
            pulumi.runtime.set_mocks(mocks, project="postoucancer-dr", stack="components", preview=False,
                                     monitor=Monitor(mocks))
            program()
            loop.run_until_complete(rt_stack.wait_for_rpcs())
        except BaseException:
            # Let registrations in flight finish, so that the next program starts clean.
            with contextlib.suppress(Exception):
                loop.run_until_complete(rt_stack.wait_for_rpcs())
            raise
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    contextvars.copy_context().run(_run)
    for r in out.resources:
        bad = untranslated_keys(r.inputs) if r.type.startswith("azure-native:") else []
        if bad:
            raise AssertionError(f"{r.type} {r.name}: inputs not in the engine's names: {bad}")
    return out


def children(run_: Run, parent: Res) -> list[Res]:
    return [r for r in run_.resources if r.parent == parent.urn]
