"""The OpenAI- and Anthropic-compatible gateway that enforces a directive on every call (docs/gateway.md)."""

from ._app import API_ROUTES, Gateway, GatewayParts
from ._clientip import ClientIpResolver
from ._directives import DirectiveHolder
from ._factory import check_settings, create_app, parts_from_settings, routing_from_settings
from ._upstream import HttpTransport, LocalTransport, Routing, Upstream, load_routing

__all__ = [
    "API_ROUTES",
    "ClientIpResolver",
    "DirectiveHolder",
    "Gateway",
    "GatewayParts",
    "HttpTransport",
    "LocalTransport",
    "Routing",
    "Upstream",
    "check_settings",
    "create_app",
    "load_routing",
    "parts_from_settings",
    "routing_from_settings",
]
