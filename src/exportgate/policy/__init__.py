"""Directives and the pure decision core.

Load a directive once (:func:`load_directive`), then call :func:`decide` per
request. See ``_rules`` for the rule keys and their evaluation order.
"""

from importlib import resources

from exportgate._types import Decision, Reason, ReasonCode, RequestContext, Subject

from ._countries import BuiltinGroup, builtin_groups, country_codes, is_country_code
from ._decide import decide
from ._directive import Directive, ModelEntry, Tier
from ._loader import load_directive, parse_directive
from ._models import normalize_model_name
from ._rules import RULE_ORDER

__all__ = [
    "RULE_ORDER",
    "BuiltinGroup",
    "Decision",
    "Directive",
    "ModelEntry",
    "Reason",
    "ReasonCode",
    "RequestContext",
    "Subject",
    "Tier",
    "builtin_groups",
    "country_codes",
    "decide",
    "is_country_code",
    "load_directive",
    "normalize_model_name",
    "parse_directive",
]


def example_directive_path() -> str:
    """Path of the bundled example directive (the embedded default)."""
    return str(resources.files(__name__).joinpath("data/example_directive.yaml"))


__all__ += ["example_directive_path"]
