"""The sweep that stands in for a timer per request: due work runs (a tick late at most), dropped work
never does, and the task stops when nothing is filed and starts again with the next filing."""

from __future__ import annotations

import asyncio

from exportgate.gateway._inflight import TICK, Sweep, cancel_on_expiry


def test_due_work_runs_dropped_work_does_not_and_the_task_rests_when_idle():
    async def go() -> None:
        sweep, ran = Sweep(), []
        sweep.after(0.01, lambda: ran.append("due"))
        dropped = sweep.after(0.01, lambda: ran.append("dropped"))
        sweep.after(10, lambda: ran.append("later"))
        sweep.drop(dropped)
        await asyncio.sleep(0.01 + 2 * TICK)
        assert ran == ["due"]
        sweep.close()
        await asyncio.sleep(0)
        assert sweep._task is not None and sweep._task.done()
        sweep.after(0, lambda: ran.append("again"))  # a new filing starts a new task
        await asyncio.sleep(2 * TICK)
        assert ran == ["due", "again"] and sweep._task.done()  # nothing filed: it stopped on its own

    asyncio.run(go())


def test_an_expired_deadline_cancels_its_task_and_says_so():
    async def go() -> None:
        sweep, expired = Sweep(), []

        async def slow_body() -> None:
            await asyncio.sleep(60)

        task = asyncio.ensure_future(slow_body())
        sweep.after(0.01, cancel_on_expiry(task, expired))
        await asyncio.sleep(0.01 + 2 * TICK)
        assert task.cancelled() and expired == [True]

    asyncio.run(go())
