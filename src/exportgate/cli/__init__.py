"""The ``exportgate`` command line: thin commands over the library.

Errors never print a traceback: an :class:`ExportgateError` or a usage
error becomes one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer vendors click

from exportgate import __version__
from exportgate.errors import ExportgateError

from . import (
    _accounts,
    _admin,
    _audit,
    _classify,
    _db,
    _directive,
    _eval,
    _geo,
    _keys,
    _monitor,
    _screening,
    _serve,
    _traffic,
)
from ._output import shown

__all__ = ["app", "main"]

app = typer.Typer(
    name="exportgate",
    help="Enforce export-control directives on frontier-model APIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(_directive.app, name="directive")
app.add_typer(_accounts.app, name="accounts")
app.add_typer(_geo.app, name="geo")
app.add_typer(_audit.app, name="audit")
app.add_typer(_serve.sim_app, name="sim")
_serve.sim_app.command("traffic")(_traffic.traffic)
app.add_typer(_eval.app, name="eval")
app.add_typer(_eval.evidence_app, name="evidence")
app.add_typer(_classify.app, name="classify")
app.add_typer(_keys.app, name="keys")
app.add_typer(_monitor.app, name="monitor")
app.add_typer(_db.app, name="db")
app.add_typer(_admin.app, name="admin")
app.add_typer(_screening.app, name="screening")
app.command("serve")(_serve.serve)
app.command("screen")(_screening.screen)


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(f"exportgate {__version__}")


def _print_version(value: bool) -> None:
    if value:
        version()
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Enforce export-control directives on frontier-model APIs."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns (and, as a script, exits with) the status code."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    unreadable = next((i for i, arg in enumerate(args, 1) if not _is_text(arg)), None)
    if unreadable is not None:  # bytes that are not UTF-8 reach Python as lone surrogates: refused here, once
        return _error(f"argument {unreadable} is not valid UTF-8 text", 2)
    with _terminate_as_interrupt():
        return _run(command, args)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager stopping a command, a container's shutdown) is handled as Ctrl-C: a
    campaign keeps its finished trials and says how to resume, a follow loop ends cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(command: Any, args: list[str]) -> int:
    try:
        result = command.main(args, prog_name="exportgate", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except NoArgsIsHelpError as exc:
        message = exc.format_message()
        sys.stderr.write(message if message.endswith("\n") else message + "\n")
        return 2
    except UsageError as exc:
        return _error(_one_line(exc.format_message()), 2)
    except ClickException as exc:
        return _error(_one_line(exc.format_message()), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _error("interrupted", 130)
    except ExportgateError as exc:
        return _error(str(exc) + _remedy(exc.remedy), 1)
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system said no (a name too long, no permission, a full disk): one line
        return _error(_os_error(exc), 1)
    return result if isinstance(result, int) else 0


def _remedy(remedy: tuple[str, str] | None) -> str:
    """A library error's remedy as this CLI's flag (every library parameter a remedy names is an option of
    the same name here)."""
    if remedy is None:
        return ""
    name, value = remedy
    flag = "--" + name.replace("_", "-")
    return f"; pass {flag}" if value == "True" else f"; pass {flag} {value}"


def _os_error(exc: OSError) -> str:
    name = str(exc.filename) if exc.filename is not None else ""
    where = f": {name[:100]}{'...' if len(name) > 100 else ''}" if name else ""
    return f"{exc.strerror or exc}{where}"


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"exportgate: error: {shown(message, one_line=True)}\n")
    return code
