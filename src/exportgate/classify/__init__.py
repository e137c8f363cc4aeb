"""Classification (docs/classification.md): evaluation evidence -> a level per risk-framework domain -> a control tier
-> a new directive, with a signed ``exportgate.classification/v2`` record kept in the history.

Raising a tier needs only evidence that crosses a threshold; relaxing needs trusted, stronger evidence
(``_relax``) and a second person's approval (:func:`approve`). :func:`run_classification` does the
whole step; :func:`classify` is its pure core.
"""

from ._classify import classify
from ._conditions import METRICS, Condition, ConditionError
from ._evidence import Evidence, read_evidence, target_fingerprint
from ._framework import Domain, Framework, Level, bundled_frameworks, load_framework
from ._history import ClassificationHistory, PendingChange
from ._record import SCHEMA, SCHEMA_V1, STATUSES, ClassificationRecord, RecordCheck
from ._relax import IDENTITY, relaxation_basis, shortfalls
from ._rewrite import bump_version, directive_diff, rewrite_directive
from ._service import HISTORY, Outcome, approve, run_classification, who

__all__ = [
    "ClassificationHistory",
    "ClassificationRecord",
    "Condition",
    "ConditionError",
    "Domain",
    "Evidence",
    "Framework",
    "HISTORY",
    "IDENTITY",
    "Level",
    "METRICS",
    "Outcome",
    "PendingChange",
    "RecordCheck",
    "SCHEMA",
    "SCHEMA_V1",
    "STATUSES",
    "approve",
    "bump_version",
    "bundled_frameworks",
    "classify",
    "directive_diff",
    "load_framework",
    "read_evidence",
    "relaxation_basis",
    "rewrite_directive",
    "run_classification",
    "shortfalls",
    "target_fingerprint",
    "who",
]
