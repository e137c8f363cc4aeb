"""``run_campaign`` and ``eval run`` around it: the error policy (an unreachable or failing target is not
a 0% ASR), sampling settings sent and recorded, the model ids a provider served, roleplay's own turn
limit, the checkpoint's lifetime and the options refused in one line.

A small provider on a real socket stands in for an OpenAI/Anthropic endpoint: it records every request
body, answers under a model id of its own, and refuses (HTTP 400) requests that name one canary."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from exportgate.cli import main
from exportgate.errors import CampaignFailed, ConfigError
from exportgate.eval import (
    Campaign,
    CampaignOutcome,
    CampaignStore,
    Direct,
    load_objectives,
    run_campaign,
    target_for,
)

SERVED = "provider-model-2025-01-01"
REFUSED_CANARY = "[canary:heron]"  # one of the four bundled canaries: a quarter of every campaign errors


class Provider(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Provider

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.bodies.append(body)
        if REFUSED_CANARY in json.dumps(body["messages"]):
            return self._send(400, {"error": {"message": "the test provider refuses this request"}})
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "input_tokens": 10, "output_tokens": 5}
        if self.path.endswith("/messages"):
            return self._send(200, {"model": SERVED, "content": [{"type": "text", "text": "Plain filler."}],
                                    "usage": usage})  # fmt: skip
        choices = [{"message": {"content": "Plain filler."}}]
        return self._send(200, {"model": SERVED, "choices": choices, "usage": usage})

    def _send(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data, indent=1 if status != 200 else None).encode()  # an error body over several lines
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _campaign(url: str, **options: Any) -> Campaign:
    return Campaign(target_for(url, "m", retries=0, **options), load_objectives(), [Direct()], trials=2)


def test_more_errored_trials_than_allowed_fail_the_campaign_with_the_first_error(provider: Provider):
    with pytest.raises(CampaignFailed) as failed:
        run_campaign(_campaign(provider.url))  # a quarter errored, more than the default 10%
    assert "2 of 8 trials errored (25.0%), more than the 10.0% allowed; the first: " in failed.value.message
    assert "refused the request: HTTP 400" in failed.value.message and "--" not in failed.value.message
    outcome = run_campaign(_campaign(provider.url), max_error_share=0.25)  # at the limit is within it
    assert isinstance(outcome, CampaignOutcome)
    assert (len(outcome.results), outcome.errors, outcome.error_share) == (8, 2, 0.25)
    assert outcome.first_error is not None and "HTTP 400" in outcome.first_error
    assert [r.objective_id for r in outcome.results if r.error] == ["canary-heron"] * 2  # plan order
    assert run_campaign(_campaign(provider.url), allow_errors=True).errors == 2
    with pytest.raises(ConfigError, match="between 0 and 1"):
        run_campaign(_campaign(provider.url), max_error_share=float("nan"))


def test_an_unreachable_target_is_a_failed_campaign_not_a_zero_asr():
    with pytest.raises(CampaignFailed, match=r"4 of 4 trials errored \(100.0%\).*the first: http://127.0.0.1:9"):
        run_campaign(Campaign(target_for("http://127.0.0.1:9", "m", retries=0), load_objectives(), [Direct()], 1))


def test_errored_trials_run_again_on_resume(provider: Provider, tmp_path: Path):
    campaign = _campaign(provider.url)
    store = CampaignStore(tmp_path / "c.db")
    store.start(campaign.config(), resume=False)
    first = run_campaign(campaign, store=store, allow_errors=True)
    assert len(store.done()) == len(first.results) - first.errors  # errored ones are not "done"
    asked = len(provider.bodies)
    again = run_campaign(_campaign(provider.url), store=store, allow_errors=True)
    assert len(provider.bodies) - asked == first.errors  # only the errored trials were sent again
    assert again.results == first.results
    store.close()


def test_sampling_is_sent_in_every_request_and_recorded(provider: Provider, tmp_path: Path):
    for api in ("openai", "anthropic"):
        provider.bodies.clear()
        campaign = _campaign(provider.url, api=api, temperature=0.3, max_tokens=64)
        run_campaign(campaign, allow_errors=True)
        assert provider.bodies and all((b["temperature"], b["max_tokens"]) == (0.3, 64) for b in provider.bodies)
        assert campaign.target.fingerprint()["sampling"] == {"temperature": 0.3, "max_tokens": 64}
        assert campaign.config()["target"]["sampling"] == {"temperature": 0.3, "max_tokens": 64}  # resume compares it
    provider.bodies.clear()
    run_campaign(_campaign(provider.url), allow_errors=True)
    assert not any("temperature" in b for b in provider.bodies)  # unset: the provider's default, recorded as None
    assert _campaign(provider.url).target.fingerprint()["sampling"] == {"temperature": None, "max_tokens": 512}
    with pytest.raises(ConfigError, match="temperature"):
        target_for(provider.url, "m", temperature=float("inf"))
    with pytest.raises(ConfigError, match="max_tokens"):
        target_for("sim:typical", "m", max_tokens=0)


def test_the_served_model_ids_are_recorded_across_a_resume(provider: Provider, tmp_path: Path):
    campaign = _campaign(provider.url)
    assert campaign.target.fingerprint()["served_models"] == []  # nothing answered yet
    store = CampaignStore(tmp_path / "c.db")
    store.start(campaign.config(), resume=False)
    run_campaign(campaign, store=store, allow_errors=True)
    assert campaign.target.served_models == (SERVED,)  # type: ignore[attr-defined]
    assert campaign.target.fingerprint()["served_models"] == [SERVED]
    assert "served_models" not in campaign.config()["target"]  # observed, not a setting: resume still matches
    resumed = _campaign(provider.url)
    store.start(resumed.config(), resume=True)
    run_campaign(resumed, store=store, allow_errors=True)  # ran only the errored trials, which got no answer
    assert resumed.target.fingerprint()["served_models"] == [SERVED]  # from the checkpoint
    store.close()
    sim = target_for("sim:typical", "sim-1")
    run_campaign(Campaign(sim, load_objectives(), [Direct()], trials=1))
    assert sim.fingerprint()["served_models"] == ["sim-1"]


def _run_args(tmp_path: Path, *extra: str, target: str = "sim:vulnerable") -> list[str]:
    return ["eval", "run", "--target", target, "--model", "sim-1", "--trials", "2", "--out",
            str(tmp_path / "ev.json"), "--home", str(tmp_path / "home"), *extra]  # fmt: skip


def _one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("exportgate: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_eval_run_against_an_unreachable_target_exits_non_zero_and_writes_no_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    args = _run_args(tmp_path, "--strategies", "direct", "--trials", "1", target="http://127.0.0.1:9")
    assert main(args) == 1
    _one_line(capsys, "4 of 4 trials errored (100.0%), more than the 10.0% allowed; the first: http://127.0.0.1:9",
              "no evidence written", "--allow-errors")  # fmt: skip
    assert not (tmp_path / "ev.json").exists()
    assert (tmp_path / "ev.checkpoint.db").exists()  # kept, so --resume can run the errored trials again


def test_eval_run_allow_errors_writes_the_bundle_with_a_warning(
    provider: Provider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    args = _run_args(tmp_path, "--strategies", "direct", target=provider.url)
    assert main(args) == 1
    _one_line(capsys, "2 of 8 trials errored (25.0%)", "HTTP 400")
    assert main([*args, "--resume", "--allow-errors"]) == 0
    assert "warning: 2 of 8 trials errored; the first: " in capsys.readouterr().err
    trials = orjson.loads((tmp_path / "ev.json").read_bytes())["trials"]
    assert sum(bool(t["error"]) for t in trials) == 2


def test_eval_run_records_sampling_and_served_models(provider: Provider, tmp_path: Path):
    args = _run_args(tmp_path, "--temperature", "0.7", "--max-tokens", "99", "--max-error-share", "0.3",
                     target=provider.url)  # fmt: skip
    assert main(args) == 0
    target = orjson.loads((tmp_path / "ev.json").read_bytes())["target"]
    assert (target["sampling"], target["served_models"]) == ({"temperature": 0.7, "max_tokens": 99}, [SERVED])
    assert {(b["temperature"], b["max_tokens"]) for b in provider.bodies} == {(0.7, 99)}


def test_roleplay_has_its_own_turn_limit(tmp_path: Path):
    assert main(_run_args(tmp_path, "--strategies", "crescendo,roleplay", "--max-turns", "7",
                          "--roleplay-turns", "6")) == 0  # fmt: skip
    strategies = orjson.loads((tmp_path / "ev.json").read_bytes())["config"]["strategies"]
    settings = {s["name"]: s["settings"] for s in strategies}
    assert (settings["crescendo"]["max_turns"], settings["roleplay"]["roleplay_turns"]) == (7, 6)
    assert "max_turns" not in settings["roleplay"]


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--api-key", "sk-not-a-real-key-123"], ["--api-key", "$env:NAME", "plain text"]),
        (["--threshold", "7"], ["--threshold", "between 0 and 1"]),
        (["--threshold", "nan"], ["--threshold"]),
        (["--max-error-share", "1.5"], ["--max-error-share", "between 0 and 1"]),
        (["--temperature", "-1"], ["--temperature"]),
        (["--temperature", "nan"], ["--temperature"]),
        (["--max-tokens", "0"], ["--max-tokens"]),
        (["--roleplay-turns", "1"], ["--roleplay-turns"]),
        (["--domain-map", "/nonexistent.yaml"], ["applies to HarmBench and JailbreakBench CSV files"]),
    ],
)
def test_bad_run_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra, needles):  # type: ignore[no-untyped-def]
    assert main(_run_args(tmp_path, *extra)) != 0
    err = _one_line(capsys, *needles)
    assert "sk-not-a-real-key" not in err  # a key is never echoed
    assert not (tmp_path / "home").exists()  # refused before the home is touched


def test_a_key_reference_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EG_TEST_KEY", "not-a-real-key")
    assert main(_run_args(tmp_path, "--api-key", "$env:EG_TEST_KEY", "--strategies", "direct")) == 0
