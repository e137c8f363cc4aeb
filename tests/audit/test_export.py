"""``audit export`` as the regulator's view: subject columns, outcomes joined to allowed decisions by a
streaming join with a horizon, ``--record`` look-ups on both stores, and ``--out`` that fails cleanly."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate._types import Decision, KycLevel, RequestContext, ScreeningStatus, Subject
from exportgate.audit import AuditWriter, ChainRow, Outcome, OutcomeBatch, entry_for, open_store
from exportgate.cli import main
from exportgate.identity import AccountStore
from exportgate.signing import home_signer
from tests.audit.conftest import entry, run
from tests.gateway.conftest import serve
from tests.recorder import COMPLETION_TOKENS, PROMPT_TOKENS, PathRecorder

S = 1_000_000_000
T0 = 1_780_000_000 * S  # a fixed moment in 2026
NEW_COLUMNS = ("subject_id", "organization", "citizenships", "residencies", "us_person", "kyc", "screening",
               "controlled_by", "outcome_http_status", "outcome_upstream_status", "outcome_latency_ms",
               "prompt_tokens", "completion_tokens")  # fmt: skip


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def write(url: str | None, home: Path, records: list[Any]) -> str:
    """Append decisions and outcome batches through a real writer; returns the writer id."""
    store = open_store(url, home)
    writer = AuditWriter(store, home_signer(home), home=home).start()
    for record in records:
        writer.append(record)
    writer.close()
    store.close()
    return writer.writer_id


def outcome(request_id: str, at_ns: int, status: int = 200) -> OutcomeBatch:
    tokens = {"prompt_tokens": 3, "completion_tokens": 4}
    return OutcomeBatch(at_ns, (Outcome(request_id, status, status, 12.5, tokens),))


# -- through a real gateway -------------------------------------------------------------------------------

ODD_NAME = 'Zoë O\'Brien, "ZO"'
PEOPLE: dict[str, dict[str, Any]] = {
    ODD_NAME: {"citizenships": ["US"], "kyc": KycLevel.VERIFIED, "screening": ScreeningStatus.CLEAR,
               "organization": 'Acme, "Labs"\nWest – Zürich', "controlled_by": "US"},
    "greta": {"citizenships": ["DE"], "residencies": ["US"], "kyc": KycLevel.VERIFIED,
              "screening": ScreeningStatus.PENDING, "organization": "Fabrik Nord GmbH", "controlled_by": "DE"},
    "li": {"citizenships": ["CN", "HK"], "kyc": KycLevel.BASIC, "screening": ScreeningStatus.HIT,
           "organization": "北方研究所", "controlled_by": "CN"},
    "olaf": {"citizenships": ["DE"], "kyc": KycLevel.BASIC},  # no organization, screening or controller on file
}  # fmt: skip


def test_csv_export_of_a_real_gateways_decisions(tmp_path: Path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    accounts = AccountStore(home / "accounts.db")
    keys = {name: accounts.add_account(name, **facts)[1].secret for name, facts in PEOPLE.items()}
    accounts.close()
    calls = [(ODD_NAME, "fable-5", "3.3.3.3"), ("greta", "fable-5", "3.3.3.3"), ("li", "fable-5", "114.114.114.114"),
             ("olaf", "fable-5", "5.9.0.1"), ("olaf", "sonnet-4", "5.9.0.1")]  # fmt: skip
    sent: dict[str, tuple[str, str, int]] = {}
    with PathRecorder() as upstream:
        server = serve(home, "--trusted-proxy", "127.0.0.1/32", "--upstream", upstream.url + "/v1")
        try:
            for name, model, ip in calls:
                response = httpx.post(server.url + "/v1/chat/completions", json={"model": model, "messages": [
                    {"role": "user", "content": "Say hello."}]},
                    headers={"Authorization": f"Bearer {keys[name]}", "X-Forwarded-For": ip})  # fmt: skip
                sent[response.headers["x-request-id"]] = (name, model, response.status_code)
        finally:
            server.stop()  # writes the last outcome batch
    assert [status for _, _, status in sent.values()] == [200, 200, 451, 451, 200]
    code, out, err = run(capsys, "audit", "export", "--format", "csv", "--home", home)
    assert code == 0, err
    rows = {row["request_id"]: row for row in csv_rows(out)}
    assert list(rows) == list(sent)  # one row per decision, in decision order; outcome rows are joined, not listed
    for request_id, (name, model, status) in sent.items():
        row, facts = rows[request_id], PEOPLE[name]
        assert (row["account"], row["subject_id"], row["model"]) == (name, f"account:{name}", model)
        assert row["organization"] == facts.get("organization", "?")
        assert row["citizenships"] == ";".join(facts["citizenships"])
        assert row["residencies"] == ";".join(facts.get("residencies", []))  # none on file: empty
        assert row["us_person"] == ("yes" if name in (ODD_NAME, "greta") else "no")
        assert row["kyc"] == facts["kyc"].label
        assert row["screening"] == (facts["screening"].value if "screening" in facts else "?")
        assert row["controlled_by"] == facts.get("controlled_by", "?")
        if status == 200:
            assert row["decision"] == "allow" and row["http_status"] == ""  # known only after forwarding
            assert (row["outcome_http_status"], row["outcome_upstream_status"]) == ("200", "200")
            assert float(row["outcome_latency_ms"]) > 0
            assert (row["prompt_tokens"], row["completion_tokens"]) == (str(PROMPT_TOKENS), str(COMPLETION_TOKENS))
        else:
            assert row["decision"] == "deny" and row["http_status"] == "451"
            assert [row[c] for c in NEW_COLUMNS[8:]] == [""] * 5
    assert upstream.paths == ["/v1/chat/completions"] * 3


# -- the CSV round trip of odd values ---------------------------------------------------------------------

# No lone surrogates, no NUL: the gateway refuses both before they reach a record (UnrecordableError).
ODD = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=24)
CODES = st.none() | st.lists(st.sampled_from(["US", "DE", "CN", "GB", "IR", "MO"]), max_size=3, unique=True)


def shown(text: str) -> str:
    """A text cell as the CSV shows it: one a spreadsheet would run as a formula (OWASP's list of first
    characters) has a ``'`` before it; any other exactly as recorded."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=ODD, organization=st.none() | ODD, model=ODD, citizenships=CODES, residencies=CODES,
       kyc=st.none() | st.sampled_from(KycLevel), screening=st.none() | st.sampled_from(ScreeningStatus),
       allowed=st.booleans())  # fmt: skip
