"""``exportgate audit verify|export|tail|prune|public-key``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from exportgate.audit import (
    AuditStore,
    ChainRow,
    RecordFilter,
    Signer,
    load_heads,
    trusted_keys,
    verify_store,
)
from exportgate.audit import open_store as _open_store
from exportgate.errors import StoreError

from ._common import HomeOption, parse_time, settings_for
from ._output import Format, emit_json, fail, table

app = typer.Typer(help="Verify, export, tail and prune the audit trail.", no_args_is_help=True)

UrlOption = Annotated[
    str | None, typer.Option("--audit-url", help="sqlite:///PATH or postgresql://... [default: HOME/audit.db]")
]
CSV_COLUMNS = (
    "time",
    "writer",
    "seq",
    "request_id",
    "account",
    "key_id",
    "client_ip",
    "country",
    "anonymizers",
    "requested_model",
    "model",
    "tier",
    "decision",
    "reasons",
    "http_status",
    "upstream_status",
    "latency_ms",
    "directive_id",
    "directive_version",
    "directive_sha256",
    "hash",
)


def _store(home: Path | None, url: str | None, *, read_only: bool = False) -> tuple[AuditStore, Path]:
    settings = settings_for(home, audit_url=url)
    effective = settings.audit_url
    if effective is None and read_only:
        path = settings.home_path.expanduser().resolve() / "audit.db"
        if not path.exists():
            raise StoreError(f"no audit store at {path}")
        effective = f"sqlite:///{path}?mode=ro"
    return _open_store(effective, settings.home_path), settings.home_path


@app.command("verify")
def verify(
    audit_url: UrlOption = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key", help="Trust this Ed25519 public key (PEM; repeat). The home's own key is trusted too."
        ),
    ] = None,
    output: Annotated[Format, typer.Option("--format")] = Format.text,
    home: HomeOption = None,
) -> None:
    """Check every chain and signature. Exit 0 intact, 1 tampered, 2 cannot read."""
    try:
        store, home_path = _store(home, audit_url, read_only=True)
        try:
            report = verify_store(
                store,
                trusted_keys(home_path, public_key or []),
                load_heads(home_path / "audit", store),
            )
        finally:
            store.close()
    except StoreError as exc:
        fail(f"cannot read the audit store: {exc}", code=2)
        return
    if output is Format.json:
        emit_json(report.as_dict())
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: Any) -> None:
    rate = report.rows / report.seconds if report.seconds else 0.0
    verdict = "intact" if report.ok else "TAMPERED"
    typer.echo(
        f"{verdict}: {report.rows} rows in {len(report.chains)} chains checked in {report.seconds:.2f} s "
        f"({rate:,.0f} rows/s)"
    )
    for chain in report.chains:
        state = "closed" if chain.closed else f"open, {chain.unsigned_tail} unsigned after the last checkpoint"
        typer.echo(
            f"  {chain.writer}: records {chain.first_seq}..{chain.last_seq}, {chain.checkpoints} checkpoints, {state}"
        )
    for kind, problem in report.first_by_kind().items():
        typer.echo(f"  {kind}: first bad record {problem.where}: {problem.detail}")


def _records(rows: Iterator[ChainRow]) -> Iterator[tuple[ChainRow, dict[str, Any] | None]]:
    for row in rows:
        try:
            yield row, json.loads(row.body)
        except ValueError:
            yield row, None


@app.command("export")
def export(
    output_format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Start: ISO date/time, or an age such as 24h, 7d.")] = None,
    until: Annotated[str | None, typer.Option(help="End (exclusive): ISO date/time or an age.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this canonical model.")] = None,
    decision: Annotated[str | None, typer.Option(help="allow or deny.")] = None,
    checkpoints: Annotated[bool, typer.Option("--checkpoints", help="Include signed checkpoints.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    audit_url: UrlOption = None,
    home: HomeOption = None,
) -> None:
    """Export records (each with its chain hash) as JSON lines or CSV."""
    if output_format not in ("jsonl", "csv"):
        raise typer.BadParameter("expected jsonl or csv", param_hint="--format")
    if decision not in (None, "allow", "deny"):
        raise typer.BadParameter("expected allow or deny", param_hint="--decision")
    where = RecordFilter(
        since_ns=parse_time(since, "--since"),
        until_ns=parse_time(until, "--until"),
        account=account,
        model=model,
        decision=decision,
        include_checkpoints=checkpoints,
    )
    store, _ = _store(home, audit_url, read_only=True)
    handle = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    bad: list[str] = []
    try:
        written = _write(handle, output_format, _records(store.query(where)), bad)
    finally:
        store.close()
        if out:
            handle.close()
    if out:
        typer.echo(f"exported {written} records to {out}", err=True)
    if bad:
        fail(
            f"{len(bad)} record(s) could not be decoded and were not exported: {', '.join(bad[:5])}"
            " (run 'exportgate audit verify')"
        )


def _write(
    handle: Any, output_format: str, records: Iterator[tuple[ChainRow, dict[str, Any] | None]], bad: list[str]
) -> int:
    writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore") if output_format == "csv" else None
    if writer is not None:
        writer.writeheader()
    written = 0
    for row, record in records:
        if record is None:
            bad.append(f"{row.writer}:{row.seq}")
            continue
        if writer is None:
            handle.write(json.dumps({**record, "prev": row.prev, "hash": row.hash}, ensure_ascii=False) + "\n")
        else:
            writer.writerow(_flat(record, row))
        written += 1
    return written


def _flat(record: dict[str, Any], row: ChainRow) -> dict[str, Any]:
    flat = dict(record)
    flat["time"] = _iso(int(record.get("time_ns", row.time_ns)))
    flat["anonymizers"] = ";".join(record.get("anonymizers") or [])
    flat["reasons"] = ";".join(str(r.get("code")) for r in record.get("reasons") or [])
    flat["hash"] = row.hash
    return flat


def _iso(time_ns: int) -> str:
    stamp = dt.datetime.fromtimestamp(time_ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{time_ns % 1_000_000_000:09d}Z"


@app.command("tail")
def tail(
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many of the newest records.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl-C stops).")] = False,
    audit_url: UrlOption = None,
    home: HomeOption = None,
) -> None:
    """The newest records, as a table."""
    store, _ = _store(home, audit_url, read_only=True)
    try:
        rows = list(store.query(RecordFilter(), limit=max(lines, 0), newest_first=True))[::-1]
        _print_rows(rows)
        last_ns = rows[-1].time_ns if rows else 0
        seen = {(r.writer, r.seq) for r in rows}
        while follow:
            time.sleep(1.0)
            fresh = [r for r in store.query(RecordFilter(since_ns=last_ns)) if (r.writer, r.seq) not in seen]
            if fresh:
                _print_rows(fresh, header=False)
                last_ns = fresh[-1].time_ns
                seen = {(r.writer, r.seq) for r in fresh}
    finally:
        store.close()


def _print_rows(rows: list[ChainRow], header: bool = True) -> None:
    shown = []
    for row, record in _records(r for r in rows if r.kind == "decision"):
        reasons = ",".join(str(r.get("code")) for r in (record or {}).get("reasons") or []) if record else "?"
        shown.append(
            [
                _iso(row.time_ns)[:23] + "Z",
                f"{row.writer}:{row.seq}",
                row.account,
                row.model,
                row.decision,
                (record or {}).get("client_ip"),
                (record or {}).get("country"),
                reasons,
            ]
        )
    if header or shown:
        table(["time", "record", "account", "model", "decision", "ip", "country", "reasons"], shown)


@app.command("prune")
def prune(
    before: Annotated[str, typer.Option(help="Delete records older than this ISO date/time or age.")],
    retention_years: Annotated[
        int | None, typer.Option(help="Retention period [default: 5, or EXPORTGATE_AUDIT_RETENTION_YEARS].")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do it (otherwise only say what would go).")] = False,
    audit_url: UrlOption = None,
    home: HomeOption = None,
) -> None:
    """Delete records older than --before, never any younger than the retention period (15 CFR 762.6).

    Each chain is cut at a signed checkpoint, which stays as the chain's new, verifiable start.
    """
    settings = settings_for(home, audit_url=audit_url)
    years = retention_years if retention_years is not None else int(settings.audit_retention_years)
    cutoff_ns = parse_time(before, "--before")
    assert cutoff_ns is not None
    now = dt.datetime.now(dt.UTC)
    oldest_allowed = (
        now.replace(year=now.year - years)
        if not (now.month == 2 and now.day == 29)
        else now.replace(year=now.year - years, day=28)
    )
    if cutoff_ns > int(oldest_allowed.timestamp() * 1e9):
        fail(
            f"refusing to prune: --before {before} is within the {years}-year retention period "
            f"(records from {oldest_allowed.date()} on must be kept)"
        )
    store = _open_store(settings.audit_url, settings.home_path)
    try:
        cuts = store.checkpoints_before(cutoff_ns)
        if not yes:
            typer.echo(
                f"would cut {len(cuts)} chain(s) at their last checkpoint before {_iso(cutoff_ns)}; add --yes to delete"
            )
            return
        deleted = sum(store.prune(writer, seq, f"before {_iso(cutoff_ns)}") for writer, seq in cuts.items())
    finally:
        store.close()
    typer.echo(f"pruned {deleted} rows from {len(cuts)} chain(s)")


@app.command("public-key")
def public_key(
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM here.")] = None,
    home: HomeOption = None,
) -> None:
    """Print this home's checkpoint signing public key (PEM), for verifiers elsewhere."""
    signer = Signer.load_or_create(settings_for(home).home_path / "audit")
    if out:
        out.write_text(signer.public_pem())
        typer.echo(f"wrote public key {signer.key_id} to {out}", err=True)
    else:
        typer.echo(signer.public_pem(), nl=False)
