"""The AWS realisation of a site, composed from typed parts.

Each concern's `build` takes what it needs and returns what it made; the calls below are the
whole dependency graph of a site (read top to bottom: nothing is looked up by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.site import Site

if TYPE_CHECKING:  # the concern modules load the AWS SDK: only when a site is built
    from components.aws.dns_failover import DnsFailover
    from components.aws.network import SiteNetwork
    from infra.aws.app import App
    from infra.aws.audit import Audit
    from infra.aws.backup import Backups
    from infra.aws.data import DataTier
    from infra.aws.drills import Drills
    from infra.aws.files import Files
    from infra.aws.functions import Functions
    from infra.aws.gdpr import Ledger
    from infra.aws.monitoring import Monitoring


@dataclass(frozen=True)
class AwsSite:
    network: SiteNetwork
    files: Files
    data: DataTier
    backups: Backups
    app: App
    failover: DnsFailover | None  # dr stack with dns.* only
    functions: Functions
    ledger: Ledger
    monitoring: Monitoring
    audit: Audit  # the trail (dr stack only) and the Audit Manager framework
    drills: Drills  # the plan's testing schedule beyond the weekly restore test (dr stack only)


def build(site: Site) -> AwsSite:
    from infra.aws import app, audit, backup, data, drills, failover, files, functions, gdpr, monitoring, network

    net = network.build(site)
    user_files = files.build(site)
    tier = data.build(site, net)
    backups = backup.build(site, net, tier, user_files)
    api = app.build(site, tier, user_files, net)
    dns = failover.build(site, api)
    fns = functions.build(site, net, tier, user_files.access_logs, api)
    ledger = gdpr.build(site, user_files.access_logs)
    audited = audit.build(site, user_files.access_logs, fns)
    alerts = monitoring.build(site, tier, user_files, fns, dns, audited.trail,
                              testing=lambda topic: drills.build(site, net, tier, backups, fns, topic))
    return AwsSite(net, user_files, tier, backups, api, dns, fns, ledger, alerts, audited, alerts.testing)
