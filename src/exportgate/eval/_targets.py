"""Targets: the model under evaluation (and attacker and judge models) behind one small protocol.

``OpenAITarget`` (``/v1/chat/completions``) and ``AnthropicTarget`` (``/v1/messages``) speak HTTP through
:mod:`exportgate._http` with requests-per-minute and tokens-per-minute limits, retries with exponential
backoff and full jitter (429, 5xx, connection failures and timeouts; ``Retry-After`` honoured), and
timeouts. ``SimTarget`` calls the simulator in-process. Every request carries the trial's seed, so
trials are independent and nothing is cached across them, and the sampling settings (``temperature``,
``max_tokens``), which the fingerprint records. A target also records the model ids its provider said
served the requests (the ``model`` field of each answer): ``served_models``, and in the fingerprint.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from exportgate._http import HttpClient, parse_base_url
from exportgate.errors import ConfigError, UpstreamError
from exportgate.sim import SimModel, profile_named

from ._records import Message, TargetReply

__all__ = ["AnthropicTarget", "OpenAITarget", "RateLimits", "SimTarget", "Target", "comparable", "target_for"]


class Target(Protocol):
    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply: ...

    def fingerprint(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


#: Fingerprint entries that describe a run rather than the target: left out of what runs are compared on.
_OBSERVED = ("date", "served_models")
#: Distinct served model ids kept, and the length of each: a provider cannot grow a campaign's memory.
_MAX_SERVED, _MAX_SERVED_LENGTH = 100, 200


class _Target:
    """What every target shares: its system prompt and sampling settings, and the model ids served to it."""

    def __init__(self, system: str | None, temperature: float | None, max_tokens: int) -> None:
        if temperature is not None and not (math.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"temperature must be a finite number, zero or more, not {temperature}")
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, not {max_tokens}")
        self.system, self.temperature, self.max_tokens = system, temperature, max_tokens
        self._served: set[str] = set()

    @property
    def served_models(self) -> tuple[str, ...]:
        """The model ids the provider's answers named (the ``model`` field), sorted; empty before any answer."""
        return tuple(sorted(self._served))

    def note_served(self, model: object) -> None:
        """Record a model id a provider answered with (a checkpoint gives back those of an earlier run)."""
        if isinstance(model, str) and model and len(self._served) < _MAX_SERVED:
            self._served.add(model[:_MAX_SERVED_LENGTH])

    def _fingerprint(self, kind: str, endpoint: str, model: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "endpoint": endpoint,
            "model": model,
            "system_prompt_sha256": hashlib.sha256(self.system.encode()).hexdigest() if self.system else None,
            "sampling": {"temperature": self.temperature, "max_tokens": self.max_tokens},
            "served_models": list(self.served_models),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def comparable(target: Target) -> dict[str, Any]:
    """A target's fingerprint without its date and served model ids: what must match for two runs (and a
    resume) to be the same."""
    return {k: v for k, v in target.fingerprint().items() if k not in _OBSERVED}


class SimTarget(_Target):
    """The simulator, in-process (no HTTP): the fastest target, for tests and benchmarks. It ignores the
    temperature (its randomness is the request seed's) and serves every request under the name asked for."""

    def __init__(
        self,
        model: SimModel,
        name: str = "sim-1",
        system: str | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int = 512,
    ) -> None:
        super().__init__(system, temperature, max_tokens)
        self.model, self.name = model, name

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        conversation = [("system", self.system), *messages] if self.system else list(messages)
        reply = self.model.reply(self.name, conversation, max_tokens=self.max_tokens, request_seed=seed)
        self.note_served(self.name)
        return TargetReply(reply.text, reply.prompt_tokens, reply.completion_tokens)

    def fingerprint(self) -> dict[str, Any]:
        fp = self._fingerprint("simulator", "in-process", self.name)
        fp["profile"] = self.model.profile.as_dict()
        fp["sim_seed"] = self.model.seed
        return fp

    async def close(self) -> None:
        return None


@dataclass
class RateLimits:
    """Requests and tokens per minute (None: unlimited); a token bucket each, refilled continuously."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    _state: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    async def acquire(self, tokens: int) -> None:
        for name, rate, cost in (("rpm", self.requests_per_minute, 1), ("tpm", self.tokens_per_minute, tokens)):
            if rate is not None:
                await self._take(name, rate, min(cost, rate))

    async def _take(self, name: str, per_minute: float, cost: float) -> None:
        while True:
            now = time.monotonic()
            level, then = self._state.get(name, (per_minute, now))
            level = min(per_minute, level + (now - then) * per_minute / 60)
            if level >= cost:
                self._state[name] = (level - cost, now)
                return
            self._state[name] = (level, now)
            await asyncio.sleep((cost - level) * 60 / per_minute)


class _HttpTarget(_Target, ABC):
    """A model behind an HTTP API; subclasses give the API's request body and answer shape."""

    kind = "http"
    path = b""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        system: str | None = None,
        limits: RateLimits | None = None,
        retries: int = 4,
        timeout: float = 120.0,
        temperature: float | None = None,
        max_tokens: int = 512,
        client: HttpClient | None = None,
    ) -> None:
        super().__init__(system, temperature, max_tokens)
        self.model = model
        self.origin, prefix = parse_base_url(base_url)
        self.base_url = self.origin.url(prefix)  # one spelling: https://host/v1 and https://host/ are the same target
        self.target = prefix + self.path
        self.headers = [(b"content-type", b"application/json"), *self._auth(api_key)]
        self.limits, self.retries, self.timeout = limits or RateLimits(), retries, timeout
        self.client = client or HttpClient()
        self._rng = random.Random()  # noqa: S311 - backoff jitter

    def _auth(self, api_key: str | None) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", b"Bearer " + api_key.encode())] if api_key else []

    @abstractmethod
    def _body(self, messages: Sequence[Message], seed: int) -> dict[str, Any]: ...

    @abstractmethod
    def _parse(self, data: Any) -> TargetReply: ...

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        body = orjson.dumps(self._body(messages, seed))
        await self.limits.acquire(len(body) // 4 + self.max_tokens)
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            delay = None
            try:
                response = await self.client.request(
                    self.origin, b"POST", self.target, list(self.headers), body, 10.0, self.timeout
                )
                content = await response.read()
            except UpstreamError as exc:
                error: str = exc.message
            else:
                if response.status == 200:
                    data = _json(content)
                    reply = self._parse(data)
                    self.note_served(data.get("model") if isinstance(data, dict) else None)
                    latency = (time.perf_counter() - started) * 1000
                    return TargetReply(reply.text, reply.prompt_tokens, reply.completion_tokens, latency)
                error = f"HTTP {response.status}: {content[:200].decode('utf-8', 'replace')}"
                if response.status not in (408, 409, 429) and response.status < 500:
                    raise UpstreamError(f"{self.base_url} refused the request: {error}")
                delay = _retry_after(response.headers)
            if attempt < self.retries:
                await asyncio.sleep(delay if delay is not None else self._rng.uniform(0, min(30.0, 0.5 * 2**attempt)))
        raise UpstreamError(f"{self.base_url}: gave up after {self.retries + 1} attempts: {error}")

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint(self.kind, self.origin.url(self.target), self.model)

    def _sampling(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the sampling settings every request carries (the provider's default temperature
        when none is set)."""
        body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    async def close(self) -> None:
        await self.client.close()


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamError("the target answered with something that is not JSON") from None


def _retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    for name, value in headers:
        if name == b"retry-after":
            try:
                return min(60.0, max(0.0, float(value)))
            except ValueError:
                return None
    return None


class OpenAITarget(_HttpTarget):
    kind = "openai"
    path = b"/v1/chat/completions"

    def _body(self, messages: Sequence[Message], seed: int) -> dict[str, Any]:
        conversation = [("system", self.system), *messages] if self.system else list(messages)
        return self._sampling({"model": self.model, "messages": [{"role": r, "content": t} for r, t in conversation],
                               "seed": seed})  # fmt: skip

    def _parse(self, data: Any) -> TargetReply:
        try:
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            return TargetReply(str(text), int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
        except (KeyError, IndexError, TypeError, ValueError):
            raise UpstreamError("the target's answer is not an OpenAI chat completion") from None


class AnthropicTarget(_HttpTarget):
    kind = "anthropic"
    path = b"/v1/messages"

    def _auth(self, api_key: str | None) -> list[tuple[bytes, bytes]]:
        version = [(b"anthropic-version", b"2023-06-01")]
        return [*version, (b"x-api-key", api_key.encode())] if api_key else version

    def _body(self, messages: Sequence[Message], seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": r, "content": t} for r, t in messages],
                                "metadata": {"user_id": f"exportgate-eval-{seed}"}}  # fmt: skip
        if self.system:
            body["system"] = self.system
        return self._sampling(body)

    def _parse(self, data: Any) -> TargetReply:
        try:
            text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
            usage = data.get("usage") or {}
            return TargetReply(text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamError("the target's answer is not an Anthropic message") from None


def target_for(url: str, model: str, *, api: str = "openai", **options: Any) -> Target:
    """``sim:PROFILE[:SEED]`` is the in-process simulator; otherwise an OpenAI or Anthropic endpoint."""
    if url.startswith("sim:"):
        parts = url.split(":")
        try:
            model_sim = SimModel(int(parts[2]) if len(parts) > 2 else 0, profile=profile_named(parts[1] or "typical"))
        except ValueError as exc:
            raise ConfigError(f"simulator target {url!r}: {exc}") from None
        sampling = {k: v for k, v in options.items() if k in ("temperature", "max_tokens")}
        return SimTarget(model_sim, model, options.get("system"), **sampling)
    if api == "anthropic":
        return AnthropicTarget(url, model, **options)
    if api != "openai":
        raise ConfigError(f"target API must be openai or anthropic, not {api!r}")
    return OpenAITarget(url, model, **options)
