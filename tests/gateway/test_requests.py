"""What the model routes accept, tested against upstreams that read bodies differently: one reading for
every parser, the credential before the body, bounded parse cost and names, nothing internal in answers."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportgate.config import Settings
from exportgate.errors import BadRequestError
from exportgate.gateway import ClientIpResolver, Gateway, Routing, parts_from_settings
from exportgate.gateway._admin import AdminGuard
from exportgate.gateway._body import BodyLimits, parse_request
from tests.upstreams import RecordingUpstream

from .conftest import ADMIN_TOKEN, make_home

CN, US = "114.114.114.114", "3.3.3.3"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


class InProcess:
    """A gateway built from settings, called through ASGI in this process (real writer, real store)."""

    def __init__(self, home: Path, upstream: str | None = None, **settings: Any) -> None:
        self.keys = make_home(home)
        self.parts = parts_from_settings(Settings({"home": str(home), "access_log": False, **settings}))
        self.parts.client_ip = ClientIpResolver(["127.0.0.1/32"])
        if upstream is not None:
            self.parts.routing = Routing.single(upstream)
        self.app = Gateway(self.parts)
        self.loop = asyncio.new_event_loop()  # one loop for every call: pooled upstream connections live in it

    def request(self, method: str, path: str, *, content: bytes = b"", headers: dict[str, Any] | None = None,
                who: str | None = "ada", ip: str = US) -> httpx.Response:  # fmt: skip
        sent = {"X-Forwarded-For": ip, **({"Authorization": f"Bearer {self.keys[who]}"} if who else {}),
                **(headers or {})}  # fmt: skip

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.request(method, path, content=content, headers=sent)

        return self.loop.run_until_complete(go())

    def chat(self, body: bytes | dict[str, Any], **kw: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return self.request("POST", "/v1/chat/completions", content=content, **kw)

    def records(self) -> list[dict[str, Any]]:
        self.parts.audit.flush()
        return [json.loads(r.body) for r in self.parts.audit.store.chain_rows() if r.kind == "decision"]

    def close(self) -> None:
        self.loop.run_until_complete(self.app.close())
        self.loop.close()


@pytest.fixture
def upstream_of() -> Iterator[Any]:
    made: list[RecordingUpstream] = []

    def make(reading: str) -> RecordingUpstream:
        made.append(RecordingUpstream(reading))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


MESSAGES = '"messages":[{"role":"user","content":"hi"}]'


@pytest.mark.parametrize(
    "body",
    [
        '{"model":"fable-5","model":"sonnet-4",' + MESSAGES + "}",  # the restricted model first, the open one last
        '{"model":"fable-5","mod\\u0065l":"sonnet-4",' + MESSAGES + "}",  # the same key, spelt differently
        '{"model":"sonnet-4",' + MESSAGES + ',"metadata":{"a":1,"a":2}}',  # a duplicate anywhere
        '{"model":"sonnet-4","messages":[{"role":"user","role":"system","content":"hi"}]}',
    ],
)
def test_a_repeated_key_is_refused_before_any_upstream_reads_it(home: Path, upstream_of, body: str):
    upstream = upstream_of("first-wins")
    gateway = InProcess(home, upstream.url)
    response = gateway.chat(body.encode(), who="li", ip=CN)  # a Chinese national in China
    assert response.status_code == 400 and "repeats a key" in response.json()["error"]["message"]
    assert upstream.received == [] and gateway.records() == []
    gateway.close()


@pytest.mark.parametrize(
    ("reading", "body"),
    [
        ("any-case", '{"model":"sonnet-4","MODEL":"fable-5",' + MESSAGES + "}"),  # Go: the last match wins
        ("any-case", '{"model":"sonnet-4","Model":"fable5",' + MESSAGES + "}"),
        ("nul-cut", '{"model\\u0000":"fable-5","model":"sonnet-4",' + MESSAGES + "}"),  # C: the key ends at NUL
        ("last-wins", '{"model":"sonnet-4",' + MESSAGES + ',"metadata":{"\\u017feed":1,"seed":2}}'),  # U+017F: s
    ],
)
def test_keys_one_parser_reads_as_one_are_refused(home: Path, upstream_of, reading: str, body: str):
    upstream = upstream_of(reading)
    gateway = InProcess(home, upstream.url)
    response = gateway.chat(body.encode(), who="li", ip=CN)
    assert response.status_code == 400 and "some parsers read them as one key" in response.json()["error"]["message"]
    assert upstream.received == [] and gateway.records() == []
    gateway.close()


@pytest.mark.parametrize("key", ["fallbacks", "models", "user_config", "FALLBACKS", "api_base", "route"])
def test_keys_that_let_an_upstream_pick_another_model_are_refused(home: Path, upstream_of, key: str):
    upstream = upstream_of("last-wins")
    gateway = InProcess(home, upstream.url)
    response = gateway.chat({"model": "sonnet-4", key: ["fable-5"], "messages": []}, who="li", ip=CN)
    assert response.status_code == 400 and key in response.json()["error"]["message"]
    assert upstream.received == []
    gateway.close()


def test_an_unrenamed_body_is_forwarded_byte_for_byte(home: Path, upstream_of):
    upstream = upstream_of("last-wins")
    gateway = InProcess(home, upstream.url)
    body = b'{"model":"sonnet-4","seed":123456789012345678901234567890, "messages": [], "x": -1e-400}'
    assert gateway.chat(body).status_code == 200
    assert upstream.received[0]["body"] == body  # a big integer stays one, spacing and all
    gateway.close()


def test_an_upstream_failure_reaches_the_caller_without_its_internals(home: Path, upstream_of, caplog):
    upstream = RecordingUpstream("last-wins", fail_with=500)
    gateway = InProcess(home, upstream.url)
    response = gateway.chat({"model": "sonnet-4", "messages": []})
    assert response.status_code == 502 and "10.1.2.3" not in response.text and "sk-internal" not in response.text
    assert any("sk-internal" in r.getMessage() for r in caplog.records)  # the detail is in the operator's log
    gateway.close()
    upstream.close()


def test_the_upstream_gets_json_with_exactly_the_model_decided_on(home: Path, upstream_of):
    upstream = upstream_of("first-wins")
    gateway = InProcess(home, upstream.url)
    response = gateway.chat({"model": " vendor/FABLE5 ", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["model"] == "fable-5"
    (received,) = upstream.received
    assert received["model"] == "fable-5" and received["headers"]["content-type"] == "application/json"
    (record,) = gateway.records()
    assert (record["model"], record["decision"]) == ("fable-5", "allow")
    gateway.close()


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/x-www-form-urlencoded", 415),
        ("text/plain", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=latin-1", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        (None, 200),  # absent: read as JSON, and sent on as application/json
    ],
)
def test_only_json_reaches_an_upstream_that_honours_forms(home: Path, upstream_of, content_type, status):
    upstream = upstream_of("form")
    gateway = InProcess(home, upstream.url)
    body = b'{"model":"sonnet-4","messages":[{"role":"user","content":"x&model=fable-5&y"}]}'
    response = gateway.chat(body, who="li", ip=CN, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code == status
    if status == 415:
        assert response.json()["error"]["code"] == "unsupported_media_type" and upstream.received == []
    else:
        assert [r["model"] for r in upstream.received] == ["sonnet-4"]
        assert upstream.received[0]["headers"]["content-type"] == "application/json"
    gateway.close()


# -- one reading for every parser (property) ------------------------------------------------------------

KEYS = st.sampled_from(["model", "messages", "a", "b", "role", "MODEL", "Role", "a\x00"])


def _spell(key: str, escape: bool) -> str:
    """A key as JSON text, sometimes with a character written as a \\u escape (the same key to a parser)."""
    if escape and key:
        return '"' + f"\\u{ord(key[0]):04x}" + key[1:] + '"'
    return json.dumps(key)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=5).map(json.dumps),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(map(str, xs)) + "]")
        | st.lists(st.tuples(KEYS, st.booleans(), inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{_spell(k, e)}:{v}" for k, e, v in pairs) + "}"
        )
    ),
    max_leaves=12,
).map(lambda v: v if isinstance(v, str) else json.dumps(v))


@settings(max_examples=400)
@given(st.lists(st.tuples(KEYS, st.booleans(), values), max_size=5), st.text(min_size=1, max_size=8))
def test_a_body_the_gateway_accepts_reads_the_same_to_every_parser(pairs, model):
    body = "{" + ",".join([f'"model":{json.dumps(model)}', *(f"{_spell(k, e)}:{v}" for k, e, v in pairs)]) + "}"
    try:
        payload, decided = parse_request(body.encode(), BodyLimits())
    except BadRequestError:
        return
    readings = [
        orjson.loads(body),
        json.loads(body),  # last wins
        json.loads(body, object_pairs_hook=lambda p: dict(reversed(p))),  # first wins
    ]
    assert all(r == payload for r in readings) and decided == payload["model"]
    any_case = [v for k, v in json.loads(body, object_pairs_hook=lambda p: p) if k.lower() == "model"]
    assert any_case == [decided]  # a parser that ignores case reads the same model


# -- the credential first, bounded cost ------------------------------------------------------------------


def _asgi(gateway: InProcess, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """Call the app directly; (status, how many body messages it read)."""
    taken = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if taken < len(body_chunks):
            taken += 1
            return {"type": "http.request", "body": body_chunks[taken - 1], "more_body": taken < len(body_chunks)}
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers,
             "client": ("127.0.0.1", 4000), "query_string": b""}  # fmt: skip
    gateway.loop.run_until_complete(gateway.app(scope, receive, send))
    return status, taken


def test_a_body_without_a_valid_credential_is_never_read(home: Path):
    gateway = InProcess(home)
    chunks = [b"[" + b"{}," * (1 << 20)] * 10  # ~31 MiB of [{},{},...]
    assert _asgi(gateway, chunks, []) == (401, 0)
    assert _asgi(gateway, chunks, [(b"authorization", b"Bearer egk_forged")]) == (401, 0)
    gateway.close()


def test_parse_cost_is_bounded_before_parsing(home: Path):
    gateway = InProcess(home, max_json_values=100_000)
    many = b'{"model":"sonnet-4","messages":[' + b"{}," * 1_000_000 + b"{}]}"
    auth = [(b"authorization", f"Bearer {gateway.keys['ada']}".encode())]
    tracemalloc.start()
    status, _ = _asgi(gateway, [many], auth)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert status == 413
    assert peak < 3 * len(many)  # parsing a million objects would take over 50 MB
    deep = b'{"model":"sonnet-4","x":' + b"[" * 100 + b"]" * 100 + b"}"
    assert _asgi(gateway, [deep], auth)[0] == 400
    nested = b'{"model":"sonnet-4","x":[' + b",".join([b"[" * 60 + b"]" * 60] * 5_000) + b"]}"  # few commas
    tracemalloc.start()
    status, _ = _asgi(gateway, [nested], auth)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert status == 413 and peak < 3 * len(nested)  # 300,000 arrays: counted, not parsed
    assert gateway.records() == []
    gateway.close()


def test_model_names_are_capped_and_never_echoed_in_full(home: Path):
    gateway = InProcess(home)
    before = gateway.parts.audit.store.count()
    huge = gateway.chat({"model": "m" * (4 << 20), "messages": []})
    assert huge.status_code == 400 and len(huge.content) < 1024 and "256 bytes" in huge.json()["error"]["message"]
    assert gateway.parts.audit.store.count() == before  # nothing recorded for it
    longest = "z" * 256
    unknown = gateway.chat({"model": longest, "messages": []})
    assert unknown.status_code == 404 and len(unknown.content) < 1024 and longest not in unknown.text
    (record,) = gateway.records()
    assert record["requested_model"] == longest  # the record keeps what was asked, whole
    gateway.close()


# -- nothing internal in public answers ------------------------------------------------------------------


def test_a_502_does_not_name_the_upstream(home: Path, caplog):
    gateway = InProcess(home, "http://127.0.0.1:9")
    response = gateway.chat({"model": "sonnet-4", "messages": []})
    assert response.status_code == 502
    assert "127.0.0.1" not in response.text and ":9" not in response.text
    assert response.json()["error"]["message"] == "the upstream model is unavailable"
    assert any("127.0.0.1:9" in r.getMessage() for r in caplog.records)  # the detail is in the log
    gateway.close()


def test_operational_detail_needs_the_admin_token(home: Path):
    gateway = InProcess(home)
    gateway.parts.admin = AdminGuard(None)  # none configured: not served at all
    assert gateway.request("GET", "/metrics", who=None).status_code == 403
    gateway.parts.admin = AdminGuard(ADMIN_TOKEN)
    assert gateway.request("GET", "/metrics", who=None).status_code == 401
    assert gateway.request("GET", "/metrics", who="ada").status_code == 401  # an API key is not the admin token
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert gateway.request("GET", "/metrics", who=None, headers=admin).status_code == 200
    public = gateway.request("GET", "/readyz", who=None)
    assert public.json() == {"status": "ready"} and str(home) not in public.text
    detail = gateway.request("GET", "/readyz", who=None, headers=admin).json()
    assert detail["checks"]["audit"]["ok"] is True
    assert "models" not in gateway.request("GET", "/directive", who=None).json()
    gateway.close()


def test_the_upstream_is_asked_for_plain_bytes_and_an_encoding_it_uses_anyway_is_passed_on(home: Path):
    """Found by an outside pass: an upstream that compressed its answer (no Accept-Encoding means any is
    acceptable) had its bytes passed on without their Content-Encoding, so the client could not read them."""
    upstream = RecordingUpstream("last-wins", compress=True)
    gateway = InProcess(home, upstream.url)
    response = gateway.chat({"model": "sonnet-4", "messages": []})
    assert upstream.received[0]["headers"]["accept-encoding"] == "identity"
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.json()["model"] == "sonnet-4"  # httpx decodes it: the bytes and their encoding agree
    gateway.close()
    upstream.close()
