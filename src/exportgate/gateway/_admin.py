"""Who may see the gateway's operational detail: metrics, the directive's model table, readiness detail.

Those answers name models, tiers, denial counts, file paths and host names, so they are not public.
They are served to a bearer of the admin token (``admin_token``, given by reference: ``$env:NAME``),
compared in constant time. With no admin token configured they are not served at all. The public
answers stay minimal: ``/healthz`` and ``/readyz`` say only up/ready (with the HTTP status a load
balancer reads), ``/directive`` only the legal basis a denied caller is pointed to.
"""

from __future__ import annotations

import hmac

from exportgate._asgi import RawHeaders

__all__ = ["AdminGuard"]


class AdminGuard:
    def __init__(self, token: str | None = None) -> None:
        self._token = token.encode("utf-8") if token else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def allows(self, headers: RawHeaders) -> bool:
        """Whether the request carries the admin token as ``Authorization: Bearer``."""
        if self._token is None:
            return False
        for name, value in headers:
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(rest.strip(), self._token):
                    return True
        return False
