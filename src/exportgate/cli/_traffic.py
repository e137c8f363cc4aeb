"""``exportgate sim traffic``: labelled synthetic populations sent through a real gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer

from exportgate.geo import geo_from_settings
from exportgate.identity import account_store
from exportgate.monitor import build_plan, send_plan

from ._common import HomeOption, settings_for

__all__ = ["traffic"]


def traffic(
    gateway: Annotated[str, typer.Option(help="Gateway base URL; it must trust 127.0.0.1 as a proxy.")],
    labels: Annotated[Path, typer.Option(help="Where to write the accounts' labels (for monitor --labels).")] = Path(
        "traffic-labels.json"
    ),
    per_population: Annotated[int, typer.Option(min=1, help="Accounts per population.")] = 3,
    hours: Annotated[float, typer.Option(min=1.0, help="Simulated hours.")] = 12.0,
    time_scale: Annotated[float, typer.Option(min=1.0, help="Simulated seconds per real second.")] = 3600.0,
    seed: Annotated[int, typer.Option(help="Seed for addresses and timings.")] = 0,
    home: HomeOption = None,
) -> None:
    """Create labelled accounts in the gateway's HOME and send their traffic in compressed time."""
    settings = settings_for(home)
    accounts = account_store(settings)
    try:
        plan = build_plan(accounts, geo_from_settings(settings), per_population=per_population, hours=hours,
                          time_scale=time_scale, seed=seed)  # fmt: skip
    finally:
        accounts.close()
    real = hours * 3600 / time_scale
    typer.echo(f"{len(plan.members)} accounts, {len(plan.steps)} requests over {hours:g} simulated hours "
               f"({real:.1f} s)", err=True)  # fmt: skip
    statuses = asyncio.run(send_plan(plan, gateway))
    labels.write_bytes(orjson.dumps(plan.labels(), option=orjson.OPT_INDENT_2))
    shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    typer.echo(f"sent {sum(statuses.values())} requests ({shown}); labels in {labels}")
    typer.echo(f"then: exportgate monitor --since 1h --time-scale {time_scale:g} --labels {labels}")
