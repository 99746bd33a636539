"""Run the real stack program offline under Pulumi's mock runtime and record everything.

Used by the offline plan (`python -m infra.plan`), the tests and the offline policy
runner. Each run happens in its own `contextvars` context, so several stacks run in one
process; resource options (protect, parent, provider, dependencies) are captured from the
registration requests, which `Mocks.new_resource` does not see.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import gc
import hashlib
import json
import os
import pickle
import re
import runpy
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "infra" / "__main__.py"  # what the CLI runs (Pulumi.yaml: main: infra/)
ACCOUNT = "123456789012"


@dataclass
class Recorded:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    provider: str = ""
    custom: bool = True
    id: str = ""  # the (mock) provider id, as other resources reference it
    # Input paths ("password", "spec.env[0].value") registered as Pulumi secrets.
    secret_inputs: list[str] = field(default_factory=list)

    @property
    def region(self) -> str | None:
        return self.inputs.get("region") or self.outputs.get("region")

    @property
    def parent_type(self) -> str:
        return self.parent.split("::")[2].split("$")[-1] if self.parent else ""


@dataclass
class StackRun:
    stack: str
    config: dict[str, str]
    resources: list[Recorded]
    outputs: dict[str, Any]
    logs: list[tuple[str, str]]
    secret_outputs: list[str] = field(default_factory=list)  # stack outputs exported as secrets

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Recorded:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_} named *{name_contains}*, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Recorded | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def children_of(self, parent: Recorded) -> list[Recorded]:
        return [r for r in self.resources if r.parent == parent.urn]

    @property
    def types(self) -> set[str]:
        return {r.type for r in self.resources}


def stack_config_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def load_stack_config(stack: str) -> dict[str, Any]:
    """The `config:` map of Pulumi.<stack>.yaml (secure values become placeholders)."""
    path = stack_config_file(stack)
    if not path.exists():
        raise FileNotFoundError(
            f"no stack file {path.name}: known stacks are "
            f"{', '.join(sorted(p.stem.split('.', 1)[1] for p in ROOT.glob('Pulumi.*.yaml')))}"
        )
    stat = path.stat()
    # A copy: callers edit what they get (overrides), the parsed file stays as read.
    return copy.deepcopy(_parse_stack_file(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _parse_stack_file(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    # Parsed once per process and file version: the plan and the tests read each stack
    # file many times. (mtime, size) in the key: an edited file is read again.
    data = yaml.safe_load(path.read_text()) or {}
    return dict(data.get("config") or {})


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _fake_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]


def _fake_uuid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


OFFLINE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# azure-native resource types → (ARM path below the resource group, with {input} placeholders;
# the input holding the resource's own name). Types not listed get Microsoft.<Module>/<type>s/<name>.
_AZURE_PATHS: dict[str, tuple[str, str]] = {
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts/{name}", "accountName"),
    "azure-native:storage:BlobServiceProperties": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/{name}", "blobServicesName"),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/{name}", "containerName"),
    "azure-native:storage:ManagementPolicy": (
        "Microsoft.Storage/storageAccounts/{accountName}/managementPolicies/{name}", "managementPolicyName"),
    "azure-native:storage:EncryptionScope": (
        "Microsoft.Storage/storageAccounts/{accountName}/encryptionScopes/{name}", "encryptionScopeName"),
    "azure-native:storage:ObjectReplicationPolicy": (
        "Microsoft.Storage/storageAccounts/{accountName}/objectReplicationPolicies/{name}",
        "objectReplicationPolicyId"),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults/{name}", "vaultName"),
    "azure-native:keyvault:Key": ("Microsoft.KeyVault/vaults/{vaultName}/keys/{name}", "keyName"),
    "azure-native:keyvault:Secret": ("Microsoft.KeyVault/vaults/{vaultName}/secrets/{name}", "secretName"),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/{name}", "resourceName"),
    "azure-native:network:VirtualNetwork": ("Microsoft.Network/virtualNetworks/{name}", "virtualNetworkName"),
    "azure-native:network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints/{name}", "privateEndpointName"),
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{name}",
        "privateDnsZoneGroupName"),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones/{name}", "privateZoneName"),
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{name}", "virtualNetworkLinkName"),
    "azure-native:dbforpostgresql:Server": ("Microsoft.DBforPostgreSQL/flexibleServers/{name}", "serverName"),
    "azure-native:dbforpostgresql:Configuration": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/configurations/{name}", "configurationName"),
    "azure-native:dataprotection:BackupVault": ("Microsoft.DataProtection/backupVaults/{name}", "vaultName"),
    "azure-native:dataprotection:BackupPolicy": (
        "Microsoft.DataProtection/backupVaults/{vaultName}/backupPolicies/{name}", "backupPolicyName"),
    "azure-native:dataprotection:BackupInstance": (
        "Microsoft.DataProtection/backupVaults/{vaultName}/backupInstances/{name}", "backupInstanceName"),
    "azure-native:redis:Redis": ("Microsoft.Cache/redis/{name}", "name"),
    "azure-native:trafficmanager:Profile": ("Microsoft.Network/trafficManagerProfiles/{name}", "profileName"),
    "azure-native:trafficmanager:Endpoint": (
        "Microsoft.Network/trafficManagerProfiles/{profileName}/ExternalEndpoints/{name}", "endpointName"),
    "azure-native:app:ManagedEnvironment": ("Microsoft.App/managedEnvironments/{name}", "environmentName"),
    "azure-native:app:Job": ("Microsoft.App/jobs/{name}", "jobName"),
    "azure-native:containerregistry:Registry": ("Microsoft.ContainerRegistry/registries/{name}", "registryName"),
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces/{name}", "workspaceName"),
    "azure-native:monitor:ActionGroup": ("Microsoft.Insights/actionGroups/{name}", "actionGroupName"),
    "azure-native:monitor:MetricAlert": ("Microsoft.Insights/metricAlerts/{name}", "ruleName"),
    "azure-native:monitor:ScheduledQueryRule": ("Microsoft.Insights/scheduledQueryRules/{name}", "ruleName"),
}

# Extension resources: their id is the target resource's id + /providers/<type>/<name>.
_AZURE_EXTENSIONS: dict[str, tuple[str, str]] = {
    "azure-native:monitor:DiagnosticSetting": ("resourceUri", "Microsoft.Insights/diagnosticSettings"),
}


def _azure_name(logical: str, rid: str, typ: str) -> str:
    """What azure-native's autonaming would give: the logical name plus a random suffix (letters
    and digits only where Azure allows no more)."""
    if typ == "azure-native:storage:StorageAccount":
        return (re.sub(r"[^a-z0-9]", "", logical.lower()) + rid)[:24]
    return f"{logical}{rid[:8]}"


def _azure_resource(typ: str, logical: str, state: dict[str, Any], rid: str, subscription: str) -> tuple[str, dict]:
    """A realistic ARM id, name and the computed outputs other resources read."""
    _, module, kind = typ.split(":")
    if typ == "azure-native:resources:ResourceGroup":
        name = state.get("resourceGroupName") or _azure_name(logical, rid, typ)
        rid_path = f"/subscriptions/{subscription}/resourceGroups/{name}"
        state.update(name=name, id=rid_path)
        return rid_path, state
    if typ in _AZURE_EXTENSIONS:
        target_key, kind_path = _AZURE_EXTENSIONS[typ]
        name = state.get("name") or _azure_name(logical, rid, typ)
        rid_path = f"{state.get(target_key)}/providers/{kind_path}/{name}"
        state.update(name=name, id=rid_path)
        return rid_path, state
    if typ == "azure-native:authorization:RoleDefinition":
        name = state.get("roleDefinitionId") or _fake_uuid(subscription, logical)
        rid_path = f"{state.get('scope')}/providers/Microsoft.Authorization/roleDefinitions/{name}"
        state.update(name=name, id=rid_path)
        return rid_path, state
    if typ == "azure-native:monitor:SubscriptionDiagnosticSetting":
        name = state.get("name") or _azure_name(logical, rid, typ)
        rid_path = f"/subscriptions/{subscription}/providers/Microsoft.Insights/diagnosticSettings/{name}"
        state.update(name=name, id=rid_path)
        return rid_path, state
    if typ == "azure-native:authorization:RoleAssignment":
        name = state.get("roleAssignmentName") or _fake_uuid(subscription, logical)
        rid_path = f"{state.get('scope')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        state.update(name=name, id=rid_path)
        return rid_path, state
    fallback = f"Microsoft.{module.capitalize()}/{kind[:1].lower()}{kind[1:]}s/{{name}}"
    path, name_key = _AZURE_PATHS.get(typ, (fallback, ""))
    name = state.get(name_key) if name_key else None
    if typ == "azure-native:storage:ObjectReplicationPolicy" and name in (None, "default"):
        # The destination half: Azure assigns the policy id and a rule id per rule.
        name = _fake_uuid(subscription, logical, "policy")
        state["rules"] = [
            {**rule, "ruleId": rule.get("ruleId") or _fake_uuid(subscription, logical, str(i))}
            for i, rule in enumerate(state.get("rules") or [])
        ]
    name = name or _azure_name(logical, rid, typ)
    identity = state.get("identity")
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
        # Given as a list of identity ids; Azure answers with a map id -> principal and client ids.
        state["identity"] = {
            **identity,
            "userAssignedIdentities": {
                i: {"principalId": _fake_uuid(i, "principal"), "clientId": _fake_uuid(i, "client")}
                for i in identity["userAssignedIdentities"]
            },
        }
    values = {k: v for k, v in state.items() if isinstance(v, str)}
    rid_path = (
        f"/subscriptions/{subscription}/resourceGroups/{state.get('resourceGroupName')}/providers/"
        + path.format_map({**values, "name": name})
    )
    state.update(name=name, id=rid_path)
    if typ == "azure-native:storage:ObjectReplicationPolicy":
        state["policyId"] = name
    elif typ == "azure-native:storage:StorageAccount":
        state["primaryEndpoints"] = {
            "blob": f"https://{name}.blob.core.windows.net/",
            "dfs": f"https://{name}.dfs.core.windows.net/",
        }
    elif typ == "azure-native:keyvault:Vault":
        state["properties"] = {**(state.get("properties") or {}), "vaultUri": f"https://{name}.vault.azure.net/"}
    elif typ == "azure-native:keyvault:Key":
        uri = f"https://{state.get('vaultName')}.vault.azure.net/keys/{name}"
        state.update(keyUri=uri, keyUriWithVersion=f"{uri}/{hashlib.sha256(rid.encode()).hexdigest()[:32]}")
    elif typ == "azure-native:keyvault:Secret":
        # Azure never returns a secret's value: the outputs carry its URI instead.
        state["properties"] = {
            "contentType": _unwrapped(state.get("properties")).get("contentType"),
            "secretUri": f"https://{state.get('vaultName')}.vault.azure.net/secrets/{name}",
        }
    elif typ == "azure-native:managedidentity:UserAssignedIdentity":
        state.update(
            principalId=_fake_uuid(subscription, logical, "principal"),
            clientId=_fake_uuid(subscription, logical, "client"),
            tenantId=OFFLINE_SUBSCRIPTION,
        )
    elif typ == "azure-native:network:VirtualNetwork":
        state["subnets"] = [{**s, "id": f"{rid_path}/subnets/{s.get('name')}"} for s in state.get("subnets") or []]
    elif typ == "azure-native:dbforpostgresql:Server":
        state["fullyQualifiedDomainName"] = f"{name}.postgres.database.azure.com"
    elif typ == "azure-native:redis:Redis":
        state.update(hostName=f"{name}.redis.cache.windows.net", sslPort=6380)
    elif typ == "azure-native:containerregistry:Registry":
        state["loginServer"] = f"{name}.azurecr.io"
    elif typ == "azure-native:trafficmanager:Profile":
        dns = state.get("dnsConfig") or {}
        state["dnsConfig"] = {**dns, "fqdn": f"{dns.get('relativeName')}.trafficmanager.net"}
    elif typ == "azure-native:operationalinsights:Workspace":
        state["customerId"] = _fake_uuid(subscription, logical, "workspace")
    if isinstance(state.get("identity"), dict) and "SystemAssigned" in str(state["identity"].get("type")):
        # A system-assigned identity: Azure answers with its principal (role assignments name it).
        state["identity"] = {**state["identity"], "principalId": _fake_uuid(rid_path, "system-principal"),
                             "tenantId": OFFLINE_SUBSCRIPTION}
    return rid_path, state


class _Mocks:
    """Answers registrations with inputs plus plausible computed attributes (ARNs, ids)."""

    def __init__(
        self,
        stack: str,
        default_region: str | None,
        peer_outputs: dict[str, Any] | None,
        peer_secrets: Collection[str] = (),
        azure_subscription: str | None = None,
        account: str = ACCOUNT,
        stack_outputs: dict[str, dict[str, Any] | None] | None = None,
    ):
        self.stack = stack
        self.azure = azure_subscription is not None  # an Azure stack (its config names a subscription)
        self.azure_subscription = azure_subscription or OFFLINE_SUBSCRIPTION
        self.default_region = default_region or "eu-west-3"
        self.peer_outputs = peer_outputs
        self.peer_secrets = sorted(peer_secrets)
        self.account = account  # the account the stack's credentials are in (getCallerIdentity, ARNs)
        # Stacks other than the peer, by stack name (the vault account's): what a reference to each answers.
        self.stack_outputs = stack_outputs or {}

    def new_resource(self, args):  # pulumi.runtime.MockResourceArgs
        if args.typ == "pulumi:pulumi:StackReference":
            from pulumi.runtime import rpc

            referenced = str(args.inputs.get("name") or "").rsplit("/", 1)[-1]
            if referenced in self.stack_outputs:
                other = self.stack_outputs[referenced] or {}
                state = {"name": args.inputs.get("name"), "outputs": dict(other), "secretOutputNames": []}
                return f"{args.name}-id", state
            # As the engine reads a stack: secret outputs arrive wrapped and are listed.
            outputs = {
                k: rpc.wrap_rpc_secret(v) if k in self.peer_secrets else v for k, v in (self.peer_outputs or {}).items()
            }
            state = {"name": args.inputs.get("name"), "outputs": outputs, "secretOutputNames": self.peer_secrets}
            return f"{args.name}-id", state
        state = dict(args.inputs)
        region = state.get("region") or self.default_region
        state.setdefault("region", region) if args.typ.startswith("aws:") else None
        rid = _fake_id(self.stack, args.typ, args.name)
        pkg, _, kind = args.typ.partition(":")
        module = kind.split("/", 1)[0]
        if pkg == "azure-native":
            return _azure_resource(args.typ, args.name, state, rid, self.azure_subscription)
        if args.typ == "random:index/randomPassword:RandomPassword":
            # Deterministic, obviously fake, of the asked length; real runs get pulumi-random's.
            length = int(state.get("length") or 32)
            state["result"] = ("offline" + _fake_id(self.stack, args.name) * 11)[:length]
            return f"{args.name}-{rid}", state
        if args.typ == "aws:s3/bucket:Bucket":
            name = state.get("bucket") or f"{args.name}-{rid[:8]}"
            state.update(
                bucket=name,
                arn=f"arn:aws:s3:::{name}",
                bucketDomainName=f"{name}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{name}.s3.{region}.amazonaws.com",
            )
            return name, state
        if args.typ == "aws:kms/key:Key":
            key_id = f"{rid[:8]}-{rid[8:12]}-4000-8000-{rid}"
            state.update(keyId=key_id, arn=f"arn:aws:kms:{region}:{self.account}:key/{key_id}")
            return key_id, state
        if args.typ == "aws:iam/role:Role":
            name = state.get("name") or f"{args.name}-{rid[:7]}"
            state.update(name=name, arn=f"arn:aws:iam::{self.account}:role/{name}", uniqueId=f"AROA{rid.upper()}")
            return name, state
        if args.typ == "kubernetes:networking.k8s.io/v1:Ingress" and self.azure:
            # ingress-nginx on AKS (application routing): the public IP of its load balancer.
            n = int(rid, 16)
            address = f"20.{n % 200 + 10}.{n // 200 % 250}.{n % 250 + 1}"
            state["status"] = {"loadBalancer": {"ingress": [{"ip": address}]}}
            return f"{args.name}-{rid}", state
        if args.typ == "kubernetes:networking.k8s.io/v1:Ingress":
            # The AWS Load Balancer Controller writes the ALB's name into the status.
            lb = f"k8s-{rid[:8]}-{rid[8:12]}-{int(rid, 16) % 10**10}.{self.default_region}.elb.amazonaws.com"
            state["status"] = {"loadBalancer": {"ingress": [{"hostname": lb}]}}
            return f"{args.name}-{rid}", state
        if args.typ == "aws:rds/instance:Instance":
            ident = state.get("identifier") or f"{args.name}-{rid[:7]}"
            address = f"{ident}.c{rid[:10]}.{region}.rds.amazonaws.com"
            port = int(state.get("port") or 5432)
            state.update(
                identifier=ident,
                arn=f"arn:aws:rds:{region}:{self.account}:db:{ident}",
                address=address,
                endpoint=f"{address}:{port}",
                port=port,
                resourceId=f"db-{rid.upper()}",
            )
            return ident, state
        if args.typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            gid = state.get("replicationGroupId") or f"{args.name}-{rid[:7]}"
            state.update(
                arn=f"arn:aws:elasticache:{region}:{self.account}:replicationgroup:{gid}",
                primaryEndpointAddress=f"master.{gid}.{rid[:6]}.{region}.cache.amazonaws.com",
                readerEndpointAddress=f"replica.{gid}.{rid[:6]}.{region}.cache.amazonaws.com",
            )
            return gid, state
        if args.typ == "aws:secretsmanager/secret:Secret":
            name = state.get("name") or f"{args.name}-{rid[:7]}"
            arn = f"arn:aws:secretsmanager:{region}:{self.account}:secret:{name}-{rid[:6]}"
            state.update(name=name, arn=arn)
            return arn, state
        if args.typ == "aws:backup/vault:Vault":
            name = state.get("name") or f"{args.name}-{rid[:7]}"
            state.update(name=name, arn=f"arn:aws:backup:{region}:{self.account}:backup-vault:{name}")
            return name, state
        if args.typ == "aws:ecr/repository:Repository":
            name = state.get("name") or f"{args.name}-{rid[:7]}"
            state.update(
                name=name,
                registryId=self.account,
                repositoryUrl=f"{self.account}.dkr.ecr.{region}.amazonaws.com/{name}",
                arn=f"arn:aws:ecr:{region}:{self.account}:repository/{name}",
            )
            return name, state
        if args.typ == "docker-build:index:Image":
            # What a push reports: the image's digest in the registry, and a tag@digest reference.
            digest = f"sha256:{hashlib.sha256(f'{self.stack}/{args.name}'.encode()).hexdigest()}"
            tags = state.get("tags") or []
            state.update(digest=digest, ref=f"{tags[0]}@{digest}" if tags else digest)
            return f"image-{rid}", state
        if args.typ == "aws:acm/certificate:Certificate":
            domain = state.get("domainName")
            # ACM gives one validation CNAME per domain name and account, whatever the region.
            token = _fake_id(self.account, str(domain))
            state.update(
                arn=f"arn:aws:acm:{region}:{self.account}:certificate/{rid}",
                domainValidationOptions=[
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_{token}.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{token[::-1]}.acm-validations.aws.",
                    }
                ],
            )
            return f"certificate-{rid}", state
        if args.typ == "aws:route53/record:Record":
            state["fqdn"] = state.get("name")
            return f"{state.get('zoneId')}_{state.get('name')}_{state.get('type')}_{state.get('setIdentifier')}", state
        if pkg == "aws":
            name = state.get("name") or f"{args.name}-{rid[:7]}"
            state.setdefault("name", name)
            state.setdefault("arn", f"arn:aws:{module}:{region}:{self.account}:{args.name}/{rid}")
            return f"{module}-{rid}", state
        return f"{args.name}-{rid}", state

    def call(self, args):  # pulumi.runtime.MockCallArgs
        tok = args.token
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:iam::{self.account}:user/offline",
                "userId": "OFFLINE",
                "id": self.account,
            }
        if tok == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            region = args.args.get("region") or self.default_region
            return {"userName": "AWS", "password": "offline-ecr-token", "id": region,
                    "proxyEndpoint": f"https://{self.account}.dkr.ecr.{region}.amazonaws.com"}
        if tok == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if tok == "aws:index/getRegion:getRegion":
            region = args.args.get("region") or self.default_region
            return {"name": region, "region": region, "id": region}
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = args.args.get("region") or self.default_region
            names = [f"{region}{s}" for s in "abc"]
            return {"names": names, "zoneIds": names, "id": region}
        if tok == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            # Deterministic, obviously fake; real runs get Secrets Manager's GetRandomPassword.
            length = int(args.args.get("passwordLength") or 32)
            return {"randomPassword": ("offline" + _fake_id(self.stack, str(length)) * 11)[:length], "id": "pw"}
        return {}


def _make_monitor(mocks: _Mocks, records: list[Recorded]):
    from pulumi.runtime import mocks as pm
    from pulumi.runtime import rpc

    class RecordingMonitor(pm.MockMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                reg = self.resources.get(response.urn)
                inputs = rpc.deserialize_properties(request.object)
                records.append(
                    Recorded(
                        type=request.type,
                        name=request.name,
                        urn=response.urn,
                        inputs=_plain(inputs),
                        secret_inputs=_secret_paths(inputs),
                        outputs=_plain(reg.state) if reg else {},
                        parent=request.parent,
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        delete_before_replace=bool(request.deleteBeforeReplace),
                        ignore_changes=list(request.ignoreChanges),
                        dependencies=list(request.dependencies),
                        provider=request.provider,
                        custom=bool(request.custom),
                        id=response.id,
                    )
                )
            return response

        def ReadResource(self, request):
            response = super().ReadResource(request)
            reg = self.resources.get(response.urn)
            records.append(
                Recorded(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs={},
                    outputs=_plain(reg.state) if reg else {},
                    parent=request.parent,
                )
            )
            return response

    return RecordingMonitor(mocks)


def _unwrapped(value: Any) -> Any:
    from pulumi.runtime import rpc

    while rpc.is_rpc_secret(value):
        value = rpc.unwrap_rpc_secret(value)
    return value if value is not None else {}


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Where the runtime's secret wrappers are, as paths like "spec.env[0].value"."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _plain(value: Any) -> Any:
    """Strip the runtime's secret wrappers so that records are plain data."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _LogCapture:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str) -> None:
        self.entries.append((level, str(msg)))

    def debug(self, msg, *a, **k):
        pass

    def info(self, msg, *a, **k):
        self._add("info", msg)

    def warning(self, msg, *a, **k):
        self._add("warning", msg)

    warn = warning

    def error(self, msg, *a, **k):
        self._add("error", msg)