def test_csv_round_trips_odd_values(name, organization, model, citizenships, residencies, kyc, screening, allowed):
    subject = Subject(f"account:{name}", tuple(citizenships) if citizenships is not None else None,
                      tuple(residencies) if residencies is not None else None, kyc=kyc, screening=screening,
                      organization=organization, name=name, source="api_key")  # fmt: skip
    decision = Decision("allow" if allowed else "deny", model, model, "open", "d", "1", ())
    made = entry_for(decision, subject, RequestContext("3.3.3.3", "US", frozenset()), request_id="r", time_ns=T0)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        write(None, home, [made, outcome("r", T0 + S)])
        assert main(["audit", "export", "--format", "csv", "--home", str(home), "--out", str(home / "x.csv")]) == 0
        with (home / "x.csv").open(encoding="utf-8", newline="") as handle:
            (row,) = list(csv.DictReader(handle))
    unknown = "?"
    assert (row["account"], row["subject_id"], row["requested_model"], row["model"]) == (
        shown(name), shown(f"account:{name}"), shown(model), shown(model))  # fmt: skip
    assert row["organization"] == (shown(organization) if organization is not None else unknown)
    assert row["citizenships"] == (";".join(citizenships) if citizenships is not None else unknown)
    assert row["residencies"] == (";".join(residencies) if residencies is not None else unknown)
    assert row["us_person"] == {True: "yes", False: "no", None: unknown}[subject.us_person]
    assert row["kyc"] == (kyc.label if kyc is not None else unknown)
    assert row["screening"] == (screening.value if screening is not None else unknown)
    assert row["outcome_http_status"] == ("200" if allowed else "")


def test_records_from_before_the_organization_field_export_as_unknown_and_verify(tmp_path: Path, capsys):
    home = tmp_path / "home"
    write(None, home, [entry(0, subject={"citizenships": ["US"], "kyc": "verified"})])  # an old snapshot
    code, out, _ = run(capsys, "audit", "export", "--format", "csv", "--home", home)
    assert code == 0
    (row,) = csv_rows(out)
    assert (row["organization"], row["citizenships"], row["residencies"], row["kyc"]) == ("?", "US", "?", "verified")
    assert run(capsys, "audit", "verify", "--home", home)[0] == 0


# -- the join: order, horizon, --until, memory ------------------------------------------------------------


def timeline(home: Path) -> None:
    """d1 allowed, outcome 1 s later; d2 denied; d3 allowed, outcome 20 min later; d4 allowed, outcome 2 s later."""
    write(None, home, [
        entry(1, request_id="d1", time_ns=T0), entry(0, request_id="d2", time_ns=T0 + 2 * S),
        entry(1, request_id="d3", time_ns=T0 + 3 * S), entry(1, request_id="d4", time_ns=T0 + 4 * S),
        outcome("d1", T0 + S), outcome("d4", T0 + 6 * S, 502), outcome("d3", T0 + 1200 * S),
    ])  # fmt: skip


