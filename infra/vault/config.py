"""The vault stack's configuration (`role: vault`), validated like a site's (infra/config.py):
a mistake stops the program before anything is registered, with one line naming the key.

    accounts.vault     the backup-only account this stack deploys into (12 digits, quoted)
    accounts.sites     the account of the prod and dr stacks (they share one), the only one copying in
    accounts.recovery  accounts that may take copies out (set at incident time: a clean account)
    regions.primary/dr the sites' regions: one locked vault in each (RDS copies stay in-region),
                       the dump bucket in regions.dr (= aws:region)
    siteStacks         the site stacks whose replication roles may write into the bucket
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pulumi
from pydantic import BeforeValidator, Field

from drplan.names import PROJECT, Cloud, Role
from drplan.retention import Retention, Tier, effective_retention, override_problems
from infra.config import (
    _REGION,
    _STACK_NAME,
    ConfigError,
    RetentionOverrides,
    _Strict,
    check_stack_tag,
    raw_config,
    validate_model,
)

_ACCOUNT = re.compile(r"^\d{12}$")


def _account_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("a 12-digit account id as a quoted string (YAML reads a bare one as a number)")
    if isinstance(value, str) and not _ACCOUNT.match(value):
        raise ValueError(f"a 12-digit AWS account id, not {value!r}")
    return value


AccountId = Annotated[str, BeforeValidator(_account_id)]


class Accounts(_Strict):
    vault: AccountId
    sites: AccountId
    recovery: list[AccountId] = Field(default_factory=list)


class VaultRegions(_Strict):
    primary: str
    dr: str


class VaultConfig(_Strict):
    cloud: Cloud
    role: Role
    tier: Tier
    accounts: Accounts
    regions: VaultRegions
    site_stacks: list[str] = Field(default_factory=lambda: ["prod", "dr"], alias="siteStacks")
    retention: RetentionOverrides = Field(default_factory=RetentionOverrides)

    @property
    def region(self) -> str:
        """Where the dump bucket lives: the DR region (it outlives the primary region)."""
        return self.regions.dr

    @property
    def vault_regions(self) -> list[str]:
        return [self.regions.primary, self.regions.dr]

    @property
    def retention_policy(self) -> Retention:
        return effective_retention(self.tier, self.retention.periods())


def _bad(path: str, value: Any, why: str, fix: str) -> ConfigError:
    return ConfigError(f"config key '{PROJECT}:{path}' = {json.dumps(value)} {why}; fix: {fix}")


def parse(raw: dict[str, Any], aws_region: str | None = None) -> VaultConfig:
    cfg = validate_model(raw, VaultConfig)
    if cfg.role is not Role.VAULT:
        raise _bad(
            "role",
            cfg.role.value,
            "is a site's role: this is the vault stack's configuration",
            "pulumi config set role vault",
        )
    if cfg.cloud is not Cloud.AWS:
        raise _bad("cloud", cfg.cloud.value, "is not realised for the vault account", "pulumi config set cloud aws")
    a = cfg.accounts
    if a.vault == a.sites:
        raise _bad(
            "accounts.vault",
            a.vault,
            "equals accounts.sites: a vault in the production account is inside its blast radius (its admin "
            "can stop the copies, remove the replication and schedule the keys' deletion)",
            "pulumi config set --path accounts.vault <the backup-only account's id>",
        )
    if a.vault in a.recovery:
        raise _bad(
            "accounts.recovery",
            a.recovery,
            "names the vault account itself (copies go out of it)",
            "pulumi config set --path accounts.recovery[0] <a clean recovery account's id>",
        )
    for which in ("primary", "dr"):
        value = getattr(cfg.regions, which)
        if not _REGION.match(value):
            raise _bad(
                f"regions.{which}",
                value,
                "is not an aws region name",
                f"pulumi config set --path regions.{which} eu-west-3",
            )
    if cfg.regions.primary == cfg.regions.dr:
        raise _bad(
            "regions.dr",
            cfg.regions.dr,
            "equals regions.primary (the sites' two regions)",
            "pulumi config set --path regions.dr eu-central-1",
        )
    if aws_region and aws_region != cfg.region:
        raise ConfigError(
            f"config key 'aws:region' = \"{aws_region}\" differs from the vault stack's region regions.dr = "
            f'"{cfg.region}" (the dump bucket lives in the DR region); fix: pulumi config set aws:region {cfg.region}'
        )
    bad_stacks = [s for s in cfg.site_stacks if not _STACK_NAME.match(s)]
    if not cfg.site_stacks or bad_stacks:
        raise _bad(
            "siteStacks",
            cfg.site_stacks,
            "must list the site stacks' names (e.g. prod, dr)",
            "pulumi config set --path siteStacks[0] prod; pulumi config set --path siteStacks[1] dr",
        )
    for gen, why in override_problems(cfg.tier, cfg.retention.periods()).items():
        value = str(getattr(cfg.retention, gen))
        raise _bad(f"retention.{gen}", value, why, f"pulumi config rm --path retention.{gen}")
    return cfg


def check_account(cfg: VaultConfig, caller_account: str) -> None:
    """The credentials must be the vault account's: deployed with the sites' credentials, this
    stack would put the copies back into the blast radius it exists to leave."""
    if caller_account != cfg.accounts.vault:
        raise ConfigError(
            f"config key '{PROJECT}:accounts.vault' = \"{cfg.accounts.vault}\" is not the account these "
            f"credentials are in ({caller_account}); fix: run `pulumi up -s vault` with the backup-only "
            "account's credentials (or correct accounts.vault)"
        )


def load() -> VaultConfig:
    aws = pulumi.Config("aws")
    cfg = parse(raw_config(), aws.get("region"))
    check_stack_tag(pulumi.get_stack(), aws.get_object("defaultTags"))
    return cfg
