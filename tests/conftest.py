"""Shared fixtures: the example directive, a temporary home, the geo lookup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exportgate._types import KycLevel, RequestContext, Subject
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore
from exportgate.policy import Directive, load_directive
from exportgate.state import ALERTS, STATE, PostgresDatabase
from tests.pgserver import PgServer, pg_bindir

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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL cluster on loopback for the session (Debian's binaries; .ci/run installs them)."""
    bindir = pg_bindir()
    if bindir is None:  # a test that needs PostgreSQL fails without it, never passes as skipped
        pytest.fail("PostgreSQL server binaries are not installed (Debian package 'postgresql'; .ci/run installs it)")
    server = PgServer(bindir)
    yield server
    server.close()


def upgraded(url: str) -> str:
    """What ``exportgate db upgrade`` does to a fresh database (the state and alert schemas)."""
    db = PostgresDatabase(url)
    try:
        db.migrate(STATE)
        db.migrate(ALERTS)
    finally:
        db.close()
    return url


@pytest.fixture
def state_url(pg_server: PgServer) -> str:
    """A fresh PostgreSQL database with the state schema, as after ``exportgate db upgrade``."""
    return upgraded(pg_server.create_database())


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountStore]:
    """An account store on each backend."""
    if request.param == "sqlite":
        s = AccountStore(tmp_path / "accounts.db")
    else:
        s = AccountStore(PostgresDatabase(request.getfixturevalue("state_url")))
    yield s
    s.close()


def us_citizen(**kw: object) -> Subject:
    base: dict[str, object] = {"subject_id": "us", "citizenships": ("US",), "kyc": KycLevel.VERIFIED}
    base.update(kw)
    return Subject(**base)  # type: ignore[arg-type]


def at(country: str | None, *flags: str, ip: str = "198.51.100.7") -> RequestContext:
    return RequestContext(ip=ip, country=country, anonymizers=frozenset(flags))
