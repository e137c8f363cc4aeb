"""Options and parsers shared by several commands."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from typer._click.core import Context  # typer vendors click
from typer.core import TyperGroup

from exportgate._types import KycLevel, ScreeningStatus
from exportgate.actions import Actor
from exportgate.config import Settings
from exportgate.errors import ConfigError
from exportgate.policy import is_country_code

__all__ = [
    "ByOption",
    "DatabaseUrlOption",
    "DefaultCommandGroup",
    "HomeOption",
    "NoteOption",
    "ReusePortOption",
    "cli_actor",
    "existing_home",
    "parse_country",
    "parse_countries",
    "parse_duration",
    "parse_kyc",
    "parse_screening",
    "parse_yes_no",
    "settings_for",
    "state_home",
]

ReusePortOption = Annotated[
    bool, typer.Option("--reuse-port", help="Share the port with another server already on it (on purpose).")
]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept in the audit record of the action).")]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who acts, for the audit record [default: your login name].")
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Shared state: postgresql://... [env: EXPORTGATE_DATABASE_URL; default: "
                 "SQLite in HOME]", show_default=False),
]
HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Data directory [env: EXPORTGATE_HOME; default: ./.exportgate]", show_default=False),
]


def cli_actor(by: str | None) -> Actor:
    """The operator at this terminal: a local operator holds the database's credentials, so the admin role."""
    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = f"uid-{os.getuid()}"
    if not by.strip() or not by.isprintable() or len(by) > 200:
        raise typer.BadParameter("must be printable, 1 to 200 characters", param_hint="--by")
    return Actor(by.strip(), "admin", "cli")


def settings_for(home: Path | None, **overrides: object) -> Settings:
    return Settings({"home": str(home) if home else None, **overrides})


def existing_home(home: Path | None, **overrides: object) -> Settings:
    """Settings for a read-only command: the home must already exist (such a command never creates one)."""
    settings = settings_for(home, **overrides)
    if not settings.home_path.is_dir():
        raise ConfigError(f"no exportgate home at {settings.home_path} (check --home or EXPORTGATE_HOME)")
    return settings


def state_home(home: Path | None, **overrides: object) -> Settings:
    """Settings for a command that reads the state only: with a database_url (flag or environment) the
    state is there and no home need exist here; without one, the home must exist (its SQLite files)."""
    settings = settings_for(home, **overrides)
    return settings if settings.database_url else existing_home(home, **overrides)


def parse_country(value: str, option: str) -> str:
    code = value.strip().upper()
    if not is_country_code(code):
        raise typer.BadParameter(f"unknown country code {value!r} (ISO 3166-1 alpha-2 expected)", param_hint=option)
    return code


def parse_countries(values: list[str] | None, option: str) -> list[str]:
    codes: list[str] = []
    for value in values or []:
        codes.extend(parse_country(part, option) for part in value.replace(",", " ").split())
    return codes


def parse_kyc(value: str | None) -> KycLevel | None:
    if value is None:
        return None
    try:
        return KycLevel.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--kyc") from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _age_ns(text: str) -> int | None:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` in nanoseconds; None for anything else."""
    if len(text) > 1 and text[-1] in _UNITS and text[:-1].isdigit():
        return int(text[:-1]) * _UNITS[text[-1]] * 1_000_000_000
    return None


def parse_duration(value: str, option: str) -> int:
    """Seconds (``900``) or an age (``15m``, ``2h``) as nanoseconds."""
    text = value.strip()
    age = int(text) * 1_000_000_000 if text.isdigit() else _age_ns(text)
    if age is None:
        raise typer.BadParameter(f"expected seconds or an age like 15m, not {value!r}", param_hint=option)
    return age


def parse_time(value: str | None, option: str, now_ns: int | None = None) -> int | None:
    """An ISO 8601 date/time (UTC unless it says otherwise) or an age (``90s``, ``30m``, ``24h``, ``7d``,
    ``2w``) as epoch nanoseconds."""
    if value is None:
        return None
    text = value.strip()
    age = _age_ns(text)
    if age is not None:
        return (time.time_ns() if now_ns is None else now_ns) - age
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO date/time or an age like 24h, not {value!r}", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def parse_screening(value: str | None) -> ScreeningStatus | None:
    if value is None:
        return None
    try:
        return ScreeningStatus(value.strip().lower())
    except ValueError:
        raise typer.BadParameter("expected clear, hit or pending", param_hint="--screening") from None


def parse_yes_no(value: str | None, option: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("yes", "y", "true"):
        return True
    if lowered in ("no", "n", "false"):
        return False
    raise typer.BadParameter(f"expected yes or no, not {value!r}", param_hint=option)


class DefaultCommandGroup(TyperGroup):
    """A command group whose ``default`` command runs when the first argument names no subcommand
    (``exportgate classify EVIDENCE...`` is ``classify run EVIDENCE...``)."""

    default = "run"
    default_without_args = False  # True: no arguments at all also run the default command

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if (args and args[0] not in self.commands and args[0] not in ("--help", "-h")) or (
            not args and self.default_without_args
        ):
            args = [self.default, *args]
        return list(super().parse_args(ctx, args))
