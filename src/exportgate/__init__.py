"""exportgate: enforce export-control directives on frontier-model APIs.

The curated public API; each part also has its own package
(:mod:`exportgate.policy`, :mod:`exportgate.geo`, :mod:`exportgate.identity`).
"""

from exportgate._types import (
    Decision,
    GeoInfo,
    KycLevel,
    Reason,
    ReasonCode,
    RequestContext,
    ScreeningStatus,
    Subject,
)
from exportgate.config import Settings
from exportgate.errors import DirectiveError, ExportgateError
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore, Authenticator
from exportgate.policy import Directive, decide, load_directive, parse_directive

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountStore",
    "Authenticator",
    "Decision",
    "Directive",
    "DirectiveError",
    "ExportgateError",
    "GeoInfo",
    "GeoLookup",
    "KycLevel",
    "Reason",
    "ReasonCode",
    "RequestContext",
    "ScreeningStatus",
    "Settings",
    "Subject",
    "__version__",
    "decide",
    "load_directive",
    "parse_directive",
]
