"""Monitor configuration: detector parameters and actions, and the webhook. Defaults are embedded;
a YAML file (``--config``) overrides them:

.. code-block:: yaml

    dedup_s: 86400                     # one alert per detector, account and day
    detectors:
      impossible_travel: {max_kmh: 900, action: reverify}
      key_sharing: {action: suspend}
      residency_mismatch: {enabled: false}
    webhook: {url: "https://hooks.example/exportgate", secret: "$env:EXPORTGATE_WEBHOOK_SECRET"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exportgate._yaml import line_of, load_yaml
from exportgate.config import resolve_secret
from exportgate.errors import ConfigError, DirectiveError

from ._detectors import DETECTORS

__all__ = ["ACTIONS", "DEFAULT_ACTIONS", "MonitorConfig", "load_config"]

ACTIONS = ("alert", "reverify", "suspend")
DEFAULT_ACTIONS = dict.fromkeys(DETECTORS, "alert")


@dataclass(frozen=True)
class MonitorConfig:
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {name: {} for name in DETECTORS})
    actions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    dedup_s: int = 86400
    webhook_url: str | None = None
    webhook_secret: str | None = None


def load_config(path: str | Path | None) -> MonitorConfig:
    if path is None:
        return MonitorConfig()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read monitor config {path}: {exc.strerror or exc}") from None
    try:
        doc = load_yaml(raw, str(path))
    except DirectiveError as exc:
        raise ConfigError(exc.message) from None
    return _parse(doc or {}, str(path))


def _parse(doc: Any, source: str) -> MonitorConfig:
    if not isinstance(doc, dict) or set(doc) - {"detectors", "webhook", "dedup_s"}:
        raise ConfigError(f"{source}: the monitor config holds detectors, webhook and dedup_s")
    params: dict[str, dict[str, Any]] = {name: {} for name in DETECTORS}
    actions = dict(DEFAULT_ACTIONS)
    for name, node in (doc.get("detectors") or {}).items():
        where = f"{source}:{line_of(doc['detectors'], name)}"
        if name not in DETECTORS or not isinstance(node, dict):
            raise ConfigError(f"{where}: unknown detector {name!r} (choose from {', '.join(DETECTORS)})")
        body = dict(node)
        action = body.pop("action", "alert")
        if action not in ACTIONS:
            raise ConfigError(f"{where}: action must be one of {', '.join(ACTIONS)}")
        if body.pop("enabled", True) is False:
            del params[name]
            continue
        unknown = set(body) - set(DETECTORS[name].defaults)
        if unknown:
            raise ConfigError(f"{where}: {name} has no parameter {', '.join(sorted(unknown))}")
        params[name], actions[name] = body, action
    webhook = doc.get("webhook") or {}
    dedup = doc.get("dedup_s", 86400)
    if not isinstance(dedup, int) or dedup <= 0:
        raise ConfigError(f"{source}: dedup_s must be a positive number of seconds")
    return MonitorConfig(params, actions, dedup, webhook.get("url"), resolve_secret(webhook.get("secret")))
