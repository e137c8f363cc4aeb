"""Classification (docs/classification.md): evaluation evidence -> a level per risk-framework domain -> a control tier
-> a new directive, with a signed ``exportgate.classification/v1`` record kept in the history.

Raising a tier needs only evidence that crosses a threshold; relaxing needs stronger evidence
(``_relax``). :func:`run_classification` does the whole step; :func:`classify` is its pure core.
"""

from ._classify import SCHEMA, classify
from ._conditions import METRICS, Condition, ConditionError
from ._evidence import Evidence, read_evidence
from ._framework import Domain, Framework, Level, bundled_frameworks, load_framework
from ._history import ClassificationHistory
from ._relax import shortfalls
from ._rewrite import bump_version, directive_diff, rewrite_directive
from ._service import HISTORY, Outcome, run_classification, sign_record

__all__ = [
    "HISTORY",
    "METRICS",
    "SCHEMA",
    "ClassificationHistory",
    "Condition",
    "ConditionError",
    "Domain",
    "Evidence",
    "Framework",
    "Level",
    "Outcome",
    "bump_version",
    "bundled_frameworks",
    "classify",
    "directive_diff",
    "load_framework",
    "read_evidence",
    "rewrite_directive",
    "run_classification",
    "shortfalls",
    "sign_record",
]
