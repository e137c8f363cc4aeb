"""``exportgate geo lookup|info``."""

from __future__ import annotations

from typing import Annotated

import typer

from exportgate.geo import geo_from_settings

from ._common import HomeOption, settings_for
from ._output import Format, emit_json, table

app = typer.Typer(help="Look up client addresses as the gateway does.", no_args_is_help=True)


@app.command("lookup")
def lookup(
    addresses: Annotated[list[str], typer.Argument(help="IP addresses.", show_default=False)],
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Country and anonymizer flags for each address."""
    geo = geo_from_settings(settings_for(home))
    rows = []
    for address in addresses:
        info = geo.lookup(address)
        flags = None if info.anonymizers is None else sorted(info.anonymizers)
        rows.append({"ip": address, "country": info.country, "anonymizers": flags, "source": info.source})
    if output is Format.json:
        emit_json(rows)
    else:
        table(
            ["ip", "country", "anonymizers", "source"],
            [[r["ip"], r["country"], r["anonymizers"], r["source"]] for r in rows],
        )


@app.command("info")
def info(home: HomeOption = None) -> None:
    """Which data answers lookups: packages, versions, build dates, .mmdb files."""
    emit_json(geo_from_settings(settings_for(home)).info())
