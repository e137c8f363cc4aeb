"""The admin API's routes, as data: method, path pattern, the least role, the handler's name, a summary.

The order of evaluation for every request (docs/admin-api.md): the route is found (404 / 405), the
bearer token is verified (401), the token's role is compared with the route's (403), then the handler runs
with an actor named after the token. A 401 and a 403 are audit records too (action ``api.denied``).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["ROUTES", "Route", "match"]

PREFIX = "/admin/v1"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {name} segments
    role: str | None  # None: no token needed (the OpenAPI document)
    handler: str
    summary: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", PREFIX + self.path) + "$")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", None, "openapi", "This API's OpenAPI 3.1 document."),
    Route("GET", "/accounts", "viewer", "list_accounts", "Accounts, paginated (limit, offset), search by name."),
    Route("POST", "/accounts", "officer", "create_account", "Create an account; its first API key is shown once."),
    Route("GET", "/accounts/{name}", "viewer", "get_account", "One account with its keys."),
    Route("PATCH", "/accounts/{name}", "officer", "update_account", "Change attributes (If-Match: revision)."),
    Route("DELETE", "/accounts/{name}", "officer", "delete_account", "Tombstone an account; its records stay."),
    Route("POST", "/accounts/{name}/suspend", "officer", "suspend", "Suspend an account or a JWT subject."),
    Route("POST", "/accounts/{name}/restore", "officer", "restore", "Lift a suspension."),
    Route("POST", "/accounts/{name}/undelete", "officer", "undelete", "Bring back a deleted account."),
    Route("POST", "/accounts/{name}/keys", "officer", "issue_key", "Issue an API key (shown once)."),
    Route("GET", "/keys", "viewer", "list_keys", "API keys (ids, never secrets); filter by account."),
    Route("POST", "/keys/{key_id}/revoke", "officer", "revoke_key", "Revoke an API key."),
    Route("GET", "/alerts", "viewer", "list_alerts", "Alerts; filter by state, account, detector."),
    Route("GET", "/alerts/{alert}", "viewer", "get_alert", "One alert with its evidence records."),
    Route("POST", "/alerts/{alert}/ack", "officer", "ack_alert", "Acknowledge an alert."),
    Route("POST", "/alerts/{alert}/resolve", "officer", "resolve_alert", "Resolve an alert."),
    Route("GET", "/directives", "viewer", "directive_history", "Every published version."),
    Route("POST", "/directives", "admin", "publish_directive", "Validate and publish a directive (YAML)."),
    Route("GET", "/directives/active", "viewer", "active_directive", "The version in force, with its content."),
    Route("GET", "/directives/diff", "viewer", "diff_directives", "Unified diff of two versions (from, to)."),
    Route("GET", "/directives/{version}", "viewer", "get_directive", "One published version with its content."),
    Route("POST", "/directives/{version}/rollback", "admin", "rollback_directive", "Put a version back in force."),
    Route("GET", "/decisions", "viewer", "search_decisions", "Decisions by time, account, model, result, ..."),
    Route("GET", "/decisions/export", "viewer", "export_decisions", "The same, streamed as CSV or JSON lines."),
    Route("GET", "/audit/status", "viewer", "audit_status", "Verification of the audit record, per chain."),
    Route("GET", "/screening/lists", "viewer", "screening_lists", "The restricted-party lists in force."),
    Route("GET", "/screening/queue", "viewer", "screening_queue", "Accounts whose screening waits for review."),
    Route("GET", "/screening/accounts/{name}", "viewer", "screening_account", "An account's screening and reviews."),
    Route(
        "POST",
        "/screening/accounts/{name}/clear",
        "officer",
        "screening_clear",
        "Clear a candidate as a false positive (candidate, reason).",
    ),
    Route(
        "POST",
        "/screening/accounts/{name}/confirm",
        "officer",
        "screening_confirm",
        "Confirm a candidate as a match: the account is denied screening_hit.",
    ),
    Route("POST", "/screening/screen", "viewer", "screen", "Screen a name (name, country, dob, type)."),
    Route("GET", "/tokens", "admin", "list_tokens", "Admin tokens (never their secrets)."),
    Route("POST", "/tokens", "admin", "add_token", "Make an admin token (shown once)."),
    Route("POST", "/tokens/{token_id}/revoke", "admin", "revoke_token", "Revoke an admin token."),
)
_COMPILED = [(route, route.pattern) for route in ROUTES]


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """The route for a request, its path parameters, and whether the path exists under another method.

    ``path`` is the raw (still percent-encoded) path: segments are matched as sent and each parameter is
    decoded after, so a name holding ``/`` (sent as ``%2F``) or ``#`` (``%23``) is one parameter."""
    other = False
    for route, pattern in _COMPILED:
        found = pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, {k: urllib.parse.unquote(v, errors="strict") for k, v in found.groupdict().items()}, False
        other = True
    return None, {}, other
