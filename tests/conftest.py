"""Shared fixtures: the example directive, a temporary home, the geo lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportgate._types import KycLevel, RequestContext, Subject
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore
from exportgate.policy import Directive, load_directive

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "directive.yaml"


@pytest.fixture(autouse=True)
def _default_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run without --home uses a fresh directory, never one in the working directory."""
    monkeypatch.setenv("EXPORTGATE_HOME", str(tmp_path_factory.mktemp("default") / "home"))


@pytest.fixture(scope="session")
def directive() -> Directive:
    return load_directive(EXAMPLE)


@pytest.fixture(scope="session")
def geo() -> GeoLookup:
    return GeoLookup()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(tmp_path: Path) -> AccountStore:
    s = AccountStore(tmp_path / "accounts.db")
    yield s
    s.close()


def us_citizen(**kw: object) -> Subject:
    base: dict[str, object] = {"subject_id": "us", "citizenships": ("US",), "kyc": KycLevel.VERIFIED}
    base.update(kw)
    return Subject(**base)  # type: ignore[arg-type]


def at(country: str | None, *flags: str, ip: str = "198.51.100.7") -> RequestContext:
    return RequestContext(ip=ip, country=country, anonymizers=frozenset(flags))
