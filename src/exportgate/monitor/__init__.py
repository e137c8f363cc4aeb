"""Evasion monitoring (``exportgate monitor``, docs/monitoring.md): detectors over the audit record, deduplicated
``exportgate.alert/v1`` alerts with states, actions on accounts, and webhook delivery.

The audit trail is read with the store's own query (SQLite and PostgreSQL alike); detectors are
streaming state machines (``_detectors``), so a batch run and ``--follow`` find the same things.
"""

from ._alerts import MEMORY, SCHEMA, STATES, TRANSITIONS, AlertStore, Transition, alert_id
from ._centroids import min_distance_km
from ._config import ACTIONS, MonitorConfig, load_config
from ._detectors import DETECTORS, Detector, Finding, Trips, detector_named
from ._events import Event, network_of, read_events
from ._monitor import Monitor
from ._traffic import (
    POPULATIONS,
    SYNTHETIC,
    AddressBook,
    Plan,
    build_plan,
    is_synthetic,
    load_labels,
    scorecard,
    send_plan,
)
from ._webhook import Webhook, signature

__all__ = [
    "ACTIONS",
    "POPULATIONS",
    "SYNTHETIC",
    "is_synthetic",
    "load_labels",
    "AddressBook",
    "Plan",
    "build_plan",
    "scorecard",
    "send_plan",
    "DETECTORS",
    "MEMORY",
    "SCHEMA",
    "STATES",
    "TRANSITIONS",
    "Transition",
    "AlertStore",
    "Detector",
    "Event",
    "Finding",
    "Monitor",
    "MonitorConfig",
    "Trips",
    "Webhook",
    "alert_id",
    "detector_named",
    "load_config",
    "min_distance_km",
    "network_of",
    "read_events",
    "signature",
]
