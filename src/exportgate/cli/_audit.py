"""``exportgate audit verify|export|tail|prune|public-key``."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO, cast

import typer

from exportgate._files import private_file
from exportgate.audit import (
    CSV_COLUMNS,
    AuditStore,
    ChainRow,
    Exported,
    RecordFilter,
    csv_row,
    export_rows,
    exported,
    iso_time,
    jsonl_line,
    load_heads,
    row_with_outcome,
    store_label,
    verify_store,
)
from exportgate.audit import open_store as _open_store
from exportgate.errors import StoreError
from exportgate.signing import trusted_for

from ._common import HomeOption, parse_duration, parse_time, settings_for
from ._keys import export as export_key
from ._output import Format, emit_json, fail, table

app = typer.Typer(help="Verify, export, tail and prune the audit trail.", no_args_is_help=True)

UrlOption = Annotated[
    str | None, typer.Option("--audit-url", help="sqlite:///PATH or postgresql://... [default: HOME/audit.db]")
]


def _store(home: Path | None, url: str | None, *, read_only: bool = False) -> tuple[AuditStore, Path]:
    """The audit store; ``read_only`` never creates one (a store that is not there is an error)."""
    settings = settings_for(home, audit_url=url)
    if read_only and settings.audit_url is None and not (settings.home_path / "audit.db").is_file():
        raise StoreError(f"no audit store at {settings.home_path.expanduser().resolve() / 'audit.db'}")
    return _open_store(settings.audit_url, settings.home_path, read_only=read_only), settings.home_path


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
                trusted_for(settings_for(home, audit_url=audit_url), public_key or []),
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
        f"{verdict}: {report.rows} rows in {len(report.chains)} chain{'s' if len(report.chains) != 1 else ''} "
        f"checked in {report.seconds:.2f} s "
        f"({rate:,.0f} rows/s)"
    )
    for chain in report.chains:
        state = "closed" if chain.closed else f"open, {chain.unsigned_tail} unsigned after the last checkpoint"
        typer.echo(
            f"  {chain.writer}: records {chain.first_seq}..{chain.last_seq}, {chain.checkpoints} checkpoints, {state}"
        )
    for kind, problem in report.first_by_kind().items():
        typer.echo(f"  {kind}: first bad record {problem.where}: {problem.detail}")


@app.command("export")
def export(
    output_format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Start: ISO date/time, or an age such as 24h, 7d.")] = None,
    until: Annotated[str | None, typer.Option(help="End (exclusive): ISO date/time or an age.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this canonical model.")] = None,
    decision: Annotated[str | None, typer.Option(help="allow or deny.")] = None,
    checkpoints: Annotated[bool, typer.Option("--checkpoints", help="Include signed checkpoints.")] = False,
    record: Annotated[
        list[str] | None,
        typer.Option("--record", metavar="WRITER:SEQ", help="Exactly this record, e.g. an alert's evidence (repeat)."),
    ] = None,
    join_outcomes: Annotated[
        bool, typer.Option("--join-outcomes", help="JSONL: add each decision's outcome (CSV always has it).")
    ] = False,
    outcome_wait: Annotated[
        str, typer.Option(help="How long an outcome may follow its decision: seconds, or an age like 15m.")
    ] = "15m",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    audit_url: UrlOption = None,
    home: HomeOption = None,
) -> None:
    """Export records (each with its chain hash) as JSON lines or CSV; CSV joins allowed decisions' outcomes."""
    if output_format not in ("jsonl", "csv"):
        raise typer.BadParameter("expected jsonl or csv", param_hint="--format")
    if decision not in (None, "allow", "deny"):
        raise typer.BadParameter("expected allow or deny", param_hint="--decision")
    ids = [_record_id(text) for text in record or []]
    if ids and (since or until or account or model or decision or checkpoints):
        raise typer.BadParameter("takes no --since, --until, --account, --model, --decision or --checkpoints",
                                 param_hint="--record")  # fmt: skip
    where = RecordFilter(
        since_ns=parse_time(since, "--since"),
        until_ns=parse_time(until, "--until"),
        account=account,
        model=model,
        decision=decision,
        include_checkpoints=checkpoints,
    )
    horizon = parse_duration(outcome_wait, "--outcome-wait")
    joined = output_format == "csv" or join_outcomes
    if out is not None:
        _check_out(out)
    store, _ = _store(home, audit_url, read_only=True)
    bad: list[str] = []
    try:
        items = _looked_up(store, ids, horizon, joined) if ids else _selected(store, where, horizon, joined)
        with _output(out) as handle:
            written = _write(handle, output_format, items, joined, bad)
    finally:
        store.close()
    if out:
        typer.echo(f"exported {written} records to {out}", err=True)
    if bad:
        fail(
            f"{len(bad)} record(s) could not be decoded and were not exported: {', '.join(bad[:5])}"
            " (run 'exportgate audit verify')"
        )


