"""Work that falls due for requests in flight, without a timer per request.

A request reading its body must give up after ``body_timeout``, and one waiting on the upstream must
start watching for its client to leave once it has taken more than a moment. A timer per request for
each cost more than the checks the gateway exists for (``asyncio.timeout`` 8 µs, a task 10 µs); here a
request files ``(when, action)`` in a dict (a fraction of a microsecond, and removed when done), and one
task per event loop looks every :data:`TICK` seconds for what is due. The task stops when nothing is
filed and starts again with the next filing. Due work runs up to one tick late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from exportgate._asgi import Receive

__all__ = ["TICK", "DisconnectWatch", "Sweep"]

TICK = 0.05


class Sweep:
    def __init__(self) -> None:
        self._due: dict[object, tuple[float, Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def after(self, seconds: float, action: Callable[[], None]) -> object:
        """File ``action`` to run ``seconds`` from now (at most a tick later); returns a token for :meth:`drop`."""
        token = object()
        self._due[token] = (time.monotonic() + seconds, action)
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.ensure_future(self._run())
        return token

    def drop(self, token: object) -> None:
        self._due.pop(token, None)

    async def _run(self) -> None:
        while self._due:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for token, (when, action) in list(self._due.items()):
                if when <= now and self._due.pop(token, None) is not None:
                    action()

    def close(self) -> None:
        self._due.clear()
        if self._task is not None:
            self._task.cancel()


class DisconnectWatch:
    """Waits for the client's ``http.disconnect`` beside a request; when it comes before the answer is
    complete, it cancels the request's task (whatever that awaits: the upstream's headers, its body, a
    write to the client), and :meth:`stop` tells the request it was this.

    The watching task starts only once the request has been in flight for ``AFTER`` seconds: most answers
    are complete before that, and a client that leaves in the first moment holds an upstream call at
    most that long (plus a tick) longer."""

    AFTER = 0.05
    __slots__ = ("_done", "_receive", "_sweep", "_task", "_token", "_watcher", "gone")

    def __init__(self, receive: Receive, sweep: Sweep) -> None:
        self._task = asyncio.current_task()
        self._receive, self._sweep = receive, sweep
        self._done = False
        self.gone = False
        self._watcher: asyncio.Future[None] | None = None
        self._token = sweep.after(self.AFTER, self._start)

    def _start(self) -> None:
        if not self._done:
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._done and self._task is not None:
            self.gone = True
            self._task.cancel()

    def answered(self) -> None:
        self._done = True

    def stop(self) -> bool:
        """Stop watching; True when the client went away (and this watch cancelled the request)."""
        self._done = True
        self._sweep.drop(self._token)
        if self._watcher is not None:
            self._watcher.cancel()
        if self.gone and self._task is not None and self._task.cancelling():
            self._task.uncancel()
        return self.gone


def cancel_on_expiry(task: asyncio.Task[Any], expired: list[bool]) -> Callable[[], None]:
    """The action for a deadline: mark it expired, cancel the task (which tells the two apart)."""

    def expire() -> None:
        expired.append(True)
        task.cancel()

    return expire
