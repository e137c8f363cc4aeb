"""Targets: the model under evaluation (and attacker and judge models) behind one small protocol.

``OpenAITarget`` (``/v1/chat/completions``) and ``AnthropicTarget`` (``/v1/messages``) speak HTTP through
:mod:`exportgate._http` with requests-per-minute and tokens-per-minute limits, retries with exponential
backoff and full jitter (429, 5xx, connection failures and timeouts; ``Retry-After`` honoured), and
timeouts. ``SimTarget`` calls the simulator in-process. Every request carries the trial's seed, so
trials are independent and nothing is cached across them.
"""

from __future__ import annotations

import asyncio
import hashlib
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


def _fingerprint(kind: str, endpoint: str, model: str, system: str | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "endpoint": endpoint,
        "model": model,
        "system_prompt_sha256": hashlib.sha256(system.encode()).hexdigest() if system else None,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def comparable(target: Target) -> dict[str, Any]:
    """A target's fingerprint without its date: what must match for two runs (and a resume) to be the same."""
    return {k: v for k, v in target.fingerprint().items() if k != "date"}


class SimTarget:
    """The simulator, in-process (no HTTP): the fastest target, for tests and benchmarks."""

    def __init__(self, model: SimModel, name: str = "sim-1", system: str | None = None) -> None:
        self.model, self.name, self.system = model, name, system

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        conversation = [("system", self.system), *messages] if self.system else list(messages)
        reply = self.model.reply(self.name, conversation, request_seed=seed)
        return TargetReply(reply.text, reply.prompt_tokens, reply.completion_tokens)

    def fingerprint(self) -> dict[str, Any]:
        fp = _fingerprint("simulator", "in-process", self.name, self.system)
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


class _HttpTarget(ABC):
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
        max_tokens: int = 512,
        client: HttpClient | None = None,
    ) -> None:
        self.model, self.system = model, system
        self.origin, prefix = parse_base_url(base_url)
        self.base_url = self.origin.url(prefix)  # one spelling: https://host/v1 and https://host/ are the same target
        self.target = prefix + self.path
        self.headers = [(b"content-type", b"application/json"), *self._auth(api_key)]
        self.limits, self.retries, self.timeout, self.max_tokens = limits or RateLimits(), retries, timeout, max_tokens
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
                    reply = self._parse(_json(content))
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
        return _fingerprint(self.kind, self.origin.url(self.target), self.model, self.system)

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
        return {"model": self.model, "messages": [{"role": r, "content": t} for r, t in conversation],
                "seed": seed, "max_tokens": self.max_tokens}  # fmt: skip

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
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens,
                                "messages": [{"role": r, "content": t} for r, t in messages],
                                "metadata": {"user_id": f"exportgate-eval-{seed}"}}  # fmt: skip
        if self.system:
            body["system"] = self.system
        return body

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
        return SimTarget(model_sim, model, options.get("system"))
    if api == "anthropic":
        return AnthropicTarget(url, model, **options)
    if api != "openai":
        raise ConfigError(f"target API must be openai or anthropic, not {api!r}")
    return OpenAITarget(url, model, **options)
