"""Shared pieces of the evaluation tests: the simulator served over HTTP, and small targets that stand in
for a model where a test needs one answer (never for the part under test)."""

from __future__ import annotations

import abc
import os
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from exportgate.eval import TargetReply
from exportgate.eval._records import Message
from tests.gateway.conftest import EXPORTGATE, free_port, wait_until_up


@pytest.fixture
def served_sim() -> Iterator[str]:
    """``exportgate sim serve --profile vulnerable`` on a free port; its base URL."""
    port = free_port()
    process = subprocess.Popen([*EXPORTGATE, "sim", "serve", "--port", str(port), "--profile", "vulnerable"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/v1/models", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stderr is not None
        process.stderr.close()


class Fake(abc.ABC):
    """A target of the test's own making: subclasses answer ``complete``; named in its fingerprint."""

    name = "fake"

    @abc.abstractmethod
    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        """The subclass's answer."""

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "test", "endpoint": self.name, "model": "m", "system_prompt_sha256": None}

    async def close(self) -> None:
        return None


class Recorded:
    """A real target (the simulator) that keeps every request it is sent, to count or inspect them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[list[Message]] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def complete(self, messages: Sequence[Message], seed: int) -> TargetReply:
        self.requests.append(list(messages))
        reply: TargetReply = await self.inner.complete(messages, seed)
        return reply

    def fingerprint(self) -> dict[str, Any]:
        fp: dict[str, Any] = self.inner.fingerprint()
        return fp

    async def close(self) -> None:
        return None
