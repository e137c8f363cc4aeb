"""The base-URL rule, at every place that takes one: a base URL ending in ``/v1`` (the OpenAI convention,
``https://api.openai.com/v1``) reaches the same paths as one without it (``https://api.anthropic.com``).
Each entry point runs against a real loopback server that records the paths it was sent; ``/v1/v1/`` fails."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest

from exportgate._http import parse_base_url
from exportgate.cli import main
from exportgate.errors import ConfigError
from tests.gateway.conftest import serve
from tests.recorder import COMPLETION_TOKENS, PROMPT_TOKENS, PathRecorder

#: The spellings of one base URL that must all behave the same.
SPELLINGS = ["", "/", "/v1", "/v1/", "/v1//"]
CHAT = {"model": "fable-5", "messages": [{"role": "user", "content": "Say hello."}]}
RUBRIC = '{"id": "r", "goal": "Say hello.", "success": {"rubric": "It says hello."}}\n'


@pytest.mark.parametrize("suffix", SPELLINGS)
def test_parse_base_url_drops_one_trailing_v1(suffix: str):
    origin, prefix = parse_base_url("https://api.openai.com" + suffix)
    assert (origin.url(), prefix) == ("https://api.openai.com", b"")
    origin, prefix = parse_base_url("http://host:8000/openai" + suffix)
    assert (origin.url(prefix), prefix) == ("http://host:8000/openai", b"/openai")


def test_parse_base_url_keeps_paths_that_only_look_like_v1():
    assert parse_base_url("https://h/v1beta")[1] == b"/v1beta"
    assert parse_base_url("https://h/api/xv1")[1] == b"/api/xv1"
    assert parse_base_url("https://h/v1/v1")[1] == b"/v1"  # one /v1 is the convention; the rest is a real path
    assert parse_base_url("https://h:443/v1")[0].url() == "https://h"
    with pytest.raises(ConfigError):
        parse_base_url("ftp://h/v1")


def _headers(server, who: str = "ada") -> dict[str, str]:
    return {"Authorization": f"Bearer {server.keys[who]}", "X-Forwarded-For": "3.3.3.3"}


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
def test_gateway_upstream_option(tmp_path: Path, suffix: str):
    with PathRecorder() as upstream:
        server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--upstream", upstream.url + suffix)
        try:
            response = httpx.post(server.url + "/v1/chat/completions", headers=_headers(server), json=CHAT)
        finally:
            server.stop()
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == COMPLETION_TOKENS
    assert upstream.paths == ["/v1/chat/completions"]


OPEN_DIRECTIVE = """directive: base-urls
version: "1"
tiers:
  open: {}
models:
"""


def test_gateway_routing_file_base_urls(tmp_path: Path):
    with PathRecorder() as upstream:
        openai = {f"o{n}": upstream.url + suffix for n, suffix in enumerate(SPELLINGS)}
        openai["prefixed"] = upstream.url + "/openai/v1/"
        anthropic = {f"a{n}": upstream.url + suffix for n, suffix in enumerate(SPELLINGS)}
        models = [*openai, *anthropic]
        (tmp_path / "directive.yaml").write_text(OPEN_DIRECTIVE + "".join(f"  {m}: {{tier: open}}\n" for m in models))
        routing = {
            "upstreams": {**{m: {"base_url": u} for m, u in openai.items()},
                          **{m: {"base_url": u, "api": "anthropic"} for m, u in anthropic.items()}},
            "models": {m: m for m in models},
        }  # fmt: skip
        (tmp_path / "upstreams.yaml").write_text(json.dumps(routing))  # JSON is YAML
        server = serve(tmp_path / "home", "--trusted-proxy", "127.0.0.1/32", "--directive",
                       str(tmp_path / "directive.yaml"), "--upstreams", str(tmp_path / "upstreams.yaml"))  # fmt: skip
        try:
            for model in openai:
                response = httpx.post(server.url + "/v1/chat/completions", headers=_headers(server),
                                      json={**CHAT, "model": model})  # fmt: skip
                assert response.status_code == 200, (model, response.text)
            for model in anthropic:
                response = httpx.post(server.url + "/v1/messages", headers=_headers(server),
                                      json={**CHAT, "model": model, "max_tokens": 16})  # fmt: skip
                assert response.status_code == 200, (model, response.text)
        finally:
            server.stop()
    assert upstream.paths == (
        ["/v1/chat/completions"] * len(SPELLINGS) + ["/openai/v1/chat/completions"] + ["/v1/messages"] * len(SPELLINGS)
    )


def _eval_run(tmp_path: Path, url: str, api: str, *extra: str) -> int:
    (tmp_path / "rubric.jsonl").write_text(RUBRIC)
    return main(["eval", "run", "--target", url, "--api", api, "--model", "m", "--judge", url, "--attacker", url,
                 "--strategies", "pair,direct", "--objectives", str(tmp_path / "rubric.jsonl"), "--trials", "1",
                 "--out", str(tmp_path / "e.json"), "--home", str(tmp_path / "home"), *extra])  # fmt: skip


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("suffix", SPELLINGS)
def test_eval_target_judge_and_attacker(tmp_path: Path, api: str, suffix: str):
    with PathRecorder() as server:
        assert _eval_run(tmp_path, server.url + suffix, api) == 0
    route = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    bundle = orjson.loads((tmp_path / "e.json").read_bytes())
    assert bundle["target"]["endpoint"] == server.url + route
    assert bundle["config"]["scorer"]["judges"][0]["target"]["endpoint"] == server.url + "/v1/chat/completions"
    pair = next(s for s in bundle["config"]["strategies"] if s["name"] == "pair")
    assert pair["settings"]["attacker"]["endpoint"] == server.url + "/v1/chat/completions"
    # pair: 5 attempts, each judged and rewritten by the attacker; direct: one attempt, judged
    assert sorted(server.paths) == sorted([route] * 6 + ["/v1/chat/completions"] * 11)
    assert bundle["statistics"]["usage"]["total"]["prompt_tokens"] == 6 * PROMPT_TOKENS


def test_eval_resume_accepts_the_other_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with PathRecorder() as server:
        assert _eval_run(tmp_path, server.url, "openai", "--keep-checkpoint") == 0
        sent = len(server.paths)
        assert _eval_run(tmp_path, server.url + "/v1/", "openai", "--resume") == 0, capsys.readouterr().err
    assert len(server.paths) == sent  # the same campaign: every trial was already done


def test_eval_calibrate_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"goal": "g", "response": "r", "label": false}\n{"goal": "g", "response": "s", "label": true}\n')
    with PathRecorder() as server:
        assert main(["eval", "calibrate", "--judge", server.url + "/v1", "--labels", str(labels)]) == 0
    assert server.paths == ["/v1/chat/completions"] * 2
    assert (
        orjson.loads(capsys.readouterr().out)["judges"]["judges"][0]["target"]["endpoint"]
        == server.url + "/v1/chat/completions"
    )


def test_sim_traffic_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with PathRecorder() as gateway:
        code = main(["sim", "traffic", "--gateway", gateway.url + "/v1", "--home", str(tmp_path / "home"),
                     "--per-population", "1", "--hours", "1", "--time-scale", "100000",
                     "--labels", str(tmp_path / "labels.json")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert gateway.paths and set(gateway.paths) == {"/v1/chat/completions"}
