"""Small upstreams with the behaviours real ones have, on loopback, for the gateway to forward to.

- :class:`RecordingUpstream` answers every POST like an OpenAI chat model and records what it received
  (path, headers, raw body, and the model as *its* parser reads the body). ``reading`` picks the parser:
  ``first-wins`` (keeps the first of duplicate keys, as some JSON parsers do), ``last-wins`` (Python's
  json), ``any-case`` (matches keys without regard to case, the last match winning, as Go's
  encoding/json does), ``nul-cut`` (a key ends at a NUL, as C parsers read it), or ``form`` (honours
  ``application/x-www-form-urlencoded`` bodies, as a framework might). ``fail_with`` makes it answer
  every request with that status and a body naming its internals.
- :class:`HangingUpstream` accepts connections, reads requests and never answers; it counts the
  connections still open, so a test can see whether the gateway gave up on them.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["HangingUpstream", "RecordingUpstream"]


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


class RecordingUpstream:
    def __init__(self, reading: str = "last-wins", fail_with: int | None = None, compress: bool = False) -> None:
        self.reading, self.fail_with, self.gzip = reading, fail_with, compress
        self.received: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                model = upstream.model_of(self.headers.get("content-type", ""), body)
                upstream.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "model": model})  # fmt: skip
                choice = {"index": 0, "message": {"role": "assistant", "content": f"served {model}"},
                          "finish_reason": "stop"}  # fmt: skip
                answer = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [choice],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
                    }
                )
                answer = answer.encode()
                if upstream.fail_with is not None:
                    answer = b'{"error": "boom at api_base=http://10.1.2.3:8000/v1 with key sk-internal-123"}'
                if upstream.gzip:  # whatever the request asked for, as an upstream may
                    answer = gzip.compress(answer)
                self.send_response(upstream.fail_with or 200)
                self.send_header("content-type", "application/json")
                if upstream.gzip:
                    self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def model_of(self, content_type: str, body: bytes) -> Any:
        if self.reading == "form" and content_type.startswith("application/x-www-form-urlencoded"):
            return parse_qs(body.decode("latin-1")).get("model", [None])[0]
        try:
            pairs = json.loads(body, object_pairs_hook=lambda p: p)
        except ValueError:
            return None
        if self.reading == "first-wins":
            return _first_wins(pairs).get("model")
        matches = {
            "any-case": lambda key: key.lower() == "model",
            "nul-cut": lambda key: key.split("\x00", 1)[0] == "model",
        }.get(self.reading, lambda key: key == "model")
        found = [value for key, value in pairs if matches(key)]
        return found[-1] if found else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingUpstream:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._lock = threading.Lock()
        self.accepted = 0
        self.open = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        """Read whatever comes and never answer, until the other side closes."""
        with conn:
            while not self._stop:
                try:
                    if not conn.recv(65536):
                        break
                except OSError:
                    break
        with self._lock:
            self.open -= 1

    def wait_open(self, count: int, seconds: float = 10.0) -> bool:
        """Whether the open connections come down to ``count`` within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.open <= count:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop = True
        self.sock.close()
