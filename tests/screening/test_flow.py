"""Screening as a system of record, on both backends: accounts screened on create, update and every list
load; a potential match denies ``screening_pending`` until an officer reviews it; a confirmed match
denies ``screening_hit``; a cleared false positive gives access back; every step is an audit record.
Then the CLI: one clear line for bad input, read-only commands create nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exportgate._types import ReasonCode, RequestContext, ScreeningStatus
from exportgate.actions import Actor, open_actions
from exportgate.cli import main
from exportgate.config import Settings
from exportgate.errors import ConfigError, ConflictError, NotFoundError, ScreeningListError
from exportgate.identity import AccountStore
from exportgate.policy import decide, parse_directive
from exportgate.screening import DEFAULT_THRESHOLD
from exportgate.state import open_database

DATA = Path(__file__).parent / "data"
DIRECTIVE = parse_directive(b'directive: s\nversion: "1"\ntiers: {screened: {require_screening_clear: true}}\n'
                            b"models: {m: screened}\n")  # fmt: skip
US = RequestContext("3.3.3.3", "US", frozenset())


def watch_list(path: Path, *rows: str) -> Path:
    path.write_text("id,name,type\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings({"home": str(tmp_path / "home")})
    return Settings({"home": str(tmp_path / "home"), "database_url": request.getfixturevalue("state_url")})


@pytest.fixture
def replica(settings: Settings) -> Iterator[AccountStore]:
    """Another process's view of the same state: what a second gateway would read."""
    with open_actions(settings, Actor("setup", "admin", "cli")):
        pass  # the home and its stores exist
    store = AccountStore(open_database(settings, "state"))
    yield store
    store.close()


def decided(replica: AccountStore, key: str) -> tuple[str, list[ReasonCode]]:
    subject = replica.subject_for_key(key)
    decision = decide(subject, US, "m", DIRECTIVE)
    return decision.decision, [r.code for r in decision.reasons]


