"""The AWS realisation of a site: one module per concern, built in order."""

from __future__ import annotations

from infra.site import Site


def build(site: Site) -> None:
    # Imported here, in order: later concerns use what earlier ones put in site.parts.
    from infra.aws import app, audit, backup, data, failover, files, functions, gdpr, monitoring, network

    for concern in (network, files, data, backup, app, failover, functions, gdpr, monitoring, audit):
        concern.build(site)
