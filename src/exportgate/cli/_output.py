"""Rendering helpers shared by the commands: tables, JSON, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, NoReturn

import typer

from exportgate._text import printable as shown

__all__ = ["Format", "emit_json", "fail", "say", "shown", "table"]


class Format(str, Enum):
    text = "text"
    json = "json"


def say(text: str) -> None:
    """Print text that may hold values from files (names, ids) to a terminal safely."""
    typer.echo(shown(text))


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | frozenset | set):
        return shown(",".join(str(v) for v in value), one_line=True) or "-"
    return shown(str(value), one_line=True)


def fail(message: str, code: int = 1, more: Sequence[str] = ()) -> NoReturn:
    """Print one error line (then any further problems) to stderr and exit with ``code``."""
    sys.stderr.write(f"exportgate: error: {shown(message, one_line=True)}\n")
    for line in more:
        sys.stderr.write(f"{shown(line)}\n")
    raise typer.Exit(code)
