"""One declarative table of settings.

Each setting has a name, a default, a type and a help line. A value comes,
in order of precedence, from an explicit override (a CLI flag), the
environment (``EXPORTGATE_<NAME>``), or the default. Secrets are given by
reference, ``$env:NAME``, and resolved with :func:`resolve_secret` at the
point of use, so they never sit in a config file, a log or a record.
docs/configuration.md documents every setting (a test enforces it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportgate.errors import ConfigError

__all__ = ["ENV_PREFIX", "SETTINGS", "Setting", "Settings", "resolve_secret"]

ENV_PREFIX = "EXPORTGATE_"


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def _list(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _choice(text: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, not {text!r}")
    return value


def _mapping(text: str) -> dict[str, str]:
    value = json.loads(text)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expected a JSON object of strings")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _unit(value: str) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError(f"{value!r} is not a number in (0, 1]")
    return number


SETTINGS: tuple[Setting, ...] = (
    Setting("home", ".exportgate", "Data directory: account store, audit database, keys."),
    Setting("geo_embedded", True, "Use the bundled iptocc/iporigin data for country and anonymizer flags.", _bool),
    Setting("geo_country_mmdb", None, "MaxMind-format country database (.mmdb); answers before the bundled data."),
    Setting(
        "geo_anonymous_mmdb", None, "MaxMind-format anonymous-IP database (.mmdb); its flags add to the bundled ones."
    ),
    Setting("jwks", None, "JWKS for bearer JWTs: a file path or an http(s) URL. JWTs are refused when unset."),
    Setting("jwt_issuer", None, "Required 'iss' of bearer JWTs."),
    Setting("jwt_audience", None, "Required 'aud' of bearer JWTs."),
    Setting(
        "jwt_claims", {}, "JSON object mapping subject attributes to claim names (see docs/identity.md).", _mapping
    ),
    Setting("jwt_leeway", 30.0, "Clock skew allowed on exp/nbf, seconds.", float),
    Setting(
        "database_url",
        None,
        "Shared state (accounts, keys, suspensions, alerts, directives, admin tokens): postgresql://...; "
        "SQLite files in HOME when unset. The audit record goes there too unless audit_url is set.",
    ),
    Setting(
        "state_max_staleness",
        5.0,
        "Seconds a replica may go without confirming its shared state is current before it answers 503.",
        float,
    ),
    Setting("admin_host", "127.0.0.1", "Address of the admin API (serve --admin-port)."),
    Setting("admin_port", None, "Port of the admin API, /admin/v1/ (off the public port); off when unset.", int),
    Setting(
        "audit_url",
        None,
        "Audit store URL: sqlite:///PATH or postgresql://...; database_url, else HOME/audit.db, when unset.",
    ),
    Setting(
        "audit_mode",
        "strict",
        "strict: a request waits for its audit record to commit; async: bounded queue.",
        lambda v: _choice(v, ("strict", "async")),
    ),
    Setting("audit_checkpoint_every", 1000, "Sign a checkpoint after this many audit records.", int),
    Setting(
        "audit_checkpoint_seconds", 10.0, "Sign a checkpoint at least this often (seconds) while records arrive.", float
    ),
    Setting("audit_retention_years", 5, "audit prune refuses to delete records younger than this (15 CFR 762.6).", int),
    Setting("key_cache_ttl", 5.0, "Seconds a key lookup is reused; any account change drops the cache at once.", float),
    Setting("directive", None, "Directive file the gateway enforces; the bundled example when unset."),
    Setting("upstream", None, "Default upstream base URL (OpenAI-style); the built-in simulator when unset."),
    Setting("upstream_api_key", None, "Key for --upstream, by reference only: $env:NAME."),
    Setting("upstreams_file", None, "Routing file: models to upstreams (see docs/gateway.md); overrides upstream."),
    Setting("trusted_proxies", [], "CIDRs whose X-Forwarded-For is believed (comma or space separated).", _list),
    Setting("host", "127.0.0.1", "Address the gateway listens on."),
    Setting("port", 8080, "Port the gateway listens on.", int),
    Setting("workers", 1, "Gateway worker processes (each its own audit chain).", int),
    Setting("blocked_by_url", "/directive", "URL in the Link rel=blocked-by header of 451 answers."),
    Setting("max_body_mb", 32.0, "Largest request body accepted, MiB (413 beyond).", float),
    Setting("header_timeout", 10.0, "Seconds a client has, from its first byte, to send a request's headers.", float),
    Setting("body_timeout", 30.0, "Seconds a client has to send a request's whole body (408 beyond).", float),
    Setting("shutdown_grace", 30.0, "Seconds a stopping worker has to finish its requests before it is killed.", float),
    Setting("max_json_depth", 64, "Deepest nesting of a request body's JSON (400 beyond).", int),
    Setting("max_json_values", 500_000, "Most JSON values in one request body (413 beyond).", int),
    Setting(
        "admin_token",
        None,
        "Bearer token for /metrics and the detail of /readyz and /directive, by reference only: $env:NAME. "
        "Those are not served when unset.",
    ),
    Setting(
        "signing_key_passphrase",
        None,
        "Passphrase of the home's signing key (HOME/keys/signing-key.pem), by reference only: $env:NAME. "
        "A key made while it is set is encrypted; an encrypted key cannot be used without it.",
    ),
    Setting(
        "trusted_keys",
        [],
        "Public key files (PEM) whose signatures verifiers trust, besides the home's own key and HOME/keys/trusted/.",
        _list,
    ),
    Setting("access_log", True, "Write one JSON line per request to stderr.", _bool),
    Setting(
        "log_level",
        "info",
        "Gateway log level: debug, info, warning, error.",
        lambda v: _choice(v, ("debug", "info", "warning", "error")),
    ),
    Setting("watch_interval", 1.0, "Seconds between directive file checks (hot reload).", float),
    Setting("monitor", False, "Run the evasion detectors in the background of the gateway.", _bool),
    Setting(
        "monitor_config", None, "Monitor config file (detector parameters, actions, webhook); defaults when unset."
    ),
    Setting("monitor_interval", 5.0, "Seconds between background monitor passes over new audit records.", float),
    Setting(
        "screening_threshold",
        0.84,
        "Score in (0, 1] from which a list entry is a potential match for a screened name (docs/screening.md).",
        _unit,
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}



class Settings:
    """Resolved settings: ``settings.home``, ``settings["jwks"]``."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        self._values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.name in overrides:
                self._values[setting.name] = overrides[setting.name]
            elif setting.env in env:
                try:
                    self._values[setting.name] = setting.parse(env[setting.env])
                except ValueError as exc:
                    raise ConfigError(f"{setting.env}: {exc}") from None
            else:
                self._values[setting.name] = setting.default
        if not self._values["audit_url"] and self._values["database_url"]:
            self._values["audit_url"] = self._values["database_url"]  # one database holds everything by default

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def home_path(self) -> Path:
        return Path(self._values["home"]).expanduser()

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def resolve_secret(value: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """Resolve ``$env:NAME`` to the variable's value; other strings pass through."""
    if value is None or not value.startswith("$env:"):
        return value
    env = os.environ if env is None else env
    name = value[len("$env:") :]
    if name not in env:
        raise ConfigError(f"secret reference {value} names an unset environment variable")
    return env[name]
