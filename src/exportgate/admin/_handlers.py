"""The admin API's handlers: parse and check the request, call one library function, shape the answer."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from exportgate._types import KycLevel, ScreeningStatus
from exportgate.actions import Actions, account_dict
from exportgate.audit import CSV_COLUMNS, RecordFilter, csv_row, export_rows, exported, jsonl_line, verify_store
from exportgate.errors import BadRequestError, NotFoundError
from exportgate.monitor import STATES
from exportgate.policy import is_country_code
from exportgate.screening import MAX_NAME, Query, clean_name

if TYPE_CHECKING:
    from ._app import AdminParts, Request

__all__ = ["Handlers", "Reply", "Stream"]

MAX_LIMIT = 1000
_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ACCOUNT_FIELDS = {"citizenships", "residencies", "us_person", "kyc", "screening", "organization", "controlled_by",
                   "legal_name"}  # fmt: skip


@dataclass
class Reply:
    status: int
    body: Any
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Stream:
    content_type: bytes
    filename: bytes
    chunks: Iterator[bytes]


def _one(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequestError(f"query parameter {name!r} given more than once")
    return values[0]


def _digits(text: str, name: str, low: int, high: int) -> int:
    """An integer written in ASCII digits, from ``low`` to ``high`` (anything else: 400, never a 500)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and low <= int(text) <= high):
        raise BadRequestError(f"{name} must be an integer from {low} to {high}")
    return int(text)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = _one(request, name)
    return default if text is None else _digits(text, name, low, high)


def _time_ns(request: Request, name: str) -> int | None:
    text = _one(request, name)
    if text is None:
        return None
    age = _AGE.match(text)
    if age:
        return int((dt.datetime.now(dt.UTC).timestamp() - int(age[1]) * _UNITS[age[2]]) * 1e9)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"{name} must be an ISO 8601 time or an age such as 24h") from None
    if when.tzinfo is None:
        raise BadRequestError(f"{name} needs a time zone (Z or +HH:MM)")
    return int(when.timestamp() * 1e9)


def _note(body: dict[str, Any]) -> str | None:
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise BadRequestError("note must be a string")
    return note


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        names = ", ".join(repr(n[:40]) for n in sorted(unknown)[:10])
        raise BadRequestError(f"unknown field(s) {names}; allowed: {', '.join(sorted(allowed))}")


