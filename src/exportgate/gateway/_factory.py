"""Building a gateway from :class:`~exportgate.config.Settings` (what ``exportgate serve`` runs in each worker)."""

from __future__ import annotations

from exportgate.audit import audit_from_settings, audit_store_from_settings
from exportgate.config import Settings, resolve_secret
from exportgate.geo import geo_from_settings
from exportgate.identity import authenticator_from_settings
from exportgate.policy import example_directive_path
from exportgate.sim import SimApp

from ._app import Gateway, GatewayParts
from ._clientip import ClientIpResolver
from ._directives import DirectiveHolder
from ._logging import AccessLog, configure_logging
from ._metrics import Metrics
from ._upstream import HttpTransport, LocalTransport, Routing, load_routing

__all__ = ["check_settings", "create_app", "parts_from_settings", "routing_from_settings"]


def routing_from_settings(settings: Settings) -> Routing:
    if settings.upstreams_file:
        return load_routing(settings.upstreams_file)
    if settings.upstream:
        return Routing.single(settings.upstream, resolve_secret(settings.upstream_api_key))
    return Routing.simulator()


def parts_from_settings(settings: Settings) -> GatewayParts:
    """Everything checked before the first request: a bad setting fails here, not under load."""
    home = settings.home_path
    directives = DirectiveHolder(settings.directive or example_directive_path(), home)
    routing = routing_from_settings(settings)
    client_ip = ClientIpResolver(settings.trusted_proxies)
    authenticator = authenticator_from_settings(settings)
    geo = geo_from_settings(settings)
    audit = audit_from_settings(settings)
    return GatewayParts(
        directives=directives,
        authenticator=authenticator,
        geo=geo,
        audit=audit,
        routing=routing,
        transports={"http": HttpTransport(), "local": LocalTransport(SimApp())},
        client_ip=client_ip,
        blocked_by=settings.blocked_by_url,
        max_body=int(settings.max_body_mb * 1024 * 1024),
        access_log=AccessLog() if settings.access_log else None,
        metrics=Metrics(home / "metrics" if settings.workers > 1 else None),
        watch_interval=settings.watch_interval,
    )


def check_settings(settings: Settings) -> None:
    """Build and drop everything a worker would build (the audit store opened, not written to)."""
    DirectiveHolder(settings.directive or example_directive_path(), settings.home_path)
    routing_from_settings(settings)
    ClientIpResolver(settings.trusted_proxies)
    authenticator_from_settings(settings)
    geo_from_settings(settings)
    audit_store_from_settings(settings).close()


def create_app() -> Gateway:
    """The ASGI app for one worker, configured from ``EXPORTGATE_*`` (granian's factory target)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return Gateway(parts_from_settings(settings))
