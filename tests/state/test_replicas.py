"""One system of record across replicas: PostgreSQL and three real ``exportgate serve`` processes (separate
ports and homes, one ``--database-url``), driven through the admin API of one and the public API of the
others. Propagation is measured here (a test asserts the bound; benchmarks/replicas.py reports the spread).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE
from tests.gateway.conftest import ADMIN, ADMIN_TOKEN, EXPORTGATE, free_port, start
from tests.pgserver import PgServer

CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "hello"}]}
US_IP = "3.3.3.3"


@dataclass
class Replica:
    name: str
    home: Path
    url: str
    admin: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def ready(self) -> dict:
        return httpx.get(self.url + "/readyz", headers=ADMIN, timeout=5).json()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXPORTGATE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip


def until(condition: Callable[[], bool], what: str, seconds: float) -> float:
    """Seconds until ``condition`` held (polled every 5 ms); fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.005)
    return time.monotonic() - started


def start_replica(name: str, tmp_path: Path, url: str) -> Replica:
    home = tmp_path / name
    port, admin_port = free_port(), free_port()
    env = {"EXPORTGATE_DATABASE_URL": url, "EXPORTGATE_MONITOR_INTERVAL": "0.5", "EXPORTGATE_STATE_MAX_STALENESS": "2",
           "EXPORTGATE_ADMIN_TOKEN": "$env:EG_TEST_ADMIN_TOKEN", "EG_TEST_ADMIN_TOKEN": ADMIN_TOKEN,
           "EXPORTGATE_WATCH_INTERVAL": "0.2"}  # fmt: skip
    process = start(["serve", "--home", str(home), "--port", str(port), "--admin-port", str(admin_port),
                     "--trusted-proxy", "127.0.0.1/32", "--monitor"], f"http://127.0.0.1:{port}/healthz", env,
                    log=tmp_path / f"{name}.log")  # fmt: skip
    admin = f"http://127.0.0.1:{admin_port}/admin/v1"
    until(lambda: _answers(admin + "/openapi.json"), f"the admin API of {name}", 30)
    return Replica(name, home, f"http://127.0.0.1:{port}", admin, process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def call(replica: Replica, key: str) -> httpx.Response:
    return httpx.post(replica.url + "/v1/chat/completions", json=CHAT, timeout=10,
                      headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": US_IP})  # fmt: skip


@pytest.fixture
def database(pg_server: PgServer) -> str:
    url = pg_server.create_database()
    done = cli("db", "upgrade", "--database-url", url)
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
def replicas(tmp_path: Path, database: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for name in ("a", "b", "c"):
            started.append(start_replica(name, tmp_path, database))
        yield started
    finally:
        for replica in started:
            replica.kill()


def test_three_replicas_share_one_system_of_record(replicas: list[Replica], database: str, tmp_path: Path,
                                                   pg_server: PgServer):  # fmt: skip
    a, _, c = replicas
    made = cli("admin", "tokens", "add", "ops", "--role", "admin", "--database-url", database, "--home", str(a.home))
    assert made.returncode == 0, made.stderr
    token = {"Authorization": f"Bearer {made.stdout.strip()}"}

    # An account created through the admin API of A authenticates on C.
    created = httpx.post(a.admin + "/accounts", headers=token, timeout=10,
                         json={"name": "ada", "citizenships": ["US"], "kyc": "verified", "note": "onboarding"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]["secret"]
    until(lambda: call(c, key).status_code == 200, "a new account usable on C", 1.0)

    # Suspended through A: its next request on C is denied account_suspended, within a second.
    assert call(c, key).status_code == 200  # C has the subject cached now
    suspended = httpx.post(a.admin + "/accounts/ada/suspend", headers=token, json={"note": "directive 17"}, timeout=10)
    assert suspended.status_code == 200, suspended.text
    took = until(lambda: call(c, key).status_code == 451, "the suspension on C", 1.0)
    answer = call(c, key)
    assert answer.json()["error"]["code"] == "account_suspended"
    print(f"suspension effective on C after {took * 1000:.0f} ms")

    # A published directive is enforced on all three within a second (each names the same version).
    text = EXAMPLE.read_text("utf-8").replace('version: "2026-06-14.1"', 'version: "2026-12-01.1"')
    published = httpx.post(a.admin + "/directives", headers={**token, "content-type": "application/yaml"},
                           content=text.encode(), timeout=10)  # fmt: skip
    assert published.status_code == 201, published.text
    for replica in replicas:
        until(lambda r=replica: httpx.get(r.url + "/directive", timeout=5).json()["version"] == "2026-12-01.1",
              f"the new directive on {replica.name}", 1.0)  # fmt: skip
    # A directive that does not validate changes nothing anywhere.
    bad = httpx.post(a.admin + "/directives", headers={**token, "content-type": "application/yaml"},
                     content=b"directive: x\nversion: 1\n", timeout=10)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "directive_invalid"
    assert [v["version"] for v in httpx.get(a.admin + "/directives", headers=token, timeout=10).json()] == [1]

    # One monitor leads; killed, another replica takes over within 10 s.
    leaders = [r for r in replicas if r.ready()["checks"]["monitor"]["leading"]]
    assert len(leaders) == 1, [r.ready()["checks"]["monitor"] for r in replicas]
    leaders[0].kill()
    rest = [r for r in replicas if r is not leaders[0]]
    until(lambda: any(r.ready()["checks"]["monitor"]["leading"] for r in rest), "a new monitor leader", 10.0)
    assert sum(r.ready()["checks"]["monitor"]["leading"] for r in rest) == 1

    # PostgreSQL stops: 503 after the staleness bound, and ready says why; it starts: service resumes.
    survivor = rest[0]
    assert httpx.post(survivor.admin + "/accounts/ada/restore", headers=token, json={}, timeout=10).status_code == 200
    until(lambda: call(survivor, key).status_code == 200, "the restored account", 1.0)
    pg_server.stop()
    try:
        until(lambda: call(survivor, key).status_code == 503, "503 while the store is down", 2 + 3)
        until(lambda: survivor.ready()["checks"]["state"]["stale"], "stale past state_max_staleness", 2 + 3)
        ready = httpx.get(survivor.url + "/readyz", headers=ADMIN, timeout=5)
        assert ready.status_code == 503 and ready.json()["checks"]["state"]["listening"] is False
        refused = call(survivor, key)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "state_stale"
    finally:
        pg_server.start()
    until(lambda: call(survivor, key).status_code == 200, "service after PostgreSQL returned", 20.0)
    assert survivor.ready()["status"] == "ready"
    # the monitor came through the outage too: one replica leads again, and its passes go on
    until(lambda: sum(r.ready()["checks"]["monitor"]["leading"] for r in rest) == 1, "a monitor leads again", 15)
    passes = sum(r.ready()["checks"]["monitor"]["passes"] for r in rest)
    until(lambda: sum(r.ready()["checks"]["monitor"]["passes"] for r in rest) > passes, "monitor passes", 10)
    assert all(r.ready()["checks"]["monitor"]["ok"] for r in rest)

    # The audit record (shared, one chain per writer) verifies with each replica's public key pinned.
    pins = []
    for replica in replicas:
        pem = tmp_path / f"{replica.name}.pem"
        assert cli("keys", "export", "--out", str(pem), "--home", str(replica.home)).returncode == 0
        pins += ["--public-key", str(pem)]
    verified = cli("audit", "verify", "--audit-url", database, "--home", str(a.home), *pins)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    exported = cli("audit", "export", "--audit-url", database, "--home", str(a.home))
    actions = [line for line in exported.stdout.splitlines() if '"event":"admin"' in line.replace(" ", "")]
    assert any('"account.suspend"' in line and '"ops"' in line and "directive 17" in line for line in actions)
