"""The one exception tree of exportgate.

Third-party errors are translated into these at the boundary where they
occur; callers (the CLI, the gateway) catch :class:`ExportgateError` and
render it in one place. Errors that map to an HTTP answer carry the status.

::

    ExportgateError
    ├── ConfigError                 bad setting, unreadable file, bad reference
    ├── DirectiveError              invalid directive (file, line, message)
    │   └── FrameworkError          invalid risk framework (file, line, message)
    ├── ScreeningListError          a restricted-party list file that cannot be read whole (file, line, message)
    ├── ClassificationRefused       evidence that cannot support the classification asked for
    ├── CampaignFailed              an evaluation campaign whose results cannot be evidence (too many errors)
    ├── InvalidAddressError         a malformed IP address
    ├── GeoDataError                a geo database cannot be read
    ├── StoreError                  a store is unreachable or broken (503)
    │   └── StaleStateError         this replica cannot confirm its shared state is current (503)
    ├── NotFoundError               an account, key or record does not exist
    ├── ConflictError               a name or id already exists
    ├── ForbiddenError              credentials without the role an action needs (403)
    ├── AuthenticationError         missing or bad credentials (401)
    │   ├── InvalidApiKeyError
    │   └── InvalidTokenError       a JWT that fails verification
    ├── BadRequestError             a malformed API request (400)
    │   ├── UnrecordableError       a request with a value the audit record cannot hold
    │   ├── UnsupportedMediaError   a request body that is not JSON (415)
    │   ├── PayloadTooLargeError    a request body too large or with too many values (413)
    │   └── RequestTimeoutError     a request body that did not arrive in time (408)
    └── UpstreamError               the upstream model failed (502)
        └── UpstreamTimeoutError    the upstream did not answer in time (504)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CampaignFailed",
    "ClassificationRefused",
    "ConfigError",
    "ConflictError",
    "DirectiveError",
    "ExportgateError",
    "ForbiddenError",
    "FrameworkError",
    "GeoDataError",
    "InvalidAddressError",
    "InvalidApiKeyError",
    "InvalidTokenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RequestTimeoutError",
    "ScreeningListError",
    "StaleStateError",
    "StoreError",
    "UnrecordableError",
    "UnsupportedMediaError",
    "UpstreamError",
    "UpstreamTimeoutError",
]


class ExportgateError(Exception):
    """Root of every error exportgate raises on purpose."""

    #: HTTP status a gateway answers with when this error reaches it.
    status: int = 500
    #: Short machine-readable code for error bodies and logs.
    code: str = "internal_error"

    def __init__(self, message: str, *, remedy: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: What would change the outcome, in the library's terms: (parameter name, value), e.g.
        #: ``("allow_unsigned", "True")``; a front end renders it its own way (the CLI as its flag).
        self.remedy = remedy

    def __str__(self) -> str:
        return self.message


class ConfigError(ExportgateError):
    code = "config_error"


class DirectiveError(ExportgateError):
    """A directive that does not validate; rendered as ``file:line: message``."""

    code = "directive_invalid"
    default_file = "<directive>"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or self.default_file
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}"


class FrameworkError(DirectiveError):
    """A risk framework file that does not validate; rendered as ``file:line: message``."""

    code = "framework_invalid"
    default_file = "<framework>"


class ScreeningListError(DirectiveError):
    """A restricted-party list file refused whole; rendered as ``file:line: message``."""

    code = "screening_list_invalid"
    default_file = "<list>"


class ClassificationRefused(ExportgateError):
    """Evidence that cannot support the classification asked for: tampered, unsigned, or too weak to relax."""

    code = "classification_refused"


class CampaignFailed(ExportgateError):
    """An evaluation campaign whose results cannot stand as evidence: more of its trials errored than allowed."""

    code = "campaign_failed"


class InvalidAddressError(ExportgateError, ValueError):
    status = 400
    code = "invalid_address"


class GeoDataError(ExportgateError):
    status = 503
    code = "geo_unavailable"


class StoreError(ExportgateError):
    status = 503
    code = "store_unavailable"


class StaleStateError(StoreError):
    code = "state_stale"


class ForbiddenError(ExportgateError):
    status = 403
    code = "forbidden"


class NotFoundError(ExportgateError):
    status = 404
    code = "not_found"


class ConflictError(ExportgateError):
    status = 409
    code = "conflict"


class AuthenticationError(ExportgateError):
    status = 401
    code = "invalid_credentials"


class InvalidApiKeyError(AuthenticationError):
    code = "invalid_api_key"


class InvalidTokenError(AuthenticationError):
    code = "invalid_token"


class BadRequestError(ExportgateError):
    status = 400
    code = "invalid_request"


class UnrecordableError(BadRequestError):
    """A value (a claim, a model name) that cannot be written to the audit record as it is: the request
    is refused, since nothing may pass without its record."""

    code = "unrecordable_request"


class UnsupportedMediaError(BadRequestError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(BadRequestError):
    status = 413
    code = "request_too_large"


class RequestTimeoutError(BadRequestError):
    status = 408
    code = "request_timeout"


class UpstreamError(ExportgateError):
    status = 502
    code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"
