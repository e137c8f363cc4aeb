"""The admin API over real HTTP (``exportgate serve --admin-port``), on the zero-setup SQLite home: roles,
every action on the record, hostile bodies, the OpenAPI document, decisions export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportgate.admin import ROUTES
from tests.conftest import EXAMPLE
from tests.gateway.conftest import Server, free_port, serve

CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "hello"}]}


@dataclass
class Admin:
    gateway: Server
    url: str
    tokens: dict[str, str]

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def records(self) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "exportgate.cli", "audit", "export", "--home",
                              str(self.gateway.home)], capture_output=True, text=True, check=True).stdout  # fmt: skip
        return [json.loads(line) for line in out.splitlines()]


def _token(home: Path, role: str) -> str:
    done = subprocess.run([sys.executable, "-m", "exportgate.cli", "admin", "tokens", "add", f"t-{role}", "--role",
                           role, "--home", str(home)], capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    home = tmp_path_factory.mktemp("admin") / "home"
    port = free_port()
    subprocess.run([sys.executable, "-m", "exportgate.cli", "accounts", "add", "seed", "--home", str(home)],
                   capture_output=True, check=True)  # fmt: skip
    tokens = {role: _token(home, role) for role in ("viewer", "officer", "admin")}
    gateway = serve(home, "--admin-port", str(port), "--trusted-proxy", "127.0.0.1/32")
    url = f"http://127.0.0.1:{port}/admin/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "the admin API did not come up"
            time.sleep(0.1)
    yield Admin(gateway, url, tokens)
    gateway.stop()


def test_the_public_port_has_no_admin_api(admin: Admin):
    answer = httpx.get(admin.gateway.url + "/admin/v1/accounts", headers=admin.as_("admin"))
    assert answer.status_code == 404


def test_no_token_is_401_a_lower_role_403_and_both_are_on_the_record(admin: Admin):
    assert httpx.get(admin.url + "/accounts").status_code == 401
    bad = httpx.get(admin.url + "/accounts", headers={"Authorization": "Bearer egadm_0000_forged"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    refused = httpx.post(admin.url + "/accounts/seed/suspend", headers=admin.as_("viewer"), json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    yaml = {**admin.as_("officer"), "content-type": "application/yaml"}
    refused = httpx.post(admin.url + "/directives", headers=yaml, content=EXAMPLE.read_bytes())
    assert refused.status_code == 403
    denied = [r for r in admin.records() if r.get("action") == "api.denied"]
    assert {r["after"]["status"] for r in denied} == {401, 403}
    assert any(r["actor"] == "t-viewer" and r["target"] == "POST /admin/v1/accounts/seed/suspend" for r in denied)
    assert httpx.get(admin.url + "/accounts/seed", headers=admin.as_("viewer")).json()["suspended"] is False


def test_an_account_through_its_life_each_step_a_record(admin: Admin):
    officer = admin.as_("officer")
    made = httpx.post(admin.url + "/accounts", headers=officer, json={"name": "ada", "citizenships": ["us"],
                                                                     "kyc": "verified", "note": "onboarding"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]["secret"]
    call = httpx.post(admin.gateway.url + "/v1/chat/completions", json=CHAT,
                      headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})  # fmt: skip
    assert call.status_code == 200
    got = httpx.get(admin.url + "/accounts/ada", headers=admin.as_("viewer"))
    assert got.json()["citizenships"] == ["US"] and got.headers["etag"] == '"1"' and len(got.json()["keys"]) == 1
    changed = httpx.patch(admin.url + "/accounts/ada", headers={**officer, "If-Match": '"1"'},
                          json={"organization": "Lab"})  # fmt: skip
    assert changed.status_code == 200 and changed.json()["revision"] == 2
    stale = httpx.patch(admin.url + "/accounts/ada", headers={**officer, "If-Match": '"1"'}, json={"kyc": "basic"})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert httpx.post(admin.url + "/accounts/ada/suspend", headers=officer, json={"note": "case 9"}).status_code == 200
    denied = httpx.post(admin.gateway.url + "/v1/chat/completions", json=CHAT,
                        headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "3.3.3.3"})  # fmt: skip
    assert denied.status_code == 451 and denied.json()["error"]["code"] == "account_suspended"
    assert httpx.post(admin.url + "/accounts/ada/restore", headers=officer, json={}).json()["suspended"] is False
    second = httpx.post(admin.url + "/accounts/ada/keys", headers=officer, json={})
    assert second.status_code == 201
    revoked = httpx.post(admin.url + f"/keys/{second.json()['key_id']}/revoke", headers=officer, json={})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert httpx.request("DELETE", admin.url + "/accounts/ada", headers=officer, json={}).json()["deleted_at"]
    assert httpx.get(admin.url + "/accounts?search=AD", headers=admin.as_("viewer")).json()["total"] == 0
    assert httpx.post(admin.url + "/accounts/ada/undelete", headers=officer, json={}).status_code == 200
    page = httpx.get(admin.url + "/accounts?search=AD&limit=1", headers=admin.as_("viewer")).json()
    assert page["total"] == 1 and [a["name"] for a in page["items"]] == ["ada"]
    actions = [r for r in admin.records() if r.get("event") == "admin" and r.get("account") == "ada"]
    assert [r["action"] for r in actions] == ["account.create", "account.update", "account.suspend",
                                              "account.unsuspend", "key.issue", "key.revoke", "account.delete",
                                              "account.restore"]  # fmt: skip
    suspension = actions[2]
    assert suspension["actor"] == "t-officer" and suspension["role"] == "officer" and suspension["via"] == "api"
    assert suspension["before"]["suspended"] is False and suspension["after"]["suspended"] is True
    assert suspension["note"] == "case 9"


@pytest.mark.parametrize(("body", "status"), [
    (b'{"name": "x", "name": "y"}', 400),  # a duplicate key: one reader would act on x, another on y
    (b'{"name": "x", "colour": "red"}', 400),
    (b"[1, 2]", 400),
    (b"\xff\xfe", 400),
    (b"[" * 100_000, 400),
    (b'{"name": "x", "citizenships": ["ZZ"]}', 400),
    (b'{"name": "x", "us_person": "yes"}', 400),
    (b'{"name": "x", "kyc": "gold"}', 400),
    (b'{"name": ""}', 400),
    (b'{"name": "x\\u0000y"}', 400),
    (b"x" * (2 << 20), 413),
])  # fmt: skip
def test_hostile_bodies_are_one_clear_error_and_change_nothing(admin: Admin, body: bytes, status: int):
    before = httpx.get(admin.url + "/accounts?limit=1000", headers=admin.as_("viewer")).json()["total"]
    answer = httpx.post(admin.url + "/accounts", headers={**admin.as_("officer"), "content-type": "application/json"},
                        content=body)  # fmt: skip
    assert answer.status_code == status and set(answer.json()) == {"error"}, answer.text
    assert httpx.get(admin.url + "/accounts?limit=1000", headers=admin.as_("viewer")).json()["total"] == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                         lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                             st.sampled_from(["organization", "kyc", "citizenships", "us_person", "revision", "note",
                                              "screening", "x"]) | st.text(max_size=8), inner, max_size=4),
                         max_leaves=12))  # fmt: skip
def test_any_json_to_an_update_is_answered_never_a_500(admin: Admin, body: object):
    answer = httpx.patch(admin.url + "/accounts/seed", headers=admin.as_("officer"), json=body)
    assert answer.status_code in (200, 400, 409), answer.text
    assert set(answer.json()) == {"error"} or answer.json()["name"] == "seed"


def test_query_parameters_are_checked(admin: Admin):
    viewer = admin.as_("viewer")
    for query in ("limit=0", "limit=abc", "limit=1&limit=2", "offset=-1"):
        assert httpx.get(admin.url + "/accounts?" + query, headers=viewer).status_code == 400, query
    assert httpx.get(admin.url + "/alerts?state=closed", headers=viewer).status_code == 400
    assert httpx.get(admin.url + "/decisions?since=yesterday", headers=viewer).status_code == 400
    assert httpx.get(admin.url + "/decisions?since=2026-01-01T00:00:00", headers=viewer).status_code == 400
    assert httpx.get(admin.url + "/nope", headers=viewer).status_code == 404
    assert httpx.put(admin.url + "/accounts", headers=viewer).status_code == 405


def test_directives_publish_diff_rollback_and_a_bad_one_changes_nothing(admin: Admin):
    boss = {**admin.as_("admin"), "content-type": "application/yaml"}
    text = EXAMPLE.read_text("utf-8")
    first = httpx.post(admin.url + "/directives?note=first", headers=boss, content=text.encode())
    assert first.status_code == 201, first.text
    newer = text.replace('version: "2026-06-14.1"', 'version: "2026-12-02.1"')
    assert httpx.post(admin.url + "/directives", headers=boss, content=newer.encode()).status_code == 201
    bad = httpx.post(admin.url + "/directives", headers=boss, content=text.replace("tiers:", "teirs:").encode())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "directive_invalid"
    history = httpx.get(admin.url + "/directives", headers=admin.as_("viewer")).json()
    assert len(history) == 2 and history[0]["note"] == "first"
    v1, v2 = history[0]["version"], history[1]["version"]
    diff = httpx.get(admin.url + f"/directives/diff?from={v1}&to={v2}", headers=admin.as_("viewer")).json()["diff"]
    assert '-version: "2026-06-14.1"' in diff and '+version: "2026-12-02.1"' in diff
    deadline = time.monotonic() + 3
    while httpx.get(admin.gateway.url + "/directive").json()["version"] != "2026-12-02.1":
        assert time.monotonic() < deadline, "the gateway did not take the published directive"
        time.sleep(0.05)
    rolled = httpx.post(admin.url + f"/directives/{v1}/rollback", headers=admin.as_("admin"), json={"note": "oops"})
    assert rolled.status_code == 201 and rolled.json()["rollback_of"] == v1
    active = httpx.get(admin.url + "/directives/active", headers=admin.as_("viewer")).json()
    assert active["content"] == text and active["version"] == v2 + 1
    while httpx.get(admin.gateway.url + "/directive").json()["version"] != "2026-06-14.1":
        assert time.monotonic() < deadline + 3, "the gateway did not take the rollback"
        time.sleep(0.05)


def test_decisions_search_and_streamed_export(admin: Admin):
    made = httpx.post(admin.url + "/accounts", headers=admin.as_("officer"),
                      json={"name": "dora", "citizenships": ["US"], "kyc": "verified"})  # fmt: skip
    seed_key = made.json()["key"]["secret"]
    for ip in ("3.3.3.3", "114.114.114.114"):
        httpx.post(admin.gateway.url + "/v1/chat/completions", json=CHAT,
                   headers={"Authorization": f"Bearer {seed_key}", "X-Forwarded-For": ip})  # fmt: skip
    viewer = admin.as_("viewer")
    found = httpx.get(admin.url + "/decisions?account=dora&result=deny&country=CN", headers=viewer).json()
    assert found["items"] and all(i["decision"] == "deny" and i["country"] == "CN" for i in found["items"])
    by_reason = httpx.get(admin.url + "/decisions?account=dora&reason=location_not_allowed", headers=viewer).json()
    assert by_reason["items"] and all(
        any(r["code"] == "location_not_allowed" for r in i["reasons"]) for i in by_reason["items"])
    with httpx.stream("GET", admin.url + "/decisions/export?format=csv&account=dora", headers=viewer) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.read().decode())))
    assert {r["decision"] for r in rows} == {"allow", "deny"} and all(r["account"] == "dora" for r in rows)
    lines = httpx.get(admin.url + "/decisions/export?format=jsonl&result=allow", headers=viewer).text.splitlines()
    assert lines and all(json.loads(line)["decision"] == "allow" for line in lines)
    assert httpx.get(admin.url + "/decisions/export?format=xml", headers=viewer).status_code == 400
    status = httpx.get(admin.url + "/audit/status", headers=viewer).json()
    assert status["ok"] is True and all("unsigned_tail" in chain for chain in status["chains"])


def test_tokens_are_managed_by_admins_only_and_a_revoked_one_stops_at_once(admin: Admin):
    assert httpx.get(admin.url + "/tokens", headers=admin.as_("officer")).status_code == 403
    made = httpx.post(admin.url + "/tokens", headers=admin.as_("admin"), json={"name": "ci", "role": "viewer"})
    assert made.status_code == 201 and made.json()["secret"].startswith("egadm_")
    assert "secret" not in json.dumps(httpx.get(admin.url + "/tokens", headers=admin.as_("admin")).json())
    ci = {"Authorization": f"Bearer {made.json()['secret']}"}
    assert httpx.get(admin.url + "/accounts", headers=ci).status_code == 200
    assert httpx.post(admin.url + f"/tokens/{made.json()['id']}/revoke", headers=admin.as_("admin"),
                      json={}).status_code == 200  # fmt: skip
    assert httpx.get(admin.url + "/accounts", headers=ci).status_code == 401
    assert httpx.post(admin.url + "/tokens", headers=admin.as_("admin"),
                      json={"name": "x", "role": "root"}).status_code == 400  # fmt: skip


def test_the_openapi_document_names_every_route_with_its_role(admin: Admin):
    document = httpx.get(admin.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for route in ROUTES:
        operation = document["paths"]["/admin/v1" + route.path][route.method.lower()]
        assert operation["x-exportgate-role"] == route.role and operation["operationId"] == route.handler


# -- found by the outside pass of issue 17 ------------------------------------------------------------------


def test_an_account_may_not_take_a_subject_name_so_a_suspension_always_reaches_it(admin: Admin):
    for name in ("jwt:corp#7", "JWT:x", "account:ada"):
        refused = httpx.post(admin.url + "/accounts", headers=admin.as_("officer"), json={"name": name})
        assert refused.status_code == 400 and "may not start with" in refused.json()["error"]["message"]


def test_a_note_too_long_changes_nothing_and_writes_nothing(admin: Admin):
    officer, note = admin.as_("officer"), "x" * 2001
    keys_before = httpx.get(admin.url + "/keys?account=seed", headers=officer).json()
    records_before = len(admin.records())
    for method, path, body in (("POST", "/accounts/seed/keys", {"note": note}),
                               ("POST", "/accounts/seed/suspend", {"note": note}),
                               ("POST", "/accounts/jwt:x%23y/suspend", {"note": note})):  # fmt: skip
        answer = httpx.request(method, admin.url + path, headers=officer, json=body)
        assert answer.status_code == 400, answer.text
    made = httpx.post(admin.url + "/tokens", headers=admin.as_("admin"), json={"name": "n", "role": "viewer",
                                                                              "note": note})  # fmt: skip
    assert made.status_code == 400
    assert httpx.get(admin.url + "/keys?account=seed", headers=officer).json() == keys_before
    assert [t["name"] for t in httpx.get(admin.url + "/tokens", headers=admin.as_("admin")).json()].count("n") == 0
    assert httpx.get(admin.url + "/accounts/seed", headers=officer).json()["suspended"] is False
    assert len(admin.records()) == records_before


def test_names_with_a_slash_or_a_hash_are_one_path_parameter(admin: Admin):
    officer = admin.as_("officer")
    assert httpx.post(admin.url + "/accounts", headers=officer, json={"name": "lab/ada"}).status_code == 201
    assert httpx.get(admin.url + "/accounts/lab%2Fada", headers=officer).json()["name"] == "lab/ada"
    subject = "jwt:https://idp.example.test#u-9"
    encoded = "jwt:https:%2F%2Fidp.example.test%23u-9"
    assert httpx.post(admin.url + f"/accounts/{encoded}/suspend", headers=officer, json={}).status_code == 200
    record = [r for r in admin.records() if r.get("action") == "account.suspend"][-1]
    assert record["target"] == subject and record["before"] == {"suspended": False}
    again = httpx.post(admin.url + f"/accounts/{encoded}/suspend", headers=officer, json={})
    assert again.status_code == 200
    assert [r for r in admin.records() if r.get("action") == "account.suspend"][-1]["before"] == {"suspended": True}
    assert httpx.post(admin.url + f"/accounts/{encoded}/restore", headers=officer, json={}).status_code == 200


@pytest.mark.parametrize("path", [
    "/accounts/%00", "/accounts?search=%00", "/decisions?account=%00", "/directives/" + "9" * 5000,
    "/accounts?offset=" + "9" * 5000, "/decisions?limit=" + "9" * 5000, "/accounts?limit=%EF%BC%91",
    "/directives/diff?from=1&to=" + "9" * 5000, "/accounts/%FF",
])  # fmt: skip
def test_nul_huge_and_non_ascii_numbers_are_400_and_keep_the_pool(admin: Admin, path: str):
    answer = httpx.get(admin.url + path, headers=admin.as_("viewer"))
    assert answer.status_code == 400, (path[:40], answer.status_code, answer.text[:200])
    stale = httpx.patch(admin.url + "/accounts/seed", headers={**admin.as_("officer"), "If-Match": "9" * 5000},
                        json={"organization": "x"})  # fmt: skip
    assert stale.status_code == 400


@pytest.mark.parametrize("body", [{"kyc": None}, {"kyc": 1}, {"screening": 5}, {"screening": ["hit"]}])
def test_a_value_of_the_wrong_type_is_refused_not_coerced(admin: Admin, body: dict):
    before = httpx.get(admin.url + "/accounts/seed", headers=admin.as_("viewer")).json()
    answer = httpx.patch(admin.url + "/accounts/seed", headers=admin.as_("officer"), json=body)
    assert answer.status_code == 400
    assert httpx.get(admin.url + "/accounts/seed", headers=admin.as_("viewer")).json()["revision"] == before["revision"]


def test_yaml_aliases_are_refused_before_they_expand(admin: Admin):
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    started = time.monotonic()
    answer = httpx.post(admin.url + "/directives", headers={**admin.as_("admin"), "content-type": "application/yaml"},
                        content=laughs.encode(), timeout=10)  # fmt: skip
    assert answer.status_code == 400 and "aliases" in answer.json()["error"]["message"]
    assert time.monotonic() - started < 5


def test_one_directive_version_names_one_content(admin: Admin):
    boss = {**admin.as_("admin"), "content-type": "application/yaml"}
    text = EXAMPLE.read_text("utf-8").replace('version: "2026-06-14.1"', 'version: "2026-12-09.1"')
    assert httpx.post(admin.url + "/directives", headers=boss, content=text.encode()).status_code == 201
    other = text.replace("sonnet-4", "sonnet-4-b", 1)
    conflict = httpx.post(admin.url + "/directives", headers=boss, content=other.encode())
    assert conflict.status_code == 409 and "new version" in conflict.json()["error"]["message"]
    assert httpx.post(admin.url + "/directives", headers=boss, content=text.encode()).status_code == 201  # same


def test_screening_routes_check_roles_and_refuse_what_is_not_text(admin: Admin):
    officer, viewer = admin.as_("officer"), admin.as_("viewer")
    for path, body in (("/screening/screen", rb'{"name": "\ud800 Abu Teir"}'),
                       ("/screening/accounts/seed/clear", rb'{"candidate": "csl:1", "reason": "\udfff"}')):  # fmt: skip
        answer = httpx.post(admin.url + path, headers={**officer, "content-type": "application/json"}, content=body,
                            timeout=10)  # fmt: skip
        assert answer.status_code == 400 and "surrogate" in answer.json()["error"]["message"], answer.text
    patched = httpx.patch(admin.url + "/accounts/seed", headers={**officer, "content-type": "application/json"},
                          content=rb'{"legal_name": "\ud800"}', timeout=10)  # fmt: skip
    assert patched.status_code == 400
    denied = httpx.post(admin.url + "/screening/accounts/seed/confirm", headers=viewer, json={"candidate": "x"},
                        timeout=10)  # fmt: skip
    assert denied.status_code == 403
    found = httpx.post(admin.url + "/screening/screen", headers=viewer, json={"name": "Anyone At All"}, timeout=10)
    assert found.status_code == 200 and found.json()["candidates"] == [] and found.json()["lists"] == []
    for bad in ({"name": "x", "dob": "1951-02-30"}, {"name": "x", "limit": True}, {"name": "x", "threshold": 2},
                {"name": ""}, {"name": "x", "type": "ship"}):  # fmt: skip
        answer = httpx.post(admin.url + "/screening/screen", headers=viewer, json=bad, timeout=10)
        assert answer.status_code == 400, (bad, answer.text)
