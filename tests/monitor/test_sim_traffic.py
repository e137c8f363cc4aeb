"""``exportgate sim traffic`` keeps synthetic accounts out of real homes: a home of its own by default (a
real one is refused), ``--gateway`` only with that gateway's ``--home``; a gateway that is down or goes
down is one error line; Ctrl-C stops the gateway it started."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from exportgate.cli import main
from exportgate.errors import UpstreamError
from exportgate.geo import GeoLookup
from exportgate.identity import AccountStore
from exportgate.monitor import build_plan, send_plan
from tests.gateway.conftest import EXPORTGATE, free_port, serve
from tests.monitor.test_end_to_end import running_in

QUICK = ["--per-population", "1", "--hours", "1", "--time-scale", "3600"]  # 18 requests in about a second


def test_a_home_that_is_not_synthetic_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "real"
    home.mkdir()
    (home / "accounts.db").write_bytes(b"")
    assert main(["sim", "traffic", "--home", str(home), *QUICK]) == 1
    err = capsys.readouterr().err
    assert err.startswith("exportgate: error: ") and "not a synthetic home" in err and len(err.splitlines()) == 1
    assert [p.name for p in home.iterdir()] == ["accounts.db"]  # nothing added, not marked


def test_gateway_needs_the_gateway_home(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "traffic", "--gateway", f"http://127.0.0.1:{free_port()}", *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exportgate: error: ") and "--home" in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no default home written into


def test_a_gateway_that_is_down_is_one_line(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([*EXPORTGATE, "sim", "traffic", "--gateway", f"http://127.0.0.1:{free_port()}", "--home",
                           str(home), *QUICK], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("exportgate: error: the gateway at http://127.0.0.1:")
    assert "not answering" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr  # no traceback, no "Task exception was never retrieved"
    assert list(home.iterdir()) == []  # no accounts were created


def test_accounts_go_to_the_running_gateway_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32")
    try:
        code = main(["sim", "traffic", "--gateway", server.url, "--home", str(server.home), *QUICK,
                     "--labels", str(tmp_path / "labels.json")])  # fmt: skip
    finally:
        server.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"were added to {server.home}, the gateway's home" in err
    assert not (server.home / "synthetic").exists()  # a home in use is not marked synthetic
    assert f"--home {server.home} --since " in out and (tmp_path / "labels.json").exists()
    names = [a.name for a in AccountStore(server.home / "accounts.db").list_accounts()]
    assert sum(n.startswith("syn") for n in names) == 8 and "ada" in names


def test_sending_stops_at_the_first_failure(tmp_path: Path):
    """The gateway ends mid-run: nothing more is sent, the requests in flight are cancelled, one error."""
    server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32")
    accounts = AccountStore(server.home / "accounts.db")
    plan = build_plan(accounts, GeoLookup(), per_population=4, hours=12, time_scale=12 * 3600 / 4, seed=1)  # 4 s
    accounts.close()
    started: list[int] = []
    noise: list[dict[str, Any]] = []

    async def send() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: noise.append(context))
        try:
            await send_plan(plan, server.url, progress=started.append)
        finally:
            gc.collect()  # a task whose exception nobody retrieved complains when it is collected

    threading.Timer(1.0, server.stop).start()
    began = time.monotonic()
    with pytest.raises(UpstreamError, match=r"failed after \d+ of \d+ requests"):
        asyncio.run(send())
    gc.collect()
    assert time.monotonic() - began < 3.5  # it did not go on with the 4-second plan
    assert 0 < len(started) < len(plan.steps) and noise == []


def test_ctrl_c_stops_the_gateway_it_started(tmp_path: Path):
    home = tmp_path / "home"
    args = ["sim", "traffic", "--home", str(home), "--per-population", "1", "--hours", "1", "--time-scale", "60"]
    run = subprocess.Popen([*EXPORTGATE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    lines = [run.stderr.readline() for _ in range(2)]  # the plan, then the gateway it started
    assert lines[1].startswith("gateway on http://127.0.0.1:"), lines
    assert running_in(home)
    time.sleep(1.0)  # sending
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert (
        run.returncode == 130
        and err.startswith("exportgate: error: interrupted; the gateway it started is stopped")
        and len(err.splitlines()) == 1
    ), err
    assert running_in(home) == []


def test_a_gateway_that_does_not_stop_in_time_is_killed_without_a_traceback():
    """Found in CI: a gateway told to stop while it starts waits out its grace period; ``sim traffic`` then
    raised TimeoutExpired (a traceback) instead of killing it."""
    import signal
    import subprocess
    import sys

    from exportgate.cli._traffic import _stop

    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, start_new_session=True)  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == b"ready"
    _stop(stubborn, grace=0.5)
    assert stubborn.returncode == -signal.SIGKILL
    stubborn.stdout.close()
