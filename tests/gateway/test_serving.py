"""Serving: a port in use is refused, not shared; a dead worker is replaced; slow clients are dropped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import EXPORTGATE, free_port, serve


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXPORTGATE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EXPORTGATE_HOME": str(home)})  # fmt: skip


@pytest.mark.parametrize("command", [["serve"], ["sim", "serve"]])
def test_a_second_server_on_a_port_in_use_is_refused(tmp_path: Path, command: list[str]):
    with socket.socket() as taken:  # another process's listener, as granian's own: SO_REUSEPORT set
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(*command, "--port", str(port), home=tmp_path / "home")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("exportgate: error: cannot listen on 127.0.0.1:") and "--reuse-port" in done.stderr
    assert not (tmp_path / "home" / "audit.db").exists()  # refused before anything was built


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["serve", "--port", "99999"], 2, "'--port'"),
        (["serve", "--port", "0"], 2, "'--port'"),
        (["serve", "--host", "192.0.2.1", "--port", "8999"], 1, "cannot listen on 192.0.2.1:8999"),
        (["serve", "--host", "no-such-host.invalid"], 1, "cannot listen on no-such-host.invalid"),
        (["serve", "--audit-mode", "lazy"], 2, "'--audit-mode'"),
        (["serve", "--workers", "0"], 2, "'--workers'"),
        (["sim", "serve", "--port", "70000"], 2, "'--port'"),
    ],
)
def test_bad_serving_options_are_one_line(tmp_path: Path, args: list[str], code: int, fragment: str):
    done = _run(*args, home=tmp_path / "home")
    assert done.returncode == code and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("exportgate: error: ") and fragment in done.stderr and "Traceback" not in done.stderr


def _workers(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_a_worker_that_dies_is_replaced_and_the_gateway_keeps_serving(tmp_path: Path):
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--workers", "2")
    headers = {"Authorization": f"Bearer {server.keys['ada']}", "X-Forwarded-For": "3.3.3.3"}
    chat = {"model": "sonnet-4", "messages": [{"role": "user", "content": "hi"}]}
    try:
        deadline = time.monotonic() + 20
        while len(_workers(server.process.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first = _workers(server.process.pid)
        os.kill(min(first), signal.SIGKILL)
        while len(_workers(server.process.pid) - first) < 1 or len(_workers(server.process.pid)) < 2:
            assert time.monotonic() < deadline + 20, "the dead worker was not replaced"
            assert server.process.poll() is None, "serve exited when one worker died"
            time.sleep(0.1)
        assert all(httpx.post(server.url + "/v1/chat/completions", json=chat, headers=headers).status_code == 200
                   for _ in range(10))  # fmt: skip
    finally:
        server.stop()
    assert server.log is not None and "Unexpected exit from worker" in server.log.read_text()
    verified = subprocess.run([*EXPORTGATE, "audit", "verify", "--home", str(server.home)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert verified.returncode == 0, verified.stdout  # the killed worker's chain is open, not broken


def test_slow_clients_are_dropped(tmp_path: Path):
    server = serve(tmp_path / "home", env={"EXPORTGATE_HEADER_TIMEOUT": "1", "EXPORTGATE_BODY_TIMEOUT": "1"})
    port = int(server.url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port)) as slow:  # headers, one line a while
            slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for _ in range(40):
                try:
                    slow.sendall(b"X-Pad: y\r\n")
                except OSError:
                    closed = True
                    break
                slow.settimeout(0.25)
                try:
                    if slow.recv(100) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except OSError:  # reset by the server: dropped as well (CI saw this under load)
                    closed = True
                    break
            assert closed, "a client still sending headers after 10 s was not dropped"
        key = server.keys["ada"]
        with socket.create_connection(("127.0.0.1", port)) as trickle:  # a body that never completes
            trickle.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())  # fmt: skip
            trickle.settimeout(10)
            assert trickle.recv(100).startswith(b"HTTP/1.1 408")
    finally:
        server.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_reuse_port_lets_a_server_share_on_purpose(tmp_path: Path):
    port = free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        process = subprocess.Popen([*EXPORTGATE, "sim", "serve", "--port", str(port), "--reuse-port"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            time.sleep(3)
            assert process.poll() is None  # started: sharing was asked for
        finally:
            process.terminate()
            process.wait(timeout=15)
            assert process.stderr is not None
            process.stderr.close()
    assert _port_free(port)


def test_a_gateway_told_to_stop_while_its_workers_start_stops(tmp_path: Path):
    """SIGTERM the moment the first worker answers, while the second may still be starting: granian
    waited forever for a worker that missed the signal; now it is killed after the shutdown grace."""
    for attempt in range(2):
        port = free_port()
        args = ["serve", "--home", str(tmp_path / f"h{attempt}"), "--port", str(port), "--workers", "2"]
        grace = {**os.environ, "EXPORTGATE_SHUTDOWN_GRACE": "3"}
        process = subprocess.Popen([*EXPORTGATE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True, env=grace)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        process.terminate()
        try:
            process.wait(timeout=30)
        finally:
            left = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
            for pid in left:
                os.kill(int(pid), signal.SIGKILL)
        assert left == [], "a worker outlived its server"
