"""The official OpenAI and Anthropic SDKs against a served gateway: allowed and denied people, streaming."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from .conftest import Server

US_IP, CN_IP, DE_IP, TOR_IP = "3.3.3.3", "114.114.114.114", "5.9.0.1", "185.220.101.1"


_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _clients:
        _clients.pop().close()


def oai(server: Server, who: str, ip: str) -> openai.OpenAI:
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key=server.keys[who], max_retries=0, default_headers={"X-Forwarded-For": ip}
    )
    _clients.append(client)
    return client


def claude(server: Server, who: str, ip: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(
        base_url=server.url, api_key=server.keys[who], max_retries=0, default_headers={"X-Forwarded-For": ip}
    )
    _clients.append(client)
    return client


HELLO = [{"role": "user", "content": "Say hello."}]


def test_openai_chat_allowed_for_a_us_person_at_home(gateway: Server):
    reply = oai(gateway, "ada", US_IP).chat.completions.create(model="fable-5", messages=HELLO)
    assert reply.model == "fable-5"
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_openai_stream_allowed(gateway: Server):
    stream = oai(gateway, "greta", US_IP).chat.completions.create(
        model="fable-5", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and text
    assert chunks[-1].usage is not None


def test_openai_foreign_person_gets_451_with_every_reason(gateway: Server):
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway, "li", CN_IP).chat.completions.create(model="fable-5", messages=HELLO)
    response = caught.value.response
    assert response.status_code == 451
    assert response.headers["link"] == '</directive>; rel="blocked-by"'
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert error["type"] == "access_denied" and error["param"] is None
    codes = [r["code"] for r in error["reasons"]]
    assert codes == ["us_person_required", "location_not_allowed"]
    assert error["code"] == "us_person_required"
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_openai_stream_request_denied_before_any_stream(gateway: Server):
    with pytest.raises(openai.APIStatusError) as caught:
        list(oai(gateway, "ada", TOR_IP).chat.completions.create(model="fable-5", messages=HELLO, stream=True))
    assert caught.value.status_code == 451
    assert "anonymizer_denied" in [r["code"] for r in caught.value.response.json()["error"]["reasons"]]


def test_open_model_allowed_for_anyone(gateway: Server):
    reply = oai(gateway, "li", CN_IP).chat.completions.create(model="sonnet-4", messages=HELLO)
    assert reply.choices[0].message.content


def test_other_openai_routes(gateway: Server):
    client = oai(gateway, "ada", US_IP)
    assert client.embeddings.create(model="sonnet-4", input=["a", "b"]).data[1].index == 1
    assert client.completions.create(model="sonnet-4", prompt="hi").choices[0].text
    assert client.responses.create(model="fable-5", input="hi").output_text
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway, "olaf", DE_IP).responses.create(model="fable-5", input="hi")
    assert caught.value.status_code == 451


def test_anthropic_messages_allowed_and_streamed(gateway: Server):
    client = claude(gateway, "ada", US_IP)
    message = client.messages.create(model="fable-5", max_tokens=100, messages=HELLO)
    assert message.content[0].text and message.usage.output_tokens > 0
    with client.messages.stream(model="fable-5", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
    assert text


def test_anthropic_denial_in_anthropic_shape(gateway: Server):
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude(gateway, "li", CN_IP).messages.create(model="fable-5", max_tokens=10, messages=HELLO)
    assert caught.value.status_code == 451
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "access_denied"
    assert [r["code"] for r in body["error"]["reasons"]] == ["us_person_required", "location_not_allowed"]
    assert caught.value.response.headers["link"].endswith('rel="blocked-by"')


@pytest.mark.parametrize("spelling", ["FABLE5", "vendor/fable-5", " fable-5 ", "Fable-5-Latest", "fable\u200b-5"])
def test_model_aliasing_decides_as_the_canonical_model(gateway: Server, spelling: str):
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway, "li", CN_IP).chat.completions.create(model=spelling, messages=HELLO)
    assert caught.value.status_code == 451
    assert "fable-5" in caught.value.response.json()["error"]["message"]
    reply = oai(gateway, "ada", US_IP).chat.completions.create(model=spelling, messages=HELLO)
    assert reply.model == "fable-5"  # the upstream is asked for the canonical model


def test_unknown_model_is_404(gateway: Server):
    with pytest.raises(openai.NotFoundError) as caught:
        oai(gateway, "ada", US_IP).chat.completions.create(model="gpt-unknown", messages=HELLO)
    assert caught.value.response.json()["error"]["code"] == "model_not_found"


def test_models_listing_is_filtered_per_caller(gateway: Server):
    assert {m.id for m in oai(gateway, "ada", US_IP).models.list()} == {"fable-5", "mythos-5", "sonnet-4"}
    assert {m.id for m in oai(gateway, "li", CN_IP).models.list()} == {"sonnet-4"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer egk_000000000000_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},  # alg=none JWT
        {"x-api-key": "egk_" + "A" * 60},
    ],
)
def test_bad_credentials_are_401(gateway: Server, headers: dict[str, str]):
    response = httpx.post(
        gateway.url + "/v1/chat/completions", headers=headers, json={"model": "sonnet-4", "messages": HELLO}
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(untrusting_gateway: Server):
    # the peer is 127.0.0.1: no country, so a tier with a location rule denies, whatever the header says
    with pytest.raises(openai.APIStatusError) as caught:
        oai(untrusting_gateway, "ada", US_IP).chat.completions.create(model="fable-5", messages=HELLO)
    assert caught.value.status_code == 451
    assert [r["code"] for r in caught.value.response.json()["error"]["reasons"]] == ["location_unknown"]


@pytest.mark.parametrize(
    ("forwarded", "codes"),
    [
        (f"{US_IP}, not-an-ip", ["location_unknown", "anonymizer_denied"]),  # malformed hop: all unknown
        (f"{CN_IP}, {US_IP}", None),  # rightmost untrusted hop is the client
        (f"{US_IP}, {CN_IP}", ["location_not_allowed"]),
        (f"[::ffff:{CN_IP}]:443", ["location_not_allowed"]),  # IPv4-mapped, bracketed, with a port
        (f"{US_IP}, 127.0.0.1", None),  # trusted hops are skipped
    ],
)
def test_forwarded_for_from_a_trusted_proxy(gateway: Server, forwarded: str, codes: list[str] | None):
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.keys['ada']}", "X-Forwarded-For": forwarded},
        json={"model": "fable-5", "messages": HELLO},
    )
    if codes is None:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 451
        assert [r["code"] for r in response.json()["error"]["reasons"]] == codes
