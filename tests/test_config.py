"""The settings table: precedence, parsing, secrets by reference, documentation."""

from __future__ import annotations

import pytest

from exportgate.config import SETTINGS, Settings, resolve_secret
from exportgate.errors import ConfigError
from tests.conftest import ROOT


def test_precedence_override_env_default():
    env = {"EXPORTGATE_HOME": "/env/home", "EXPORTGATE_KEY_CACHE_TTL": "2.5", "EXPORTGATE_GEO_EMBEDDED": "no"}
    settings = Settings({"home": "/flag/home"}, env=env)
    assert settings.home == "/flag/home"
    assert settings.key_cache_ttl == 2.5
    assert settings.geo_embedded is False
    assert Settings(env={}).home == ".exportgate"


def test_bad_values_and_unknown_settings_are_config_errors():
    with pytest.raises(ConfigError, match="EXPORTGATE_GEO_EMBEDDED"):
        Settings(env={"EXPORTGATE_GEO_EMBEDDED": "perhaps"})
    with pytest.raises(ConfigError, match="EXPORTGATE_JWT_CLAIMS"):
        Settings(env={"EXPORTGATE_JWT_CLAIMS": "[1]"})
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings({"colour": "red"})


def test_secret_references():
    assert resolve_secret("$env:UPSTREAM_KEY", env={"UPSTREAM_KEY": "s3cret"}) == "s3cret"
    assert resolve_secret("plain") == "plain"
    assert resolve_secret(None) is None
    with pytest.raises(ConfigError, match="unset environment variable"):
        resolve_secret("$env:NOPE", env={})


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in doc or s.env not in doc]
    assert not missing, f"undocumented settings: {missing}"