def outcomes_by_request(capsys, home: Path, *args: str) -> dict[str, str]:
    code, out, err = run(capsys, "audit", "export", "--format", "csv", "--home", home, *args)
    assert code == 0, err
    return {row["request_id"]: row["outcome_http_status"] for row in csv_rows(out)}


def test_outcomes_are_joined_within_the_horizon_in_decision_order(tmp_path: Path, capsys):
    timeline(tmp_path)
    assert outcomes_by_request(capsys, tmp_path) == {"d1": "200", "d2": "", "d3": "", "d4": "502"}
    assert list(outcomes_by_request(capsys, tmp_path, "--outcome-wait", "30m")) == ["d1", "d2", "d3", "d4"]
    assert outcomes_by_request(capsys, tmp_path, "--outcome-wait", "1800")["d3"] == "200"
    assert outcomes_by_request(capsys, tmp_path, "--outcome-wait", "0")["d1"] == ""
    _, out, _ = run(capsys, "audit", "export", "--format", "csv", "--home", tmp_path, "--checkpoints")
    rows = csv_rows(out)
    decisions = [r for r in rows if r["request_id"]]
    checkpoints = [r for r in rows if not r["request_id"]]  # the chain's opening and final ones, written now
    assert [r["request_id"] for r in decisions] == ["d1", "d2", "d3", "d4"]
    assert [c["seq"] for c in checkpoints] == ["1", "9"]
    assert all(c["hash"] and not any(c[k] for k in ("decision", *NEW_COLUMNS)) for c in checkpoints)


def test_until_reads_outcomes_up_to_until_plus_the_horizon(tmp_path: Path, capsys):
    timeline(tmp_path)
    until = ["--until", "2026-05-28T20:26:43.5Z"]  # T0 + 3.5 s: d1, d2, d3
    assert T0 + 3 * S < 1_780_000_003_500_000_000 < T0 + 4 * S
    assert outcomes_by_request(capsys, tmp_path, *until) == {"d1": "200", "d2": "", "d3": ""}
    assert outcomes_by_request(capsys, tmp_path, *until, "--outcome-wait", "20m")["d3"] == "200"
    since = ["--since", "2026-05-28T20:26:42Z"]  # T0 + 2 s: d2, d3, d4
    assert outcomes_by_request(capsys, tmp_path, *since, "--outcome-wait", "1h") == {"d2": "", "d3": "200", "d4": "502"}


def test_jsonl_stays_raw_unless_asked_to_join(tmp_path: Path, capsys):
    timeline(tmp_path)
    _, out, _ = run(capsys, "audit", "export", "--home", tmp_path)
    raw = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in raw].count("outcomes") == 3 and not any("outcome" in r for r in raw)
    _, out, _ = run(capsys, "audit", "export", "--home", tmp_path, "--join-outcomes")
    joined = {r["request_id"]: r for r in map(json.loads, out.splitlines())}
    assert list(joined) == ["d1", "d2", "d3", "d4"]
    assert joined["d1"]["outcome"]["http_status"] == 200
    assert joined["d1"]["outcome"]["record"].endswith(":6")  # after the opening checkpoint and d1..d4
    assert joined["d2"]["outcome"] is None and joined["d3"]["outcome"] is None
    assert {k: v for k, v in joined["d1"].items() if k != "outcome"} == raw[0]  # the record itself is unchanged


def row(seq: int, time_ns: int, body: dict[str, Any]) -> ChainRow:
    kind = body.get("event", "decision")
    return ChainRow("w", seq, kind, time_ns, body.get("request_id"), None, None, body.get("decision"), "", "",
                    json.dumps(body))  # fmt: skip


def test_the_join_streams_with_memory_bounded_by_the_horizon():
    from exportgate.audit import join_outcomes  # new with the join: the other tests fail on old code one by one

    read = 0  # decisions read so far

    def stream(decisions: int) -> Iterator[ChainRow]:
        nonlocal read
        for i in range(decisions):  # one decision a second; every other one's outcome half a second later
            read += 1
            yield row(2 * i, i * S, {"event": "decision", "decision": "allow", "request_id": f"r{i}"})
            if i % 2 == 0:
                yield row(2 * i + 1, i * S + S // 2, {"event": "outcomes", "outcomes": [
                    {"request_id": f"r{i}", "http_status": 200}]})  # fmt: skip

    emitted, most_behind = [], 0
    for item in join_outcomes(stream(100_000), horizon_ns=10 * S):
        emitted.append(item)
        most_behind = max(most_behind, read - len(emitted))
    assert [item.row.request_id for item in emitted] == [f"r{i}" for i in range(100_000)]
    assert all((item.outcome is not None) == (n % 2 == 0) for n, item in enumerate(emitted))
    assert most_behind <= 12  # one horizon's decisions (10 s) are held, not the stream


# -- --record --------------------------------------------------------------------------------------------