@contextlib.contextmanager
def _fewer_collections():
    """A run allocates tens of thousands of short-lived SDK objects (Outputs, futures, tasks);
    with the default thresholds the cyclic collector sweeps the growing heap again and again
    and takes about a third of the run (bench/bench_plan.py). Collect far less often during a
    run; the thresholds are restored after it."""
    before = gc.get_threshold()
    gc.set_threshold(RUN_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


# Allocations between two young-generation collections during a run (CPython's default: 700).
RUN_GC_THRESHOLD = 50_000


def exiting(code: int) -> int:
    """A CLI's exit code, after freezing the heap (gc.freeze): for a process about to exit.

    The interpreter's teardown runs full collections over everything still alive, the loaded
    SDKs and every recorded run; frozen objects are skipped. That is about 1.2 s of the pair
    plan's 8 s (bench/bench_plan.py). Frozen objects are never collected, hence only at exit.
    """
    gc.freeze()
    return code


def run_program(
    program: Callable[[], None] | Path,
    stack: str,
    config: dict[str, Any],
    peer_outputs: dict[str, Any] | None = None,
    peer_secrets: Collection[str] = (),
    account: str = ACCOUNT,
    stack_outputs: dict[str, dict[str, Any] | None] | None = None,
) -> StackRun:
    """Run `program` (a callable, or the path of a Pulumi program) as `stack` under mocks.

    config: the config map as in Pulumi.<stack>.yaml (secure values become placeholders);
    peer_outputs: what a StackReference answers (None: the peer has no outputs yet), of
    which `peer_secrets` are secret outputs; account: the account the credentials are in;
    stack_outputs: what references to other stacks (by stack name) answer. The one mock-runtime
    runner: run_stack and the policy tests' synthetic stacks use it.
    """
    secret_keys = [k for k, v in config.items() if _is_secure(v)]
    encoded = {k: ("[secret]" if _is_secure(v) else _encode(v)) for k, v in config.items()}
    records: list[Recorded] = []
    logs = _LogCapture()

    secret_outputs: list[str] = []

    def _run() -> dict[str, Any]:
        import pulumi
        from pulumi.runtime import set_all_config
        from pulumi.runtime import stack as rt_stack

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            mocks = _Mocks(
                stack,
                config.get("aws:region"),
                peer_outputs,
                peer_secrets,
                _subscription_of(config),
                account=account,
                stack_outputs=stack_outputs,
            )
            monitor = _make_monitor(mocks, records)
            set_all_config(encoded, secret_keys)
            pulumi.runtime.set_mocks(
                mocks,
                project="postoucancer-dr",
                stack=stack,
                preview=False,
                monitor=monitor,
                logger=logs,  # type: ignore[arg-type]
                organization="organization",
            )
            with warnings.catch_warnings():
                # The SDKs' own modules warn about their own deprecations; ours must not.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi(_aws|_kubernetes)?\b.*")
                if isinstance(program, Path):
                    runpy.run_path(str(program), run_name="__main__")
                else:
                    program()
                loop.run_until_complete(rt_stack.wait_for_rpcs())
                root = pulumi.runtime.settings.get_root_resource()
                outputs = loop.run_until_complete(_resolve(getattr(root, "outputs", {}) or {}, secret_outputs))
            return outputs
        except BaseException:
            # A program that failed leaves registrations in flight (the root stack's, at
            # least); let them finish so that the next run in this process starts clean.
            with contextlib.suppress(Exception):
                loop.run_until_complete(rt_stack.wait_for_rpcs())
            raise
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    try:
        with _fewer_collections():
            outputs = contextvars.copy_context().run(_run)
    except Exception as e:
        e.recorded = records  # type: ignore[attr-defined]  # what got registered before the failure
        raise
    return StackRun(
        stack=stack,
        config=encoded,
        resources=records,
        outputs=outputs,
        logs=logs.entries,
        secret_outputs=secret_outputs,
    )


def _subscription_of(config: dict[str, Any]) -> str | None:
    """The Azure subscription a stack's config names (postoucancer-dr:azure.subscriptionId)."""
    azure = config.get("postoucancer-dr:azure")
    if isinstance(azure, str):
        try:
            azure = json.loads(azure)
        except json.JSONDecodeError:
            return None
    return azure.get("subscriptionId") if isinstance(azure, dict) else None


def run_stack(
    stack: str,
    config: dict[str, Any] | None = None,
    peer_outputs: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    remove: tuple[str, ...] = (),
    stack_outputs: dict[str, dict[str, Any] | None] | None = None,
) -> StackRun:
    """Run infra/__main__.py for `stack` under mocks.

    config: the stack's config map (default: Pulumi.<stack>.yaml); overrides: keys to set
    on top ("postoucancer-dr:activated": True); remove: keys to drop; peer_outputs: what the
    StackReference to the peer answers (None: the peer has no outputs yet).

    Under mocks a run is a function of its config and the peer's outputs: the same run
    asked for again in this process (the tests ask for the activated dr stack a dozen
    times) is answered from memory, as a copy the caller may change.
    """
    cfg = dict(load_stack_config(stack) if config is None else config)
    cfg.update(overrides or {})
    for key in remove:
        cfg.pop(key, None)
    if stack_outputs is None:
        stack_outputs = _vault_outputs(cfg)
    key = _run_key(stack, cfg, peer_outputs, stack_outputs)
    run = _RUNS.get(key)
    if run is None:
        run = _shared(key, lambda: run_program(
            _stack_program, stack, cfg, peer_outputs, account=_account_of(cfg), stack_outputs=stack_outputs
        ))
        _remember(key, run)
    return copy.deepcopy(run)


# A directory that processes running the same program share their runs through (the test
# workers: tests/conftest.py sets it per session); unset, each process runs its own.
SHARED_RUNS_ENV = "POSTOUCANCER_SHARED_RUNS"


def _shared(key: str, compute: Callable[[], StackRun]) -> StackRun:
    """compute(), or the record another process made of the same run (same program, config and
    outputs read) in the shared directory; one process computes it while the others wait."""
    root = os.environ.get(SHARED_RUNS_ENV)
    if not root:
        return compute()
    import fcntl

    path = Path(root) / f"{hashlib.sha256(key.encode()).hexdigest()}.pickle"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path.exists():
            # Written by a process of this session into its own directory: not untrusted data.
            return pickle.loads(path.read_bytes())  # noqa: S301
        run = compute()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
        return run


def run_many(specs: list[tuple[str, dict[str, Any], dict[str, Any] | None]], workers: int = 1) -> list[StackRun]:
    """`run_stack(stack, config=..., peer_outputs=...)` for each spec, up to `workers` at a time.

    Runs do not share state (each sets up its own mock runtime), so independent ones can run in
    forked copies of this process (fork_map); the parent keeps each record as if it had run it.
    A spec whose child failed is run by the parent itself, so that errors surface as they would
    sequentially.
    """
    todo = [spec for spec in specs if _run_key(*spec) not in _RUNS]
    if workers > 1 and len(todo) > 1:
        results = fork_map(lambda spec: run_stack(spec[0], config=spec[1], peer_outputs=spec[2]), todo, workers)
        for spec, result in zip(todo, results, strict=True):
            if isinstance(result, StackRun):
                _remember(_run_key(*spec), result)
    return [run_stack(stack, config=config, peer_outputs=peer) for stack, config, peer in specs]


def fork_map(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """[fn(item) for item in items], up to `workers` at a time in forked copies of this process
    (which has the SDKs loaded already); a result is the value, or the exception fn raised.

    For the offline plan's independent runs: the mock runtime keeps its state per run, so forked
    runs equal sequential ones (tests/infra/test_failback.py checks it). Without fork (or with
    one worker) the items run here, in order.
    """
    if workers <= 1 or len(items) <= 1 or not hasattr(os, "fork"):
        return [_outcome(fn, item) for item in items]
    results: list[Any] = []
    for start in range(0, len(items), workers):
        children = []
        for item in items[start : start + workers]:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: run, write the pickled outcome, leave without cleanup handlers
                os.close(read)
                try:
                    with os.fdopen(write, "wb") as out:
                        outcome = _outcome(fn, item)
                        try:
                            data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                        except Exception:  # an exception that does not pickle: its message does
                            data = pickle.dumps(RuntimeError(str(outcome)))
                        out.write(data)
                finally:
                    os._exit(0)
            os.close(write)
            children.append((pid, read))
        for pid, read in children:
            with os.fdopen(read, "rb") as pipe:
                data = pipe.read()
            os.waitpid(pid, 0)
            # Written by our own child through a private pipe: not untrusted data.
            results.append(pickle.loads(data) if data else RuntimeError("a forked run died"))  # noqa: S301
    return results


def _outcome(fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return fn(item)
    except Exception as e:
        return e


def _run_key(
    stack: str,
    cfg: dict[str, Any],
    peer_outputs: dict[str, Any] | None,
    stack_outputs: dict[str, dict[str, Any] | None] | None = None,
) -> str:
    # A run is a function of its config, its peer's outputs and the other stacks' (the vault's).
    if stack_outputs is None:
        stack_outputs = _vault_outputs(cfg)
    return json.dumps(
        [stack, cfg, peer_outputs, stack_outputs, os.environ.get("PULUMI_CONFIG")], sort_keys=True, default=str
    )


def _remember(key: str, run: StackRun) -> None:
    _RUNS[key] = run
    while len(_RUNS) > _REMEMBERED_RUNS:
        _RUNS.pop(next(iter(_RUNS)))


def vault_stack_of(config: dict[str, Any]) -> str | None:
    """The vault account's stack a site's config names (vaultStack), by stack name."""
    vault = config.get(f"{_PROJECT}:vaultStack")
    return str(vault).rsplit("/", 1)[-1] if isinstance(vault, str) and vault else None


def _vault_outputs(config: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The vault stack needs nothing of the sites (it deploys first): its outputs are a function of
    its own stack file, so every site run is answered with the real ones."""
    vault = vault_stack_of(config)
    if vault is None or not stack_config_file(vault).exists():
        return {}
    return {vault: run_stack(vault).outputs}


def _account_of(config: dict[str, Any]) -> str:
    """The vault stack runs with the backup-only account's credentials; every other in the sites'."""
    if config.get(f"{_PROJECT}:role") == "vault":
        accounts = config.get(f"{_PROJECT}:accounts")
        if isinstance(accounts, dict) and isinstance(accounts.get("vault"), str):
            return accounts["vault"]
    return ACCOUNT


_PROJECT = "postoucancer-dr"
# Runs kept (oldest dropped first): a copy costs ~1 % of a run.
_REMEMBERED_RUNS = 24
_RUNS: dict[str, StackRun] = {}


def _stack_program() -> None:
    # What infra/__main__.py runs, called directly: no re-reading and re-compiling the
    # entry file per run (runpy), and a shallower stack for the SDK to capture per resource.
    from infra.program import main

    main()


async def _resolve(outputs: dict[str, Any], secret: list[str]) -> dict[str, Any]:
    """The stack outputs as plain data; the keys of secret ones go to `secret`."""
    import pulumi

    resolved = {}
    for key, value in outputs.items():
        output = pulumi.Output.from_input(value)
        resolved[key] = _plain(await output.future())
        if await output.is_secret():
            secret.append(key)
    return resolved


# Site pairs: (primary stack, DR stack).
PAIRS = {"prod": ("prod", "dr"), "staging": ("staging", "staging-dr"), "prod-azure": ("prod-azure", "dr-azure")}


@dataclass
class PairRun:
    primary: StackRun
    dr: StackRun
    bootstrap: list[StackRun]  # every pass of the pair's sites, in the order a real first deployment makes them
    vault: StackRun | None = None  # the backup-only account's stack the pair copies into (deployed first)

    @property
    def deploy_order(self) -> list[StackRun]:
        """Every pass of a first deployment: the vault stack (if any), then the sites' bootstrap."""
        return [self.vault, *self.bootstrap] if self.vault is not None else list(self.bootstrap)


def run_pair(
    primary: str, dr: str, dr_overrides: dict[str, Any] | None = None, primary_overrides: dict[str, Any] | None = None
) -> PairRun:
    """The documented bootstrap order: the vault account's stack, if the primary names one (it
    needs only account ids) → dr (nothing of the primary to read yet) → primary (replicates into
    dr's and the vault's outputs) → dr again (reads the primary's outputs: replica source, DNS
    target).

    A primary that still says `nextStep` after that reads what the DR site's second pass made
    (Azure's object replication: the destination half's ids) in a fourth pass, as documented."""
    vault_name = vault_stack_of({**load_stack_config(primary), **(primary_overrides or {})})
    vault = run_stack(vault_name) if vault_name and stack_config_file(vault_name).exists() else None
    first_dr = run_stack(dr, overrides=dr_overrides)
    prim = run_stack(primary, peer_outputs=first_dr.outputs, overrides=primary_overrides)
    final_dr = run_stack(dr, peer_outputs=prim.outputs, overrides=dr_overrides)
    passes = [first_dr, prim, final_dr]
    if prim.outputs.get("nextStep") and not final_dr.outputs.get("nextStep"):
        prim = run_stack(primary, peer_outputs=final_dr.outputs, overrides=primary_overrides)
        passes.append(prim)
    return PairRun(primary=prim, dr=final_dr, bootstrap=passes, vault=vault)
