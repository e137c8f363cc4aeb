"""``exportgate monitor``: run the evasion detectors over the audit record (batch or ``--follow``), and
manage the alerts they raise."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from exportgate.actions import Actions, open_actions
from exportgate.audit import audit_from_settings
from exportgate.errors import ConflictError, NotFoundError
from exportgate.identity import account_store
from exportgate.monitor import (
    DETECTORS,
    MEMORY,
    STATES,
    SYNTHETIC,
    AlertStore,
    Monitor,
    MonitorConfig,
    Webhook,
    is_synthetic,
    load_config,
    load_labels,
    scorecard,
)
from exportgate.state import database_url, open_database, sqlite_path

from ._audit import UrlOption, _store
from ._common import DatabaseUrlOption, DefaultCommandGroup, HomeOption, cli_actor, parse_time, settings_for, state_home
from ._output import Format, emit_json, table

__all__ = ["app"]

TIME_SCALE_HELP = (
    "Read time stretched by this factor from the first record read (synthetic runs compressed into seconds; "
    "1 in real use). Outside a synthetic home, alerts are kept in memory and no actions are applied."
)
AlertArgument = Annotated[str, typer.Argument(help="Alert id.")]
NoteOption = Annotated[str | None, typer.Option(help="Why (kept in the alert's history).")]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who (kept in the alert's history) [default: your user name].")
]


class _ScanByDefault(DefaultCommandGroup):
    default = "scan"
    default_without_args = True


app = typer.Typer(
    cls=_ScanByDefault,
    help="Find users routing around the directive: country hopping, impossible travel, anonymizers on "
    "restricted tiers, key sharing, residency mismatches, deny-then-allow. (exportgate monitor --since 24h)",
)


def _one_of(value: str | None, choices: Sequence[str], option: str) -> str | None:
    if value is not None and value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


def _show(alerts: list[dict[str, Any]], output: Format) -> None:
    if output is Format.json:
        emit_json(alerts)
        return
    if not alerts:
        typer.echo("no alerts")
        return
    rows = [(a["id"], a["detector"], a["account"], a["severity"], a["state"], _last_by(a), a["action"],
             a["window"]["start"][:19], len(a["evidence"]), a["summary"]) for a in alerts]  # fmt: skip
    table(("id", "detector", "account", "severity", "state", "by", "action", "from", "records", "summary"), rows)


def _last_by(alert: dict[str, Any]) -> str | None:
    history = alert.get("history")
    return history[-1].get("by") if history else None


def _monitor(home: Path, config: MonitorConfig, time_scale: float) -> Monitor:
    """The monitor for a scan. A --time-scale run outside a synthetic home keeps its alerts in memory and
    applies no actions (its stretched times are not real ones, and the accounts are real)."""
    rehearsal = time_scale != 1.0 and not is_synthetic(home)
    if rehearsal:
        typer.echo(f"{home} is not a synthetic home (no {home / SYNTHETIC}): the alerts of this --time-scale run "
                   "are kept in memory only, and no actions or webhooks are applied", err=True)  # fmt: skip
    webhook = Webhook(config.webhook_url, config.webhook_secret) if config.webhook_url and not rehearsal else None
    settings = settings_for(home)
    alerts = AlertStore(MEMORY if rehearsal else open_database(settings, "alerts"))
    audit = None if rehearsal else audit_from_settings(settings)  # an applied action is an audit record
    return Monitor(config, alerts, account_store(settings), webhook, apply_actions=not rehearsal, audit=audit)


@app.command("scan")
def scan(
    since: Annotated[str, typer.Option(help="Start of the window: an age (24h, 7d) or an ISO time.")] = "24h",
    until: Annotated[str | None, typer.Option(help="End of the window [default: now].")] = None,
    follow: Annotated[bool, typer.Option(help="Keep watching for new records (Ctrl-C to stop).")] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between --follow polls.")] = 1.0,
    config: Annotated[Path | None, typer.Option(help="Monitor config (detector parameters, actions, webhook).")] = None,
    time_scale: Annotated[float, typer.Option(min=1.0, help=TIME_SCALE_HELP)] = 1.0,
    output: Annotated[Format, typer.Option("--format", help="text (a table) or json.")] = Format.text,
    labels: Annotated[Path | None, typer.Option(help="Labels from sim traffic: also print a scorecard.")] = None,
    audit_url: UrlOption = None,
    home: HomeOption = None,
) -> None:
    """Run every enabled detector over the audit records in the window; print the alerts raised."""
    since_ns, until_ns = parse_time(since, "--since"), parse_time(until, "--until")  # bad input before any I/O
    the_config = load_config(config)
    the_labels = load_labels(labels) if labels is not None else None
    store, home_path = _store(home, audit_url, read_only=True)
    monitor = _monitor(home_path, the_config, time_scale)
    try:
        _show(monitor.scan_store(store, since_ns, until_ns, time_scale), output)
        if the_labels is not None:
            _scorecard(monitor.alerts.list(), the_labels, output)
        while follow:
            time.sleep(interval)
            fresh = monitor.follow_once(store)
            if fresh:
                _show(fresh, output)
    except KeyboardInterrupt:
        pass
    finally:
        if monitor.webhook is not None:
            monitor.webhook.close()
        monitor.alerts.close()
        store.close()
        if monitor.audit is not None:
            monitor.audit.close()
            monitor.audit.store.close()
        if monitor.accounts is not None:
            monitor.accounts.close()


def _scorecard(alerts: list[dict[str, Any]], labels: dict[str, Any], output: Format) -> None:
    card = scorecard(alerts, labels)
    if output is Format.json:
        emit_json({"scorecard": card})
        return
    rows = [
        (d, c["true_positives"], c["false_positives"], c["missed"], c["precision"], c["recall"])
        for d, c in card.items()
    ]
    table(("detector", "true+", "false+", "missed", "precision", "recall"), rows)


@app.command("alerts")
def alerts(
    state: Annotated[str | None, typer.Option(help=f"Only alerts in this state ({', '.join(STATES)}).")] = None,
    since: Annotated[str | None, typer.Option(help="Only alerts active since (an age or ISO time).")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account's alerts.")] = None,
    detector: Annotated[str | None, typer.Option(help="Only this detector's alerts.")] = None,
    output: Annotated[Format, typer.Option("--format", help="text, or json with each alert's history.")] = Format.text,
    database_url_: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """List stored alerts (read-only: nothing is created)."""
    _one_of(state, STATES, "--state")
    _one_of(detector, tuple(DETECTORS), "--detector")
    since_ns = parse_time(since, "--since")
    settings = state_home(home, database_url=database_url_)
    if database_url(settings) is None and not sqlite_path(settings, "alerts").exists():
        _show([], output)
        return
    store = AlertStore(open_database(settings, "alerts", read_only=True))
    try:
        _show(store.list(state, since_ns, account=account, detector=detector), output)
    finally:
        store.close()


def _transition(alert: str, state: str, note: str | None, by: str | None, home: Path | None,
                url: str | None, restore: bool = False) -> None:  # fmt: skip
    settings = state_home(home, database_url=url)
    if database_url(settings) is None and not sqlite_path(settings, "alerts").exists():
        raise NotFoundError(f"no alert {alert!r} (no alerts in {settings.home_path})")
    with open_actions(settings, cli_actor(by), alerts=True) as act:
        try:
            change = act.set_alert_state(alert, state, note=note)
        except ConflictError as exc:
            raise ConflictError(f"{exc} (exportgate monitor reopen {alert})") from None
        record = change.alert
        if change.changed:
            typer.echo(f"{alert}: {state} (was {change.previous}; by {record['history'][-1]['by']})")
        else:
            typer.echo(f"{alert}: already {state}; nothing changed")
        if restore and record["action"] != "alert":
            _undo(act, alert, record, change.changed)


def _undo(act: Actions, alert: str, record: dict[str, Any], changed: bool) -> None:
    if not changed:
        typer.echo(f"{alert}: its {record['action']} was not undone; to undo it: exportgate monitor reopen {alert}, "
                   f"then exportgate monitor resolve {alert} --restore", err=True)  # fmt: skip
        return
    note = f"undoing {alert}"
    if record["action"] == "suspend":
        act.unsuspend(record["account"], note=note)
    else:
        act.restore_kyc(record["account"], note=note)
    typer.echo(f"{alert}: {record['action']} of {record['account']} undone")


@app.command("ack")
def ack(alert: AlertArgument, note: NoteOption = None, by: ByOption = None, database_url_: DatabaseUrlOption = None,
        home: HomeOption = None) -> None:  # fmt: skip
    """Acknowledge an alert (someone is on it). A resolved alert is refused: reopen it first."""
    _transition(alert, "acknowledged", note, by, home, database_url_)


@app.command("reopen")
def reopen(alert: AlertArgument, note: NoteOption = None, by: ByOption = None,
           database_url_: DatabaseUrlOption = None, home: HomeOption = None) -> None:  # fmt: skip
    """Open a resolved (or acknowledged) alert again."""
    _transition(alert, "open", note, by, home, database_url_)


@app.command("resolve")
def resolve(
    alert: AlertArgument,
    note: NoteOption = None,
    restore: Annotated[bool, typer.Option(help="Also undo the alert's action (unsuspend / restore KYC).")] = False,
    by: ByOption = None,
    database_url_: DatabaseUrlOption = None,
    home: HomeOption = None,
) -> None:
    """Resolve an alert, optionally undoing what its action did to the account."""
    _transition(alert, "resolved", note, by, home, database_url_, restore)
