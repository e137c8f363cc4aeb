"""A real loopback HTTP server, on a thread, that answers like an OpenAI- or Anthropic-compatible model and
records the path of every request, so a test sees exactly what a client built from a base URL sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What every answer reports as usage (both APIs' spellings), so a test can check token accounting exactly.
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 7


def _answer(path: str, body: dict[str, Any], text: str) -> dict[str, Any] | None:
    model = body.get("model", "m")
    if path.endswith("/chat/completions"):
        return {"id": "chatcmpl-rec", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                          "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}  # fmt: skip
    if path.endswith("/messages"):
        return {"id": "msg_rec", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS}}  # fmt: skip
    return None


class PathRecorder:
    """``with PathRecorder() as rec:`` serves on ``rec.url``; ``rec.paths`` lists the request paths in order.
    Its default answer reads as a judge's score of 0. A path holding ``/v1/v1/`` (a base URL's ``/v1``
    doubled) is answered 404, like a real API would."""

    def __init__(self, text: str = "Here is a plain answer. SCORE: 0") -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                recorder.paths.append(self.path)
                answer = None if "/v1/v1/" in self.path else _answer(self.path, body, text)
                payload = json.dumps(answer or {"error": {"message": f"no route {self.path}"}}).encode()
                self.send_response(200 if answer else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # /healthz, as a gateway answers it
                self.send_response(200 if self.path == "/healthz" else 404)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PathRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def doubled(self) -> list[str]:
        return [p for p in self.paths if "/v1/v1/" in p]
