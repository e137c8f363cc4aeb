"""``exportgate sim traffic``: labelled synthetic populations sent through a real gateway.

By default the traffic goes to a home of its own (marked ``HOME/synthetic``) through a gateway this
command starts on that home and stops at the end, so no synthetic account or record lands in a real home.
``--gateway URL`` sends it to a running gateway instead; its home (``--home``) then gets the accounts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer

from exportgate._files import private_dir, private_file
from exportgate._http import parse_base_url
from exportgate.config import ENV_PREFIX
from exportgate.errors import ConfigError, UpstreamError
from exportgate.geo import geo_from_settings
from exportgate.identity import account_store
from exportgate.monitor import SYNTHETIC, Plan, build_plan, is_synthetic, send_plan

from ._common import settings_for
from ._output import fail

__all__ = ["traffic"]

MARKER = "This home holds synthetic accounts and traffic from exportgate sim traffic; nothing in it is real.\n"
STARTUP_S = 60.0


GatewayOption = Annotated[
    str | None,
    typer.Option(help="A running gateway's base URL (it must trust 127.0.0.1 as a proxy) [default: start one on a "
                 "home of its own]."),
]  # fmt: skip
TrafficHomeOption = Annotated[
    Path | None,
    typer.Option(help="Where the accounts go: the gateway's home with --gateway (required), else a new or "
                 "synthetic home [default: ./sim-traffic-<UTC time>].", show_default=False),
]  # fmt: skip
LabelsOption = Annotated[
    Path | None,
    typer.Option(help="Where to write the accounts' labels (for monitor --labels) [default: HOME/labels.json; "
                 "with --gateway ./traffic-labels.json].", show_default=False),
]  # fmt: skip


def traffic(
    gateway: GatewayOption = None,
    home: TrafficHomeOption = None,
    labels: LabelsOption = None,
    per_population: Annotated[int, typer.Option(min=1, help="Accounts per population.")] = 3,
    hours: Annotated[float, typer.Option(min=1.0, help="Simulated hours.")] = 12.0,
    time_scale: Annotated[float, typer.Option(min=1.0, help="Simulated seconds per real second.")] = 3600.0,
    seed: Annotated[int, typer.Option(help="Seed for addresses and timings.")] = 0,
) -> None:
    """Create labelled synthetic accounts and send their traffic through a gateway in compressed time."""
    if gateway is not None and home is None:
        raise typer.BadParameter("--gateway needs --home: the gateway's home, where the synthetic accounts go",
                                 param_hint="--home")  # fmt: skip
    home = home or Path(f"sim-traffic-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    if gateway is not None:
        _check_up(gateway)
    _prepare(home, own=gateway is None)
    prefix = f"syn{int(time.time())}-"
    plan = _plan(home, prefix, per_population, hours, time_scale, seed)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if gateway is not None:
        typer.echo(f"{len(plan.members)} synthetic accounts ({prefix}*) were added to {home}, the gateway's home",
                   err=True)  # fmt: skip
    try:
        statuses = _send(plan, home, gateway)
    except KeyboardInterrupt:
        stopped = "" if gateway else "the gateway it started is stopped; "
        fail(f"interrupted; {stopped}the synthetic accounts stay in {home}", 130)
    labels = labels or (home / "labels.json" if gateway is None else Path("traffic-labels.json"))
    _write_private(labels, orjson.dumps(plan.labels(), option=orjson.OPT_INDENT_2))
    shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    typer.echo(f"sent {sum(statuses.values())} requests ({shown}); labels in {labels}")
    typer.echo("then: " + shlex.join(_monitor_command(home, started, time_scale, labels)))


def _prepare(home: Path, *, own: bool) -> None:
    """Create the home (0700) and mark it synthetic if it is new or empty. A home of its own must be that,
    or a synthetic home already: a real home is refused."""
    if home.exists() and not home.is_dir():
        raise ConfigError(f"{home} is not a directory")
    empty = not home.exists() or not any(home.iterdir())
    if own and not empty and not is_synthetic(home):
        raise ConfigError(f"{home} is not empty and not a synthetic home (no {home / SYNTHETIC}); give sim traffic "
                          "a new --home, or --gateway and --home to use a running gateway's")  # fmt: skip
    private_dir(home)
    if empty:
        _write_private(home / SYNTHETIC, MARKER.encode())


def _plan(home: Path, prefix: str, per_population: int, hours: float, time_scale: float, seed: int) -> Plan:
    settings = settings_for(home)
    accounts = account_store(settings)
    try:
        plan = build_plan(accounts, geo_from_settings(settings), per_population=per_population, hours=hours,
                          time_scale=time_scale, seed=seed, prefix=prefix)  # fmt: skip
    finally:
        accounts.close()
    typer.echo(f"{len(plan.members)} accounts, {len(plan.steps)} requests over {hours:g} simulated hours "
               f"({hours * 3600 / time_scale:.1f} s)", err=True)  # fmt: skip
    return plan


def _send(plan: Plan, home: Path, gateway: str | None) -> dict[str, int]:
    """The plan through ``gateway``, or through a gateway started on ``home`` for the while."""
    if gateway is not None:
        return asyncio.run(send_plan(plan, gateway))
    with _own_gateway(home) as url:
        return asyncio.run(send_plan(plan, url))


def _monitor_command(home: Path, started: dt.datetime, time_scale: float, labels: Path) -> list[str]:
    command = ["exportgate", "monitor", "--home", str(home), "--since", started.isoformat().replace("+00:00", "Z"),
               "--time-scale", f"{time_scale:g}", "--labels", str(labels)]  # fmt: skip
    if ENV_PREFIX + "AUDIT_URL" in os.environ:  # the records are in HOME/audit.db, not where the environment says
        command += ["--audit-url", f"sqlite:///{home.resolve() / 'audit.db'}"]
    return command


def _write_private(path: Path, data: bytes) -> None:
    with private_file(path, "wb") as out:
        out.write(data)


@contextlib.contextmanager
def _own_gateway(home: Path) -> Iterator[str]:
    """``exportgate serve`` on ``home`` and a free loopback port, trusting loopback's X-Forwarded-For, logging
    to HOME/gateway.log; stopped when the block ends, however it ends (an error, Ctrl-C)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = home / "gateway.log"
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        process = subprocess.Popen(  # noqa: S603 - this Python, this package, arguments built here
            [sys.executable, "-m", "exportgate.cli", "serve", "--home", str(home), "--port", str(port),
             "--trusted-proxy", "127.0.0.1/32"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=_gateway_env(), start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(out)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, process, log)
        typer.echo(f"gateway on {url} (home {home}, log {log})", err=True)
        yield url
    finally:
        _stop(process)


def _gateway_env() -> dict[str, str]:
    """This environment without exportgate settings, so the gateway's home, audit store and directive are
    the synthetic home's and the bundled example's; the geo settings stay (the addresses were drawn from them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) or k.startswith(ENV_PREFIX + "GEO_")}


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as the traffic goes: no proxy from the env


def _problem(url: str) -> str | None:
    """Why the gateway at base URL ``url`` does not answer ``/healthz`` (None when it does)."""
    try:
        origin, prefix = parse_base_url(url)  # the same rule as for the traffic: a trailing /v1 is the API's
        with _DIRECT.open(origin.url(prefix + b"/healthz"), timeout=2):
            return None
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError, ConfigError) as exc:
        return str(getattr(exc, "reason", None) or exc)


def _check_up(gateway: str) -> None:
    if not gateway.startswith(("http://", "https://")):
        raise typer.BadParameter(f"expected an http(s) URL, not {gateway!r}", param_hint="--gateway")
    problem = _problem(gateway)
    if problem is not None:
        raise UpstreamError(f"the gateway at {gateway} is not answering ({problem}); no accounts were created")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while _problem(url) is not None:
        if process.poll() is not None:
            raise UpstreamError(f"the gateway for the synthetic home ended (status {process.returncode}); see {log}")
        if time.monotonic() > deadline:
            raise UpstreamError(f"the gateway for the synthetic home did not start in {STARTUP_S:g} s; see {log}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """End the gateway's process group (its workers too): SIGTERM, then SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:  # a gateway told to stop while it starts may wait out its grace period
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except BaseException:  # Ctrl-C while waiting: end it now, and let the interrupt go on
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
