"""Real servers for gateway tests: ``exportgate serve`` (granian) in a subprocess on a free loopback port,
with a temporary home holding sample accounts, and optionally ``exportgate sim serve`` as its upstream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from exportgate._types import KycLevel
from exportgate.identity import AccountStore

EXPORTGATE = [sys.executable, "-m", "exportgate.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up")


#: Every served test gateway has this admin token (``admin_token``, given by reference).
ADMIN_TOKEN = "test-admin-" + os.urandom(12).hex()
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    args: list[str], url: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    if log is None:
        process = subprocess.Popen(
            [*EXPORTGATE, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    else:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*EXPORTGATE, *args], stdout=out, stderr=out, env={**os.environ, **(env or {})}, start_new_session=True
            )
    try:
        wait_until_up(url, process)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-1500:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{exc} {tail}") from None
    return process


PEOPLE = {
    # name: (citizenships, residencies, kyc)
    "ada": (["US"], [], KycLevel.VERIFIED),  # US citizen
    "li": (["CN"], [], KycLevel.VERIFIED),  # Chinese citizen
    "greta": (["DE"], ["US"], KycLevel.VERIFIED),  # German citizen, US green card: a US person
    "olaf": (["DE"], [], KycLevel.BASIC),  # German citizen, not a US person
}


def make_home(home: Path) -> dict[str, str]:
    store = AccountStore(home / "accounts.db")
    keys = {}
    for name, (citizenships, residencies, kyc) in PEOPLE.items():
        _, key = store.add_account(name, citizenships=citizenships, residencies=residencies, kyc=kyc)
        keys[name] = key.secret
    store.close()
    return keys


def serve(home: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    keys = make_home(home) if not (home / "accounts.db").exists() else {}
    log = home.parent / f"{home.name}-serve-{port}.log"  # beside the home: the home holds only what exportgate writes
    process = start(
        ["serve", "--home", str(home), "--port", str(port), *extra],
        url + "/healthz",
        env={
            "EXPORTGATE_WATCH_INTERVAL": "0.2",
            "EXPORTGATE_ADMIN_TOKEN": "$env:EG_TEST_ADMIN_TOKEN",
            "EG_TEST_ADMIN_TOKEN": ADMIN_TOKEN,
            **(env or {}),
        },
        log=log,
    )
    return Server(url, home, process, keys, log)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway behind a trusted loopback proxy (so tests can set client addresses), simulator upstream."""
    server = serve(tmp_path_factory.mktemp("gw"), "--trusted-proxy", "127.0.0.1/32")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def untrusting_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway with no trusted proxies: X-Forwarded-For must be ignored."""
    server = serve(tmp_path_factory.mktemp("gw-untrusting"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[str]:
    """``exportgate sim serve`` with 100 ms between streamed chunks."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(["sim", "serve", "--port", str(port), "--chunk-delay-ms", "100"], url + "/v1/models")
    yield url
    process.terminate()
    process.wait(timeout=15)
    if process.stderr is not None:
        process.stderr.close()