def test_a_party_newly_listed_is_pending_then_hit_then_cleared_each_step_on_the_record(
    settings: Settings, replica: AccountStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    officer = Actor("olga", "officer", "cli")
    with open_actions(settings, officer) as act:
        other = "W-1,Somebody Else Entirely,individual"
        act.load_lists([str(watch_list(tmp_path / "w1.csv", other))], list_name="watch")
        account, key = act.create_account("dora", legal_name="Dora Kowalczyk", citizenships=["DE"])
        assert account.screening is ScreeningStatus.CLEAR
        assert decided(replica, key.secret) == ("allow", [])

        listed = watch_list(tmp_path / "w2.csv", other, "W-2,KOWALCZYK Dora,individual")
        done = act.load_lists([str(listed)], list_name="watch", note="watch list of 2026-11-30")
        assert [c.after.name for c in done.changed] == ["dora"] and done.lists[0][1] is True
        assert decided(replica, key.secret) == ("deny", [ReasonCode.SCREENING_PENDING])
        (pending,) = act.screening.queue()
        assert [c.id for c in pending[1].candidates] == ["watch:W-2"]

        assert act.review_screening("dora", "W-2", "confirm", reason="same passport").screening is ScreeningStatus.HIT
        assert decided(replica, key.secret) == ("deny", [ReasonCode.SCREENING_HIT])

        cleared = act.review_screening("dora", "watch:W-2", "clear", reason="different date of birth")
        assert cleared.screening is ScreeningStatus.CLEAR
        assert decided(replica, key.secret) == ("allow", [])

        again = act.load_lists([str(listed)], list_name="watch")  # the same files: nothing new
        assert again.lists[0][1] is False and again.screened == 0 and not again.changed
        assert act.accounts.get_account("dora").screening is ScreeningStatus.CLEAR  # cleared stays cleared

        renamed = act.update_account("dora", {"legal_name": "Dora K. Kowalczyk"})  # new names: screened again
        assert renamed.screening is ScreeningStatus.PENDING

    url = ["--audit-url", settings.audit_url] if settings.audit_url else []
    assert main(["audit", "export", "--home", str(settings.home_path), *url]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    actions = [(r.get("action"), r.get("target"), r.get("actor")) for r in records if r.get("event") == "admin"]
    assert ("screening.load", "watch v2", "olga") in actions
    assert ("screening.result", "dora", "olga") in actions
    assert ("screening.confirm", "dora", "olga") in actions and ("screening.clear", "dora", "olga") in actions


def test_screening_is_not_set_by_hand_once_lists_decide_it(settings: Settings, tmp_path: Path):
    with open_actions(settings, Actor("olga", "officer", "cli")) as act:
        act.create_account("manual", screening=ScreeningStatus.CLEAR)  # no list yet: the operator's word
        act.load_lists([str(watch_list(tmp_path / "w.csv", "W-1,Somebody Else,individual"))])
        with pytest.raises(ConflictError, match="decided by the lists"):
            act.update_account("manual", {"screening": ScreeningStatus.CLEAR})
        with pytest.raises(ConflictError, match="decided by the lists"):
            act.create_account("other", screening=ScreeningStatus.CLEAR)
        # nothing to screen (no name, no organization): not screened, which a screened tier denies
        assert act.accounts.get_account("manual").screening is None
        with pytest.raises(ConfigError, match="needs a reason"):
            act.review_screening("manual", "x", "clear", reason=" ")
        with pytest.raises(NotFoundError, match="no open candidate"):
            act.review_screening("manual", "internal:W-1", "confirm", reason=None)
    viewer = Actor("vera", "viewer", "cli")
    with open_actions(settings, viewer) as act, pytest.raises(Exception, match="needs the officer role"):
        act.load_lists([str(tmp_path / "w.csv")])


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_loads_screens_and_reviews(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = str(tmp_path / "home")
    assert run(capsys, "accounts", "add", "abu", "--legal-name", "Muhammad Abou Tair", "--home", home)[0] == 0
    code, out, err = run(capsys, "screening", "load", str(DATA / "consolidated.csv"), "--home", home)
    assert code == 0 and "csl v1: loaded: 115 entries" in out and "abu: - -> pending" in out, out + err
    code, out, _ = run(capsys, "screening", "load", str(DATA / "consolidated.csv"), "--format", "json", "--home", home)
    assert code == 0 and json.loads(out)["lists"][0]["stored"] is False and json.loads(out)["screened"] == 0

    code, out, _ = run(capsys, "screen", "Mohammed Abu Teir", "--dob", "1951", "--format", "json", "--home", home)
    found = json.loads(out)
    assert code == 0 and found["candidates"][0]["entry_id"] == "9640" and found["lists"] == ["csl:1"]
    assert found["threshold"] == DEFAULT_THRESHOLD == Settings().screening_threshold
    code, out, _ = run(capsys, "screen", "John Smith", "--home", home)
    assert code == 0 and "no candidate" in out

    code, out, _ = run(capsys, "screening", "review", "--format", "json", "--home", home)
    assert [(q["account"], [c["id"] for c in q["candidates"]]) for q in json.loads(out)] == [("abu", ["csl:9640"])]
    code, out, err = run(capsys, "screening", "clear", "abu", "--candidate", "9640", "--reason", "born 1990",
                         "--by", "olga", "--home", home)  # fmt: skip
    assert code == 0 and "screening now clear" in out, err
    assert run(capsys, "screening", "review", "--home", home)[1].strip() == "no account waits for review"

    code, _, err = run(capsys, "accounts", "update", "abu", "--screening", "clear", "--home", home)
    assert code == 1 and err.count("\n") == 1 and "decided by the lists" in err
    code, _, err = run(capsys, "screening", "confirm", "abu", "--candidate", "nope", "--home", home)
    assert code == 1 and "no open candidate" in err and err.count("\n") == 1


BAD_CLI = [
    (["screen", "x", "--dob", "1999-13-01"], "--dob"),
    (["screen", "x", "--type", "vessel"], "--type"),
    (["screen", " "], "empty"),
    (["screening", "load", "--list", "csl", "f.csv"], "--list"),
]


@pytest.mark.parametrize(("args", "says"), BAD_CLI)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str):
    code, _, err = run(capsys, *args, "--home", str(tmp_path / "home"))
    assert code != 0 and says in err and "Traceback" not in err


def test_a_malformed_list_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = str(tmp_path / "home")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\nA-1,Someone\nA-1,Someone Else\n", encoding="utf-8")
    code, _, err = run(capsys, "screening", "load", str(DATA / "consolidated.csv"), str(bad), "--home", home)
    assert code == 1 and f"{bad}:3: id 'A-1' appears twice" in err
    code, out, _ = run(capsys, "screening", "lists", "--format", "json", "--home", home)
    assert code == 0 and json.loads(out) == []


def test_what_the_outside_pass_found_stays_closed(settings: Settings, tmp_path: Path):
    """Each of these once let an account be or stay clear when it should not, or a load half-happen."""
    with open_actions(settings, Actor("olga", "officer", "cli")) as act:
        act.load_lists([str(watch_list(tmp_path / "w.csv", "W-1,Somebody Else Entirely,individual"))], list_name="w")
        # a name with nothing in it to compare is not screened (a screened tier denies it), never clear
        for name in (".", "---", "X", "\u200b", "LLC"[:2]):
            assert act.create_account(f"p{len(name)}{ord(name[0])}", legal_name=name)[0].screening is None
        # a deleted account missed every re-screening: restored, it is screened at once
        act.create_account("zed", legal_name="Jane Roe")
        act.delete_account("zed")
        act.load_lists([str(watch_list(tmp_path / "w2.csv", "W-1,Somebody Else Entirely,individual",
                                       "W-2,Jane Roe,individual"))], list_name="w")  # fmt: skip
        assert act.restore_account("zed").screening is ScreeningStatus.PENDING
        # "screening": null by hand is refused like any other value once lists decide
        with pytest.raises(ConflictError):
            act.update_account("zed", {"screening": None})
        # an invisible reason is no reason
        with pytest.raises(ConfigError, match="needs a reason"):
            act.review_screening("zed", "w:W-2", "clear", reason="\u200b\u200e ")
        # a confirmed hit survives a rename and can still be cleared by an officer
        assert act.review_screening("zed", "w:W-2", "confirm", reason=None).screening is ScreeningStatus.HIT
        assert act.update_account("zed", {"legal_name": "Totally Different"}).screening is ScreeningStatus.HIT
        assert act.review_screening("zed", "w:W-2", "clear", reason="a mistake").screening is ScreeningStatus.CLEAR
        # a load of several lists stores all of them or none
        bad = tmp_path / "bad.json"
        bad.write_text('{"results": [{"name": "Evil \\ud800 Corp", "entity_number": "1"}]}', encoding="utf-8")
        before = [x.version for x in act.screening.lists()]
        with pytest.raises(ScreeningListError):
            act.load_lists([str(DATA / "sdn.csv"), str(DATA / "alt.csv"), str(DATA / "add.csv"), str(bad)])
        assert [x.version for x in act.screening.lists()] == before
        with pytest.raises(ConfigError, match="a list's name"):
            act.load_lists([str(tmp_path / "w.csv")], list_name="x\x1b[31m")


def test_a_hit_set_by_hand_before_any_list_is_never_lowered_by_a_list(settings: Settings, tmp_path: Path):
    with open_actions(settings, Actor("olga", "officer", "cli")) as act:
        act.create_account("known", legal_name="Nobody On Any List", screening=ScreeningStatus.HIT)
        act.create_account("plain", legal_name="Also Nobody Listed", screening=ScreeningStatus.CLEAR)
        act.load_lists([str(watch_list(tmp_path / "w.csv", "W-1,Somebody Else Entirely,individual"))])
        assert act.accounts.get_account("known").screening is ScreeningStatus.HIT  # not on the list: still a hit
        assert act.accounts.get_account("plain").screening is ScreeningStatus.CLEAR
        assert act.update_account("known", {"legal_name": "Another Name"}).screening is ScreeningStatus.HIT
        act.load_lists([str(watch_list(tmp_path / "w2.csv", "W-1,Somebody Else Entirely,individual",
                                       "W-3,Third Person,individual"))])  # fmt: skip
        assert act.accounts.get_account("known").screening is ScreeningStatus.HIT
        cleared = act.review_screening("known", "manual:hit", "clear", reason="case closed by counsel")
        assert cleared.screening is ScreeningStatus.CLEAR