def test_record_looks_up_exact_rows_on_both_stores(store_url: str, tmp_path: Path, capsys):
    writer = write(store_url, tmp_path, [entry(i, request_id=f"q{i}", time_ns=T0 + i * S) for i in range(6)]
                   + [outcome("q4", T0 + 10 * S)])  # fmt: skip
    base = ["audit", "export", "--audit-url", store_url, "--home", tmp_path]
    # seq 1 is the chain's opening checkpoint; q0..q5 are 2..7, the outcomes row 8
    code, out, _ = run(capsys, *base, "--record", f"{writer}:6", "--record", f"{writer}:3")
    assert code == 0 and [json.loads(line)["request_id"] for line in out.splitlines()] == ["q4", "q1"]
    code, out, _ = run(capsys, *base, "--record", f"{writer}:8")  # the outcomes row itself
    assert code == 0 and json.loads(out)["event"] == "outcomes"
    code, out, _ = run(capsys, *base, "--format", "csv", "--record", f"{writer}:6", "--record", f"{writer}:2")
    rows = csv_rows(out)
    assert [(r["request_id"], r["outcome_http_status"]) for r in rows] == [("q4", "200"), ("q0", "")]
    assert rows[0]["hash"] and rows[0]["seq"] == "6"


def test_record_not_in_the_store_writes_nothing(store_url: str, tmp_path: Path, capsys):
    writer = write(store_url, tmp_path, [entry(i) for i in range(3)])
    base = ["audit", "export", "--audit-url", store_url, "--home", tmp_path, "--record", f"{writer}:1"]
    code, out, err = run(capsys, *base, "--record", f"{writer}:99")
    assert (code, out) == (1, "") and err.startswith(f"exportgate: error: no record {writer}:99 in the audit store ")
    assert err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run(capsys, *base, "--record", "nobody:1", "--format", "csv", "--out", tmp_path / "e.csv")
    assert code == 1 and "no record nobody:1" in err and not (tmp_path / "e.csv").exists()


# -- --out --------------------------------------------------------------------------------------------------


def test_out_in_a_missing_directory_is_one_line_before_the_store_is_read(tmp_path: Path, capsys):
    target = tmp_path / "missing" / "x.csv"
    code, out, err = run(capsys, "audit", "export", "--home", tmp_path / "no-store", "--format", "csv", "--out", target)
    assert (code, out) == (1, "")
    assert err == f"exportgate: error: cannot write {target}: directory {target.parent} does not exist\n"
    assert not target.parent.exists()
    code, _, err = run(capsys, "audit", "export", "--home", tmp_path, "--out", tmp_path)
    assert code == 1 and err.endswith("it is a directory\n")


def test_out_is_written_whole_and_replaces_the_old_file(tmp_path: Path, capsys):
    home = tmp_path / "home"
    write(None, home, [entry(i) for i in range(4)])
    target = tmp_path / "exports" / "e.csv"
    target.parent.mkdir()
    target.write_text("old")
    code, _, err = run(capsys, "audit", "export", "--home", home, "--format", "csv", "--out", target)
    assert code == 0 and "exported 4 records" in err
    assert len(csv_rows(target.read_text(encoding="utf-8"))) == 4
    assert [p.name for p in target.parent.iterdir()] == ["e.csv"]  # no temporary file left behind
    code, _, _ = run(capsys, "audit", "export", "--home", tmp_path / "no-store", "--out", target)
    assert code == 1 and len(csv_rows(target.read_text(encoding="utf-8"))) == 4  # a failed export leaves it alone


def test_an_alerts_evidence_ids_are_found_by_record(tmp_path: Path, capsys):
    now = time.time_ns()
    hops = [entry(1, account="hopper", request_id=f"h{n}", country=country, time_ns=now - (10 - n) * 60 * S)
            for n, country in enumerate(["US", "DE", "FR", "GB"])]  # fmt: skip
    write(None, tmp_path, [*hops, outcome("h3", now - 5 * 60 * S)])
    code, out, err = run(capsys, "monitor", "--since", "1h", "--format", "json", "--home", tmp_path)
    assert code == 0, err
    (alert,) = [a for a in json.loads(out) if a["detector"] == "country_hopping"]
    args = [arg for record in alert["evidence"] for arg in ("--record", record)]
    code, out, err = run(capsys, "audit", "export", "--format", "csv", "--home", tmp_path, *args)
    assert code == 0, err
    rows = csv_rows(out)
    assert [f"{r['writer']}:{r['seq']}" for r in rows] == alert["evidence"]
    assert {r["account"] for r in rows} == {"hopper"} and {r["country"] for r in rows} <= {"US", "DE", "FR", "GB"}
    assert [r["outcome_http_status"] for r in rows if r["request_id"] == "h3"] in ([], ["200"])
