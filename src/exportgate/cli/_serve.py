"""``exportgate serve`` (the gateway) and ``exportgate sim serve`` (the model simulator)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from exportgate._asgi import check_listen
from exportgate._asgi import serve as serve_asgi
from exportgate._files import private_dir
from exportgate.config import ENV_PREFIX, Settings
from exportgate.errors import ConfigError
from exportgate.sim import PROFILES

from ._common import DatabaseUrlOption, HomeOption, ReusePortOption, settings_for

__all__ = ["serve", "sim_app"]


class AuditMode(str, Enum):
    strict = "strict"
    async_ = "async"


sim_app = typer.Typer(help="The built-in model simulator (OpenAI- and Anthropic-compatible).", no_args_is_help=True)


def serve(
    directive: Annotated[Path | None, typer.Option(help="Directive file [default: the bundled example].")] = None,
    upstream: Annotated[
        str | None, typer.Option(help="Default OpenAI-style upstream URL [default: simulator].")
    ] = None,
    upstreams: Annotated[Path | None, typer.Option("--upstreams", help="Routing file: models to upstreams.")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen port [default: 8080].")] = None,
    trusted_proxy: Annotated[
        list[str] | None, typer.Option("--trusted-proxy", help="CIDR whose X-Forwarded-For is believed (repeat).")
    ] = None,
    audit_url: Annotated[str | None, typer.Option("--audit-url", help="sqlite:///PATH or postgresql://...")] = None,
    audit_mode: Annotated[AuditMode | None, typer.Option("--audit-mode", help="strict (default) or async.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="Worker processes [default: 1].")] = None,
    reuse_port: ReusePortOption = False,
    monitor: Annotated[
        bool | None, typer.Option("--monitor", help="Run the evasion detectors in the background.")
    ] = None,
    monitor_config: Annotated[Path | None, typer.Option(help="Monitor config (detectors, actions, webhook).")] = None,
    database_url: DatabaseUrlOption = None,
    admin_host: Annotated[str | None, typer.Option(help="Admin API address [default: 127.0.0.1].")] = None,
    admin_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve the admin API (/admin/v1/) on this port.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run the gateway: every call authenticated, located, decided, audited, then forwarded or refused."""
    overrides: dict[str, object] = {
        "directive": str(directive) if directive else None,
        "upstream": upstream,
        "upstreams_file": str(upstreams) if upstreams else None,
        "host": host,
        "port": port,
        "trusted_proxies": trusted_proxy or None,
        "audit_url": audit_url,
        "audit_mode": audit_mode.value if audit_mode else None,
        "workers": workers,
        "monitor": monitor,
        "monitor_config": str(monitor_config) if monitor_config else None,
        "database_url": database_url,
        "admin_host": admin_host,
        "admin_port": admin_port,
    }
    settings = settings_for(home, **overrides)
    check_listen(settings.host, settings.port, reuse_port=reuse_port)  # before anything is built
    if settings.admin_port is not None:
        if (settings.admin_host, settings.admin_port) == (settings.host, settings.port):
            raise ConfigError("the admin API needs a port of its own (--admin-port), not the public one")
        check_listen(settings.admin_host, settings.admin_port)
    _check(settings)
    _export(overrides, home)
    typer.echo(
        f"exportgate gateway on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers != 1 else ''}, home {settings.home_path})",
        err=True,
    )
    admin = _start_admin(settings) if settings.admin_port is not None else None
    try:
        serve_asgi("exportgate.gateway:create_app", host=settings.host, port=settings.port,
                   workers=settings.workers, log_level=settings.log_level, reuse_port=reuse_port,
                   header_timeout=settings.header_timeout, shutdown_grace=settings.shutdown_grace)  # fmt: skip
    finally:
        if admin is not None:
            admin.terminate()
            try:
                admin.wait(timeout=settings.shutdown_grace)
            except subprocess.TimeoutExpired:
                admin.kill()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """The admin process ends with the gateway, however the gateway ends (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def _start_admin(settings: Settings) -> subprocess.Popen[bytes]:
    """The admin API in a process of its own, on its own port, with the same settings (the environment)."""
    command = [sys.executable, "-m", "exportgate", "admin", "serve", "--host", settings.admin_host, "--port",
               str(settings.admin_port)]  # fmt: skip
    typer.echo(f"exportgate admin API on http://{settings.admin_host}:{settings.admin_port}/admin/v1/", err=True)
    return subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: S603, PLW1509 - our own module


def _check(settings: Settings) -> None:
    """Validate everything a worker would build, in this process, so a bad setting is one clear line."""
    from exportgate.gateway import check_settings  # noqa: PLC0415 - heavy, only for serve

    if settings.workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    private_dir(settings.home_path)  # a home that cannot be made (a name too long, no permission) is one line here
    check_settings(settings)


def _export(overrides: dict[str, object], home: Path | None) -> None:
    """Hand the settings to the worker processes through their environment."""
    if home is not None:
        os.environ[ENV_PREFIX + "HOME"] = str(home.expanduser().resolve())
    for name, value in overrides.items():
        if value is None:
            continue
        text = " ".join(value) if isinstance(value, list) else str(value)
        if name in ("directive", "upstreams_file", "monitor_config"):
            text = str(Path(text).expanduser().resolve())
        os.environ[ENV_PREFIX + name.upper()] = text


@sim_app.command("serve")
def sim_serve(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port.")] = 9100,
    seed: Annotated[int, typer.Option(help="Seed: the same seed and conversation give the same reply.")] = 0,
    chunk_delay_ms: Annotated[float, typer.Option(min=0, help="Pause between streamed chunks, ms.")] = 0.0,
    latency_ms: Annotated[float, typer.Option(min=0, help="Delay before every model reply, ms.")] = 0.0,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    reuse_port: ReusePortOption = False,
    profile: Annotated[
        str, typer.Option(help="Vulnerability profile: hardened, typical or vulnerable (docs/evaluation.md).")
    ] = "typical",
) -> None:
    """Serve the simulated model on /v1/chat/completions, /v1/messages, /v1/models and friends."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown simulator profile {profile!r}; choose from {', '.join(PROFILES)}")
    os.environ["EXPORTGATE_SIM_PROFILE"] = profile
    os.environ["EXPORTGATE_SIM_SEED"] = str(seed)
    os.environ["EXPORTGATE_SIM_CHUNK_DELAY_MS"] = str(chunk_delay_ms)
    os.environ["EXPORTGATE_SIM_LATENCY_MS"] = str(latency_ms)
    check_listen(host, port, reuse_port=reuse_port)
    typer.echo(f"exportgate simulator on http://{host}:{port} (profile {profile}, seed {seed})", err=True)
    serve_asgi("exportgate.sim:app_from_env", host=host, port=port, workers=workers, reuse_port=reuse_port)
