"""The simulator's HTTP face: OpenAI- and Anthropic-compatible, plain ASGI.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (JSON and SSE),
``/v1/completions``, ``/v1/embeddings``, ``/v1/responses`` and Anthropic's
``/v1/messages`` (JSON and SSE). Replies come from :class:`SimModel`, so
the same seed and conversation always get the same answer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import orjson

from exportgate._asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_json, start_stream

from ._model import Reply, SimModel, count_tokens

__all__ = ["SimApp"]

MAX_BODY = 8 * 1024 * 1024


class BadRequest(Exception):
    pass


def _text_of(content: Any) -> str:
    """OpenAI/Anthropic message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if content is None:
        return ""
    raise BadRequest("message content must be a string or a list of parts")


def _messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list")
    out = []
    system = body.get("system")
    if system:
        out.append(("system", _text_of(system)))
    for message in raw:
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object")
        out.append((str(message.get("role", "user")), _text_of(message.get("content"))))
    return out


def _chunks(text: str, words_per_chunk: int = 4) -> Iterator[str]:
    words = text.split(" ")
    for start in range(0, len(words), words_per_chunk):
        piece = " ".join(words[start : start + words_per_chunk])
        yield piece if start == 0 else " " + piece


class SimApp:
    """An ASGI app. ``latency`` (seconds) delays every model reply, as a remote model's time to first token
    would; ``chunk_delay`` (seconds) spaces out streamed chunks. Both are for tests and demos."""

    def __init__(
        self,
        model: SimModel | None = None,
        *,
        models: tuple[str, ...] = ("sim-1",),
        chunk_delay: float = 0.0,
        latency: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.model = model or SimModel()
        self.models = models
        self.chunk_delay = chunk_delay
        self.latency = latency
        self.api_key = api_key
        self._ids = itertools.count(1)
        self.requests = 0
        self.last_headers: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        self.requests += 1
        self.last_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key is not None and not self._authorized():
            await send_json(send, 401, _error("invalid upstream API key", "authentication_error"))
            return
        if method == "GET" and path == "/v1/models":
            await send_json(send, 200, self._model_list())
            return
        handler = _ROUTES.get(path)
        if handler is None or method != "POST":
            await send_json(send, 404, _error(f"no route {method} {path}", "not_found_error"))
            return
        try:
            body = orjson.loads(await read_body(receive, MAX_BODY))
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            if self.latency:
                await asyncio.sleep(self.latency)
            await handler(self, body, send)
        except ClientGone:
            return
        except BodyTooLarge:
            await send_json(send, 413, _error("request body too large", "invalid_request_error"))
        except (orjson.JSONDecodeError, BadRequest) as exc:
            await send_json(send, 400, _error(f"bad request: {exc}", "invalid_request_error"))

    def _authorized(self) -> bool:
        auth = self.last_headers.get("authorization", "")
        return auth == f"Bearer {self.api_key}" or self.last_headers.get("x-api-key") == self.api_key

    def _model_list(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "exportgate-sim"} for m in self.models],
        }

    def _id(self, prefix: str) -> str:
        return f"{prefix}sim{next(self._ids):08x}"

    def _reply(self, body: dict[str, Any], messages: list[tuple[str, str]], limit_key: str = "max_tokens") -> Reply:
        limit, seed = body.get(limit_key), body.get("seed")
        return self.model.reply(
            str(body.get("model", "")),
            messages,
            limit if isinstance(limit, int) else None,
            seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        )

    # -- OpenAI -------------------------------------------------------------

    async def chat(self, body: dict[str, Any], send: Send) -> None:
        reply = self._reply(body, _messages(body))
        model, rid, created = str(body.get("model", "")), self._id("chatcmpl-"), int(time.time())
        usage = reply.openai_usage()
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
            await send_json(
                send,
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in _chunks(reply.text)]
        events.append(chunk({}, reply.finish_reason))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        await self._stream(send, [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"])

    async def completions(self, body: dict[str, Any], send: Send) -> None:
        prompt = body.get("prompt", "")
        text = prompt if isinstance(prompt, str) else "\n".join(map(str, prompt)) if isinstance(prompt, list) else ""
        reply = self._reply(body, [("user", text)])
        if body.get("stream"):
            raise BadRequest("the simulator streams only chat completions and messages")
        await send_json(
            send,
            200,
            {
                "id": self._id("cmpl-"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"text": reply.text, "index": 0, "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": reply.openai_usage(),
            },
        )

    async def embeddings(self, body: dict[str, Any], send: Send) -> None:
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else None
        if not inputs:
            raise BadRequest("'input' must be a string or a non-empty list")
        requested = body.get("dimensions")
        dims = requested if isinstance(requested, int) and 0 < requested <= 4096 else 16
        data = [
            {"object": "embedding", "index": i, "embedding": self.model.embed(str(text), dims)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(count_tokens(str(t)) for t in inputs)
        await send_json(
            send,
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    async def responses(self, body: dict[str, Any], send: Send) -> None:
        raw = body.get("input")
        if isinstance(raw, str):
            messages = [("user", raw)]
        elif isinstance(raw, list):
            messages = [(str(m.get("role", "user")), _text_of(m.get("content"))) for m in raw if isinstance(m, dict)]
        else:
            raise BadRequest("'input' must be a string or a list of messages")
        if body.get("instructions"):
            messages.insert(0, ("system", str(body["instructions"])))
        if body.get("stream"):
            raise BadRequest("the simulator streams only chat completions and messages")
        reply = self._reply(body, messages, "max_output_tokens")
        await send_json(
            send,
            200,
            {
                "id": self._id("resp_"),
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": body.get("model", ""),
                "output": [
                    {
                        "type": "message",
                        "id": self._id("msg_"),
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                    }
                ],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": reply.prompt_tokens,
                    "output_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            },
        )

    # -- Anthropic ------------------------------------------------------------

    async def messages(self, body: dict[str, Any], send: Send) -> None:
        reply = self._reply(body, _messages(body))
        model, mid = str(body.get("model", "")), self._id("msg_")
        stop = "max_tokens" if reply.finish_reason == "length" else "end_turn"
        if not body.get("stream"):
            await send_json(
                send,
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": reply.text}],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
                },
            )
            return
        start = {
            "type": "message_start",
            "message": {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 1},
            },
        }
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", start),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            for piece in _chunks(reply.text)
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": reply.completion_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        await self._stream(send, [f"event: {name}\ndata: ".encode() + orjson.dumps(d) + b"\n\n" for name, d in events])

    async def _stream(self, send: Send, frames: list[bytes]) -> None:
        await start_stream(send)
        if not self.chunk_delay:  # one write: the simulator must never be a benchmark's bottleneck
            await send({"type": "http.response.body", "body": b"".join(frames)})
            return
        for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            await asyncio.sleep(self.chunk_delay)
        await send({"type": "http.response.body", "body": b""})


_ROUTES = {
    "/v1/chat/completions": SimApp.chat,
    "/v1/completions": SimApp.completions,
    "/v1/embeddings": SimApp.embeddings,
    "/v1/responses": SimApp.responses,
    "/v1/messages": SimApp.messages,
}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None, "param": None}}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
