"""``exportgate keys``: the home's one signing identity (audit checkpoints, evidence, classification
records), the keys it trusts, and rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exportgate._files import output_path
from exportgate.errors import ConfigError
from exportgate.signing import (
    KEYS_DIR,
    PUBLIC_FILE,
    home_public_key,
    key_id_of,
    passphrase_of,
    public_pem,
    rotate_signer,
    signer_for,
    trust_key,
    trusted_for,
)

from ._common import HomeOption, existing_home, settings_for
from ._output import Format, emit_json, table

__all__ = ["app"]

app = typer.Typer(help="Show, export, trust and rotate signing keys.", no_args_is_help=True)


@app.command("show")
def show(
    output: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Every public key this home signs with or trusts, with its id and where it comes from."""
    settings = existing_home(home)
    own = home_public_key(settings.home_path)
    trusted = trusted_for(settings)
    rows = [{"key_id": key_id, "role": "signs" if own is not None and key_id == key_id_of(own) else "trusted",
             "source": trusted.sources[key_id]} for key_id in trusted.ids()]  # fmt: skip
    if output is Format.json:
        emit_json({"signing_key": key_id_of(own) if own is not None else None, "keys": rows})
        return
    if own is None:
        typer.echo("this home has no signing key yet: one is made on first use, or now with: exportgate keys create")
    else:
        typer.echo(f"signing key {key_id_of(own)} ({settings.home_path / KEYS_DIR / PUBLIC_FILE})")
    if rows:
        table(("key id", "role", "source"), [(r["key_id"], r["role"], r["source"]) for r in rows])


@app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM here instead of printing it.")] = None,
    home: HomeOption = None,
) -> None:
    """Print this home's public signing key (PEM), for verifiers elsewhere to pin."""
    own = home_public_key(existing_home(home).home_path)
    if own is None:
        raise ConfigError("this home has no signing key yet (exportgate keys create makes one)")
    if out is None:
        typer.echo(public_pem(own), nl=False)
        return
    output_path(out, "the public key").write_text(public_pem(own), encoding="ascii")
    typer.echo(f"wrote public key {key_id_of(own)} to {out}", err=True)


@app.command("create")
def create(home: HomeOption = None) -> None:
    """Make this home's signing key now (encrypted when signing_key_passphrase is set); idempotent."""
    signer = signer_for(settings_for(home))
    typer.echo(f"signing key {signer.key_id}")


@app.command("trust")
def trust(
    key: Annotated[Path, typer.Argument(help="A signer's Ed25519 public key (PEM).")],
    home: HomeOption = None,
) -> None:
    """Trust a signer's public key in this home (copied into HOME/keys/trusted/)."""
    key_id = trust_key(existing_home(home).home_path, key)
    typer.echo(f"trusted key {key_id}")


@app.command("rotate")
def rotate(
    yes: Annotated[bool, typer.Option("--yes", help="Rotate (without it, say what would happen).")] = False,
    home: HomeOption = None,
) -> None:
    """Retire the signing key (its public half stays trusted here, so what it signed still verifies) and
    make a new one. Restart running gateways so they sign with it; give verifiers the new public key."""
    settings = existing_home(home)
    own = home_public_key(settings.home_path)
    if not yes:
        current = key_id_of(own) if own is not None else "none"
        typer.echo(f"would retire signing key {current} and make a new one; add --yes to rotate")
        return
    retired, signer = rotate_signer(settings.home_path, passphrase_of(settings))
    typer.echo(f"retired {retired or 'nothing'}; new signing key {signer.key_id}")
