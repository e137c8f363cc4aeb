"""Commands that read never create a home, a store or a key; a typo is an error, not an empty success; and
accounts can be deleted (keys revoked, records kept) and restored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportgate.cli import main
from tests.audit.conftest import write_records
from tests.conftest import EXAMPLE


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


READING = [
    ["accounts", "list"],
    ["accounts", "show", "ada"],
    ["accounts", "keys", "list"],
    ["accounts", "trips", "list"],
    ["accounts", "suspend", "ada"],
    ["accounts", "delete", "ada"],
    ["accounts", "keys", "create", "ada"],
    ["monitor", "alerts"],
    ["monitor", "--since", "1h"],
    ["monitor", "ack", "alert-0"],
    ["classify", "history", "fable-5"],
    ["audit", "verify"],
    ["audit", "export"],
    ["audit", "tail"],
    ["audit", "public-key"],
    ["keys", "show"],
    ["keys", "export"],
    ["keys", "rotate"],
    ["keys", "rotate", "--yes"],
    ["classify", "show", "cls-0"],
    ["classify", "approve", "cls-0", "--by", "bob"],
    ["screen", "Mohammed Abu Teir"],
    ["screening", "lists"],
    ["screening", "review"],
    ["screening", "clear", "ada", "--candidate", "csl:1", "--reason", "r"],
    ["screening", "confirm", "ada", "--candidate", "csl:1"],
]


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_command_given_a_home_that_does_not_exist_creates_nothing(capsys, tmp_path: Path, args: list[str]):
    typo = tmp_path / "typo"
    code, _, err = run(capsys, *args, "--home", typo)
    assert code in (1, 2) and err.startswith("exportgate: error: ") and err.count("\n") == 1, err
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_verify_of_a_store_that_is_not_there_does_not_make_one(capsys, tmp_path: Path):
    code, out, err = run(capsys, "audit", "verify", "--audit-url", f"sqlite:///{tmp_path / 'nope.db'}")
    assert code == 2 and "nope.db" in err and not (tmp_path / "nope.db").exists()
    assert "intact" not in out


def test_listing_an_existing_home_reads_without_writing(capsys, tmp_path: Path):
    home = tmp_path / "home"
    assert run(capsys, "accounts", "add", "ada", "--citizenship", "US", "--home", home)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in home.iterdir()}
    for args in (["accounts", "list"], ["monitor", "alerts"], ["classify", "history", "fable-5"]):
        assert run(capsys, *args, "--home", home)[0] == 0
    after = {p.name: p.stat().st_mtime_ns for p in home.iterdir() if not p.name.endswith(("-shm", "-wal"))}
    assert after == {k: v for k, v in before.items() if not k.endswith(("-shm", "-wal"))}


def test_serve_refuses_a_directive_that_is_not_there(capsys, tmp_path: Path):
    from exportgate.gateway import DirectiveHolder

    home = tmp_path / "home"
    assert run(capsys, "accounts", "add", "ada", "--citizenship", "US", "--home", home)[0] == 0
    DirectiveHolder(EXAMPLE, home, settle=0.01)  # the home keeps a last good copy: of another file
    assert (home / "directive.last-good.yaml").exists()
    code, _, err = run(capsys, "serve", "--directive", tmp_path / "typo.yaml", "--home", home, "--port", "8931")
    assert code == 1 and "cannot read directive" in err and err.count("\n") == 1


def test_a_deleted_account_cannot_call_and_its_records_remain(capsys, tmp_path: Path):
    home = tmp_path / "home"
    run(capsys, "accounts", "add", "ada", "--citizenship", "US", "--home", home)
    write_records(None, home, 3)  # records that name accounts stay whatever happens to the account
    records_before = run(capsys, "audit", "export", "--home", home)[1]
    assert run(capsys, "accounts", "delete", "ada", "--home", home)[0] == 0
    assert json.loads(run(capsys, "accounts", "list", "--format", "json", "--home", home)[1]) == []
    (shown,) = json.loads(run(capsys, "accounts", "list", "--deleted", "--format", "json", "--home", home)[1])
    assert shown["name"] == "ada" and shown["deleted_at"]
    keys = run(capsys, "accounts", "keys", "list", "ada", "--home", home)[1]
    assert keys.splitlines()[1].split()[-1] != "-"  # revoked
    code, _, err = run(capsys, "accounts", "add", "ada", "--home", home)
    assert code == 1 and "was deleted" in err
    assert run(capsys, "accounts", "keys", "create", "ada", "--home", home)[0] == 1
    records_after = run(capsys, "audit", "export", "--home", home)[1]
    assert records_after.startswith(records_before)  # every record kept; the deletion itself is one more
    (deletion,) = [json.loads(line) for line in records_after[len(records_before) :].splitlines()]
    assert deletion["event"] == "admin" and deletion["action"] == "account.delete" and deletion["account"] == "ada"
    assert deletion["before"]["deleted_at"] is None and deletion["after"]["deleted_at"]
    assert run(capsys, "accounts", "restore", "ada", "--home", home)[0] == 0
    assert [a["name"] for a in json.loads(run(capsys, "accounts", "list", "--format", "json", "--home", home)[1])] == [
        "ada"
    ]


def test_a_deleted_accounts_key_is_refused_by_the_gateway(tmp_path: Path):
    from exportgate.errors import InvalidApiKeyError
    from exportgate.identity import AccountStore

    store = AccountStore(tmp_path / "accounts.db")
    _, key = store.add_account("ada", citizenships=["US"])
    store.delete_account("ada")
    with pytest.raises(InvalidApiKeyError):
        store.subject_for_key(key.secret)
    store.close()


def test_explain_still_needs_no_home(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "directive", "explain", EXAMPLE, "--model", "fable-5", "--citizenship", "US")[0] == 0
    assert list(tmp_path.iterdir()) == []
