"""The OpenAPI 3.1 document of the admin API, built from the route table (so it cannot drift from it)."""

from __future__ import annotations

import re
from typing import Any

from exportgate import __version__

from ._routes import PREFIX, ROUTES

__all__ = ["openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}},
        }
    },
}
_DESCRIPTION = (
    "Accounts, keys, alerts, directives, decisions and the audit record of an exportgate deployment. Every "
    "change is an audit record. Roles: viewer reads; officer acts on accounts, keys and alerts; admin also "
    "publishes directives and manages admin tokens."
)


def _operation(method: str, path: str, role: str | None, handler: str, summary: str) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"\{(\w+)\}", path)]  # fmt: skip
    responses: dict[str, Any] = {"200": {"description": "OK"}}
    if method == "POST" and handler in ("create_account", "issue_key", "publish_directive", "add_token",
                                         "rollback_directive"):  # fmt: skip
        responses = {"201": {"description": "Created"}}
    if role is not None:
        for status, text in (("400", "Bad request"), ("401", "No or bad admin token"),
                             ("403", f"The token's role is below {role}"), ("404", "Not found"),
                             ("409", "Conflict (a changed revision, a name in use)"),
                             ("503", "A store is unavailable")):  # fmt: skip
            responses[status] = {"description": text, "content": {"application/json": {"schema": _ERROR}}}
    operation: dict[str, Any] = {"operationId": handler, "summary": summary, "responses": responses,
                                 "parameters": parameters, "x-exportgate-role": role}  # fmt: skip
    if role is None:
        operation["security"] = []
    if method in ("POST", "PATCH"):
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    return operation


def openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(
            route.method, route.path, route.role, route.handler, route.summary
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "exportgate admin API", "version": __version__, "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "egadm_<id>_<secret>"}},
            "schemas": {"Error": _ERROR_SCHEMA},
        },
    }