def _record_id(text: str) -> tuple[str, int]:
    writer, _, seq = text.strip().rpartition(":")
    if not writer or not seq.isdigit():
        raise typer.BadParameter(f"expected WRITER:SEQ (an alert's evidence id), not {text!r}", param_hint="--record")
    return writer, int(seq)


def _looked_up(store: AuditStore, ids: list[tuple[str, int]], horizon_ns: int, joined: bool) -> list[Exported]:
    """Exactly the rows named, in the order named; any that is not in the store fails before anything is written."""
    rows = [store.get_row(writer, seq) for writer, seq in ids]
    missing = [f"{writer}:{seq}" for (writer, seq), row in zip(ids, rows, strict=True) if row is None]
    if missing:
        fail(f"no record {', '.join(missing)} in the audit store {store_label(store.url)}")
    found = [row for row in rows if row is not None]
    return [row_with_outcome(store, row, horizon_ns) if joined else exported(row) for row in found]


def _selected(store: AuditStore, where: RecordFilter, horizon_ns: int, joined: bool) -> Iterator[Exported]:
    if joined:
        return export_rows(store, where, horizon_ns)
    return (exported(row) for row in store.query(where))  # the raw records, outcomes rows as they are


def _check_out(out: Path) -> None:
    """Refuse an --out that cannot be written before reading anything."""
    if out.is_dir():
        fail(f"cannot write {out}: it is a directory")
    if not out.parent.is_dir():
        fail(f"cannot write {out}: directory {out.parent} does not exist")


@contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    """stdout, or a temporary file beside ``out`` that becomes ``out`` only when everything was written."""
    if out is None:
        yield sys.stdout
        return
    partial = out.with_name(f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        handle = cast(TextIO, private_file(partial, "x", newline=""))  # citizenships and KYC: owner-only
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    try:
        with handle:
            yield handle
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write(handle: TextIO, output_format: str, items: Iterable[Exported], joined: bool, bad: list[str]) -> int:
    writer = csv.writer(handle) if output_format == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    written = 0
    for item in items:
        if item.record is None:
            bad.append(f"{item.row.writer}:{item.row.seq}")
            continue
        if writer is None:
            handle.write(json.dumps(jsonl_line(item, outcome=joined), ensure_ascii=False) + "\n")
        else:
            writer.writerow(csv_row(item))
        written += 1
    return written


@app.command("tail")
def tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many of the newest records.")] = 20,
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
    for row, record in ((item.row, item.record) for item in map(exported, rows) if item.row.kind == "decision"):
        reasons = ",".join(str(r.get("code")) for r in (record or {}).get("reasons") or []) if record else "?"
        shown.append(
            [
                iso_time(row.time_ns)[:23] + "Z",
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
            cut = iso_time(cutoff_ns)
            typer.echo(f"would cut {len(cuts)} chain(s) at their last checkpoint before {cut}; add --yes to delete")
            return
        deleted = sum(store.prune(writer, seq, f"before {iso_time(cutoff_ns)}") for writer, seq in cuts.items())
    finally:
        store.close()
    typer.echo(f"pruned {deleted} rows from {len(cuts)} chain(s)")


@app.command("public-key")
def public_key(
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM here.")] = None,
    home: HomeOption = None,
) -> None:
    """Print this home's signing public key (PEM), for verifiers elsewhere (same as: exportgate keys export)."""
    export_key(out, home)