def _countries(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestError(f"{name} must be a list of ISO 3166-1 alpha-2 codes")
    codes = [v.strip().upper() for v in value]
    bad = [v for v in codes if not is_country_code(v)]
    if bad:
        raise BadRequestError(f"{name}: unknown country code {bad[0][:10]!r}")
    return codes


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    """Account attributes from a JSON body, each checked, in the library's terms."""
    out: dict[str, Any] = {}
    for name in ("citizenships", "residencies"):
        if name in body:
            out[name] = _countries(body[name], name)
    if "us_person" in body:
        if body["us_person"] is not None and not isinstance(body["us_person"], bool):
            raise BadRequestError("us_person must be true, false or null")
        out["us_person_attested"] = body["us_person"]
    if "kyc" in body:
        if not isinstance(body["kyc"], str):
            raise BadRequestError("kyc must be a string: none, basic or verified")
        try:
            out["kyc"] = KycLevel.parse(body["kyc"])
        except ValueError as exc:
            raise BadRequestError(f"kyc: {exc}") from None
    if "screening" in body:
        if body["screening"] is not None and not isinstance(body["screening"], str):
            raise BadRequestError("screening must be clear, hit, pending or null")
        try:
            out["screening"] = None if body["screening"] is None else ScreeningStatus(body["screening"])
        except ValueError:
            raise BadRequestError("screening must be clear, hit, pending or null") from None
    for name in ("organization", "controlled_by"):
        if name in body:
            value = body[name]
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise BadRequestError(f"{name} must be a string of at most 200 characters, or null")
            out[name] = value
    if out.get("controlled_by") is not None:
        out["controlled_by"] = _countries([out["controlled_by"]], "controlled_by")[0]
    if "legal_name" in body:
        out["legal_name"] = None if body["legal_name"] is None else clean_name(body["legal_name"], "legal_name")
    return out


def _str_field(body: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise BadRequestError(f"{field} is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadRequestError(f"{field} must be a string of 1 to {MAX_NAME} characters")
    return value.strip()


class Handlers:
    def __init__(self, actions: Actions, parts: AdminParts) -> None:
        self.act, self.parts = actions, parts

    def _body(self, request: Request) -> dict[str, Any]:
        from ._app import parse_json_object  # noqa: PLC0415 - one parser, defined with the app

        return parse_json_object(request.body)

    # -- accounts -------------------------------------------------------------------------------

    def list_accounts(self, request: Request) -> Reply:
        limit, offset = _int(request, "limit", 100, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 10**9)
        deleted = _one(request, "deleted") in ("1", "true", "yes")
        total, accounts = self.act.accounts.page(_one(request, "search"), limit, offset, deleted=deleted)
        more = offset + len(accounts) < total
        return Reply(200, {"items": [account_dict(a) for a in accounts], "total": total, "limit": limit,
                           "offset": offset, "next_offset": offset + len(accounts) if more else None})  # fmt: skip

    def create_account(self, request: Request) -> Reply:
        body = self._body(request)
        _only(body, {"name", "note", *_ACCOUNT_FIELDS})
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or not name.isprintable():
            raise BadRequestError("name must be a printable string of 1 to 200 characters")
        attributes = _attributes(body)
        attributes.setdefault("kyc", KycLevel.NONE)
        account, key = self.act.create_account(name, note=_note(body), **attributes)
        return Reply(201, {"account": account_dict(account), "key": {"key_id": key.key_id, "secret": key.secret}})

    def get_account(self, request: Request) -> Reply:
        name = request.params["name"]
        account = self.act.accounts.get_account(name)
        keys = [{"key_id": k.key_id, "created_at": k.created_at, "revoked_at": k.revoked_at}
                for k in self.act.accounts.list_keys(name)]  # fmt: skip
        return Reply(200, {**account_dict(account), "keys": keys}, [(b"etag", f'"{account.revision}"'.encode())])

    def update_account(self, request: Request) -> Reply:
        body = self._body(request)
        _only(body, {"note", "revision", *_ACCOUNT_FIELDS})
        expected = body.get("revision")
        match = request.headers.get(b"if-match")
        if match is not None:
            text = match.decode("latin-1").strip().strip('"')
            expected = _digits(text, "If-Match (the account's revision, its ETag)", 0, 2**31)
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise BadRequestError("revision must be an integer")
        changes = _attributes(body)
        if not changes:
            raise BadRequestError("nothing to update")
        account = self.act.update_account(request.params["name"], changes, expected_revision=expected,
                                          note=_note(body))  # fmt: skip
        return Reply(200, account_dict(account), [(b"etag", f'"{account.revision}"'.encode())])

    def _noted(self, request: Request) -> str | None:
        body = self._body(request)
        _only(body, {"note"})
        return _note(body)

    def delete_account(self, request: Request) -> Reply:
        return Reply(200, account_dict(self.act.delete_account(request.params["name"], note=self._noted(request))))

    def suspend(self, request: Request) -> Reply:
        return Reply(200, _shown(self.act.suspend(request.params["name"], note=self._noted(request))))

    def restore(self, request: Request) -> Reply:
        return Reply(200, _shown(self.act.unsuspend(request.params["name"], note=self._noted(request))))

    def undelete(self, request: Request) -> Reply:
        return Reply(200, account_dict(self.act.restore_account(request.params["name"], note=self._noted(request))))

    # -- keys -----------------------------------------------------------------------------------

    def issue_key(self, request: Request) -> Reply:
        key = self.act.issue_key(request.params["name"], note=self._noted(request))
        return Reply(201, {"key_id": key.key_id, "secret": key.secret, "account": request.params["name"]})

    def list_keys(self, request: Request) -> Reply:
        account = _one(request, "account")
        if account is not None:
            self.act.accounts.get_account(account)
        return Reply(200, [{"key_id": k.key_id, "account": k.account, "created_at": k.created_at,
                            "revoked_at": k.revoked_at} for k in self.act.accounts.list_keys(account)])  # fmt: skip

    def revoke_key(self, request: Request) -> Reply:
        info = self.act.revoke_key(request.params["key_id"], note=self._noted(request))
        return Reply(200, {"key_id": info.key_id, "account": info.account, "revoked_at": info.revoked_at})

    # -- alerts ---------------------------------------------------------------------------------

    def list_alerts(self, request: Request) -> Reply:
        state = _one(request, "state")
        if state is not None and state not in STATES:
            raise BadRequestError(f"state must be one of {', '.join(STATES)}")
        alerts = self.parts.alerts.list(state, _time_ns(request, "since"), account=_one(request, "account"),
                                        detector=_one(request, "detector"))  # fmt: skip
        return Reply(200, alerts)

    def get_alert(self, request: Request) -> Reply:
        alert = self.parts.alerts.get(request.params["alert"])
        records = []
        for ref in alert.get("evidence", [])[:200]:
            writer, _, seq = str(ref).rpartition(":")
            row = self.parts.records.get_row(writer, int(seq)) if seq.isdigit() else None
            records.append({"id": ref, "record": None if row is None else jsonl_line(exported(row))})
        return Reply(200, {**alert, "evidence_records": records})

    def _alert(self, request: Request, state: str) -> Reply:
        return Reply(200, self.act.set_alert_state(request.params["alert"], state, note=self._noted(request)).alert)

    def ack_alert(self, request: Request) -> Reply:
        return self._alert(request, "acknowledged")

    def resolve_alert(self, request: Request) -> Reply:
        return self._alert(request, "resolved")

    # -- directives -----------------------------------------------------------------------------

    def directive_history(self, request: Request) -> Reply:
        return Reply(200, [v.as_dict() for v in self.act.directives.history()])

    def active_directive(self, request: Request) -> Reply:
        active = self.act.directives.active()
        if active is None:
            raise NotFoundError("no directive has been published")
        return Reply(200, active.as_dict())

    def get_directive(self, request: Request) -> Reply:
        return Reply(200, self.act.directives.get(_version(request.params["version"])).as_dict())

    def diff_directives(self, request: Request) -> Reply:
        old, new = _one(request, "from"), _one(request, "to")
        if old is None or new is None:
            raise BadRequestError("give from and to (version numbers)")
        return Reply(200, {"from": _version(old), "to": _version(new),
                           "diff": self.act.diff_directives(_version(old), _version(new))})  # fmt: skip

    def publish_directive(self, request: Request) -> Reply:
        kind = request.headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind == b"application/json":
            body = self._body(request)
            _only(body, {"content", "note"})
            if not isinstance(body.get("content"), str):
                raise BadRequestError("content must be the directive's YAML as a string")
            content, note = body["content"].encode("utf-8"), _note(body)
        elif kind in (b"application/yaml", b"application/x-yaml", b"text/yaml", b"text/plain"):
            content, note = request.body, _one(request, "note")
        else:
            raise BadRequestError("send the directive as application/yaml, or JSON {content, note}")
        published = self.act.publish_directive(content, note=note, source="<admin API>")
        return Reply(201, published.as_dict() | {"content": None})

    def rollback_directive(self, request: Request) -> Reply:
        published = self.act.rollback_directive(_version(request.params["version"]), note=self._noted(request))
        return Reply(201, published.as_dict() | {"content": None})

    # -- decisions and the audit record ---------------------------------------------------------

    def _where(self, request: Request) -> tuple[RecordFilter, dict[str, str]]:
        result = _one(request, "result")
        if result not in (None, "allow", "deny"):
            raise BadRequestError("result must be allow or deny")
        where = RecordFilter(since_ns=_time_ns(request, "since"), until_ns=_time_ns(request, "until"),
                             account=_one(request, "account"), model=_one(request, "model"), decision=result,
                             kinds=("decision",))  # fmt: skip
        extra = {k: v for k in ("reason", "country", "tier") if (v := _one(request, k)) is not None}
        return where, extra

    def search_decisions(self, request: Request) -> Reply:
        where, extra = self._where(request)
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        found: list[dict[str, Any]] = []
        for row in self.parts.records.query(where):
            line = jsonl_line(exported(row))
            if _matches(line, extra):
                found.append(line)
                if len(found) >= limit:
                    break
        return Reply(200, {"items": found, "limit": limit, "truncated": len(found) >= limit})

    def export_decisions(self, request: Request) -> Stream:
        where, extra = self._where(request)
        kind = _one(request, "format") or "jsonl"
        if kind not in ("jsonl", "csv"):
            raise BadRequestError("format must be csv or jsonl")
        items = (item for item in export_rows(self.parts.records, where)
                 if item.record is not None and _matches(item.record, extra))  # fmt: skip
        if kind == "csv":
            return Stream(b"text/csv; charset=utf-8", b"decisions.csv", _csv_chunks(item for item in items))
        return Stream(b"application/x-ndjson", b"decisions.jsonl",
                      _chunks(orjson.dumps(jsonl_line(item, outcome=True)) + b"\n" for item in items))  # fmt: skip

    def audit_status(self, request: Request) -> Reply:
        report = verify_store(self.parts.records, self.parts.trusted)
        return Reply(200, report.as_dict())

    # -- screening ------------------------------------------------------------------------------

    def screening_lists(self, request: Request) -> Reply:
        return Reply(200, [x.as_dict() for x in self.act.screening.lists()])

    def screening_queue(self, request: Request) -> Reply:
        names = {a.id: a for a in self.act.accounts.list_accounts()}
        return Reply(200, [{"account": names[i].name, "legal_name": names[i].legal_name,
                            "organization": names[i].organization, **r.as_dict()}
                           for i, r in self.act.screening.queue() if i in names])  # fmt: skip

    def screening_account(self, request: Request) -> Reply:
        account = self.act.accounts.get_account(request.params["name"])
        result = self.act.screening.result(account.id)
        return Reply(200, {"account": account.name, "screening": None if account.screening is None
                           else account.screening.value, "result": None if result is None else result.as_dict(),
                           "reviews": [r.as_dict() for r in self.act.screening.reviews(account.id)]})  # fmt: skip

    def _review(self, request: Request, decision: str) -> Reply:
        body = self._body(request)
        _only(body, {"candidate", "reason"})
        candidate = _str_field(body, "candidate", required=True)
        reason = _str_field(body, "reason", required=decision == "clear")
        assert candidate is not None
        after = self.act.review_screening(request.params["name"], candidate, decision, reason=reason)
        return Reply(200, account_dict(after))

    def screening_clear(self, request: Request) -> Reply:
        return self._review(request, "clear")

    def screening_confirm(self, request: Request) -> Reply:
        return self._review(request, "confirm")

    def screen(self, request: Request) -> Reply:
        body = self._body(request)
        _only(body, {"name", "country", "dob", "type", "threshold", "limit"})
        query = Query.checked(body.get("name"), country=body.get("country"), dob=body.get("dob"),
                              type=body.get("type"))  # fmt: skip
        threshold = body.get("threshold")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                      or not 0 < threshold <= 1):  # fmt: skip
            raise BadRequestError("threshold is a number in (0, 1]")
        limit = body.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise BadRequestError("limit is an integer from 1 to 100")
        return Reply(200, self.act.screening.screen(query, threshold=threshold, limit=limit).as_dict())

    # -- admin tokens ---------------------------------------------------------------------------

    def list_tokens(self, request: Request) -> Reply:
        return Reply(200, [t.as_dict() for t in self.act.tokens.list()])

    def add_token(self, request: Request) -> Reply:
        body = self._body(request)
        _only(body, {"name", "role", "note"})
        if not isinstance(body.get("name"), str) or not isinstance(body.get("role"), str):
            raise BadRequestError("name and role are strings")
        made = self.act.add_token(body["name"], body["role"], note=_note(body))
        return Reply(201, {**made.token.as_dict(), "secret": made.secret})

    def revoke_token(self, request: Request) -> Reply:
        return Reply(200, self.act.revoke_token(request.params["token_id"], note=self._noted(request)))


def _shown(value: Any) -> dict[str, Any]:
    return account_dict(value) if hasattr(value, "revision") else dict(value.__dict__)


def _version(text: str) -> int:
    return _digits(text, "a version", 1, 2**31 - 1)


def _matches(record: dict[str, Any], extra: dict[str, str]) -> bool:
    if "tier" in extra and record.get("tier") != extra["tier"]:
        return False
    if "country" in extra and record.get("country") != extra["country"].upper():
        return False
    if "reason" in extra:
        return any(isinstance(r, dict) and r.get("code") == extra["reason"] for r in record.get("reasons") or ())
    return True


def _chunks(lines: Iterable[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    buffer: list[bytes] = []
    held = 0
    for line in lines:
        buffer.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def _csv_chunks(items: Iterable[Any]) -> Iterator[bytes]:
    def lines() -> Iterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for item in items:
            writer.writerow(csv_row(item))
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
        if out.getvalue():  # only the header: nothing matched
            yield out.getvalue().encode("utf-8")

    return _chunks(lines())
