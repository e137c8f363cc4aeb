"""Screening across replicas: PostgreSQL and two real ``exportgate serve`` processes. A list loaded from the
CLI makes an account whose name it adds ``screening_pending`` on its next request on the other replica;
an officer's confirmation through the admin API makes it ``screening_hit``; clearing gives access back.
Each within a second; each step an audit record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLE
from tests.state.test_replicas import Replica, call, cli, database, start_replica, until

__all__ = ["database"]  # the fixture, shared with the replica test of the state


@pytest.fixture
def pair(tmp_path: Path, database: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            started.append(start_replica(name, tmp_path, database))
        yield started
    finally:
        for replica in started:
            replica.kill()


def test_a_newly_listed_account_is_denied_on_every_replica_until_reviewed(pair: list[Replica], database: str,
                                                                          tmp_path: Path):  # fmt: skip
    a, b = pair
    made = cli("admin", "tokens", "add", "olga", "--role", "admin", "--database-url", database, "--home", str(a.home))
    assert made.returncode == 0, made.stderr
    token = {"Authorization": f"Bearer {made.stdout.strip()}"}
    screened = EXAMPLE.read_text("utf-8").replace(
        "require_kyc: verified", "require_kyc: verified\n    require_screening_clear: true")
    screened = screened.replace('version: "2026-06-14.1"', 'version: "2026-12-01.1"')
    published = httpx.post(a.admin + "/directives", headers={**token, "content-type": "application/yaml"},
                           content=screened.encode(), timeout=10)  # fmt: skip
    assert published.status_code == 201, published.text

    first = tmp_path / "watch.csv"
    first.write_text("id,name,type\nW-1,Somebody Else Entirely,individual\n", encoding="utf-8")
    loaded = cli("screening", "load", str(first), "--list", "watch", "--database-url", database, "--home", str(a.home))
    assert loaded.returncode == 0, loaded.stderr
    created = httpx.post(a.admin + "/accounts", headers=token, timeout=10,
                         json={"name": "dora", "legal_name": "Dora Kowalczyk", "citizenships": ["US"],
                               "kyc": "verified"})  # fmt: skip
    assert created.status_code == 201 and created.json()["account"]["screening"] == "clear", created.text
    key = created.json()["key"]["secret"]
    until(lambda: call(b, key).status_code == 200, "the screened account on B", 2.0)

    second = tmp_path / "watch2.csv"
    second.write_text("id,name,type\nW-1,Somebody Else Entirely,individual\nW-2,KOWALCZYK Dora,individual\n",
                      encoding="utf-8")  # fmt: skip
    loaded = cli("screening", "load", str(second), "--list", "watch", "--note", "watch list update",
                 "--database-url", database, "--home", str(a.home))  # fmt: skip
    assert loaded.returncode == 0 and "dora: clear -> pending" in loaded.stdout, loaded.stdout + loaded.stderr
    until(lambda: call(b, key).status_code == 451, "screening_pending on B", 1.0)
    assert call(b, key).json()["error"]["code"] == "screening_pending"

    queue = httpx.get(b.admin + "/screening/queue", headers=token, timeout=10).json()
    assert [(q["account"], [c["id"] for c in q["candidates"]]) for q in queue] == [("dora", ["watch:W-2"])]
    confirmed = httpx.post(a.admin + "/screening/accounts/dora/confirm", headers=token, timeout=10,
                           json={"candidate": "watch:W-2", "reason": "same passport number"})  # fmt: skip
    assert confirmed.status_code == 200 and confirmed.json()["screening"] == "hit", confirmed.text
    until(lambda: call(b, key).json().get("error", {}).get("code") == "screening_hit", "screening_hit on B", 1.0)

    cleared = httpx.post(b.admin + "/screening/accounts/dora/clear", headers=token, timeout=10,
                         json={"candidate": "W-2", "reason": "different person: date of birth differs"})  # fmt: skip
    assert cleared.status_code == 200 and cleared.json()["screening"] == "clear", cleared.text
    until(lambda: call(a, key).status_code == 200, "access back on A", 1.0)

    screened_name = httpx.post(a.admin + "/screening/screen", headers=token, timeout=10,
                               json={"name": "Dora Kowalczyk", "type": "individual"}).json()  # fmt: skip
    assert [c["id"] for c in screened_name["candidates"]] == ["watch:W-2"]

    exported = cli("audit", "export", "--audit-url", database, "--home", str(a.home))
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    admin = [(r["action"], r["target"], r["actor"]) for r in records if r.get("event") == "admin"]
    assert any(x[:2] == ("screening.load", "watch v2") for x in admin)
    assert ("screening.confirm", "dora", "olga") in admin and ("screening.clear", "dora", "olga") in admin
    assert any(x[0] == "screening.result" and x[1] == "dora" for x in admin)
