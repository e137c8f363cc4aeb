"""Building a gateway from :class:`~exportgate.config.Settings` (what ``exportgate serve`` runs in each worker)."""

from __future__ import annotations

from typing import Any

from exportgate.audit import audit_from_settings, audit_store_from_settings
from exportgate.config import Settings, resolve_secret
from exportgate.errors import ConfigError
from exportgate.geo import geo_from_settings
from exportgate.identity import AccountStore, authenticator_from_settings
from exportgate.monitor import load_config
from exportgate.policy import example_directive_path
from exportgate.sim import SimApp
from exportgate.state import DirectiveStore, open_database

from ._admin import AdminGuard
from ._app import Gateway, GatewayParts
from ._body import BodyLimits
from ._clientip import ClientIpResolver
from ._directives import DirectiveHolder
from ._logging import AccessLog, configure_logging
from ._metrics import Metrics
from ._monitoring import BackgroundMonitor
from ._upstream import HttpTransport, LocalTransport, Routing, load_routing

__all__ = ["check_settings", "create_app", "parts_from_settings", "routing_from_settings"]


def routing_from_settings(settings: Settings) -> Routing:
    if settings.upstreams_file:
        return load_routing(settings.upstreams_file)
    if settings.upstream:
        return Routing.single(settings.upstream, resolve_secret(settings.upstream_api_key))
    return Routing.simulator()


def admin_from_settings(settings: Settings) -> AdminGuard:
    token = settings.admin_token
    if token and not token.startswith("$env:"):
        raise ConfigError("admin_token: give the token by reference, $env:NAME, never inline")
    secret = resolve_secret(token)
    if secret is not None and len(secret) < 16:
        raise ConfigError("admin_token: the token must be at least 16 characters")
    return AdminGuard(secret)


def body_limits_from_settings(settings: Settings) -> BodyLimits:
    if settings.max_json_depth < 1 or settings.max_json_values < 1:
        raise ConfigError("max_json_depth and max_json_values must be at least 1")
    if settings.body_timeout <= 0 or settings.header_timeout <= 0:
        raise ConfigError("body_timeout and header_timeout must be positive")
    return BodyLimits(settings.max_json_depth, settings.max_json_values, settings.body_timeout)


def _checked_parts(settings: Settings) -> dict[str, Any]:
    """Every part that validates a setting; a bad setting fails here, not under load. The state database is
    opened first: on PostgreSQL a schema this exportgate does not know stops the start."""
    if settings.state_max_staleness <= 0:
        raise ConfigError("state_max_staleness must be positive")
    state = open_database(settings, "state")
    try:
        directives = DirectiveHolder(settings.directive or example_directive_path(), settings.home_path,
                                     settle=settings.watch_interval, published=DirectiveStore(state))  # fmt: skip
        authenticator = authenticator_from_settings(settings, AccountStore(state))
    except BaseException:
        state.close()
        raise
    return {
        "directives": directives,
        "routing": routing_from_settings(settings),
        "client_ip": ClientIpResolver(settings.trusted_proxies),
        "authenticator": authenticator,
        "geo": geo_from_settings(settings),
        "admin": admin_from_settings(settings),
        "body_limits": body_limits_from_settings(settings),
    }


def parts_from_settings(settings: Settings) -> GatewayParts:
    """Everything one worker needs, its audit writer started."""
    checked = _checked_parts(settings)
    audit = audit_from_settings(settings)
    return GatewayParts(
        **checked,
        audit=audit,
        transports={"http": HttpTransport(), "local": LocalTransport(SimApp())},
        blocked_by=settings.blocked_by_url,
        max_body=int(settings.max_body_mb * 1024 * 1024),
        access_log=AccessLog() if settings.access_log else None,
        metrics=Metrics(settings.home_path / "metrics" if settings.workers > 1 else None),
        watch_interval=settings.watch_interval,
        monitor=BackgroundMonitor(settings, audit) if settings.monitor else None,
    )  # fmt: skip


def check_settings(settings: Settings) -> None:
    """Build and drop what a worker would build, in the serving process: the audit store is opened, not
    written to (no writer registers a chain for a check)."""
    parts = _checked_parts(settings)
    parts["authenticator"].store.close()
    if settings.monitor:
        load_config(settings.monitor_config)
    audit_store_from_settings(settings).close()


def create_app() -> Gateway:
    """The ASGI app for one worker, configured from ``EXPORTGATE_*`` (granian's factory target)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return Gateway(parts_from_settings(settings))
