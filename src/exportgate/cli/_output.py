"""Rendering helpers shared by the commands: tables, JSON, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, NoReturn

import typer

__all__ = ["Format", "emit_json", "fail", "table"]


class Format(str, Enum):
    text = "text"
    json = "json"


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
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def fail(message: str, code: int = 1, more: Sequence[str] = ()) -> NoReturn:
    """Print one error line (then any further problems) to stderr and exit with ``code``."""
    sys.stderr.write(f"exportgate: error: {message}\n")
    for line in more:
        sys.stderr.write(f"{line}\n")
    raise typer.Exit(code)
