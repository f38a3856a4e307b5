"""Task ownership: every background task belongs to the service or session that started it.

A `TaskOwner` keeps its tasks referenced until they finish, logs a failure with context,
and `close()` cancels and awaits all of them, so stopping a service (or ending a V2G
session on unplug) leaves nothing of it running. There is no module-global task set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from charger.runtime.log import event
from charger.runtime.supervise import supervise

T = TypeVar("T")
log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 5.0


class OwnerClosed(RuntimeError):
    """Work was handed to an owner that has already been closed."""


class TaskOwner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T]:
        """Runs `work` in the background; an exception is logged as `task_failed`."""
        if self._closed:
            work.close()
            raise OwnerClosed(f"{self.name} is closed; cannot start {what}")
        task = asyncio.get_running_loop().create_task(work, name=f"{self.name}: {what}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))
        return task

    def supervise(
        self,
        what: str,
        run: Callable[[], Awaitable[None]],
        on_crash: Callable[[], None] | None = None,
    ) -> asyncio.Task[None]:
        """Runs a long-lived `run`, restarted with backoff whenever it crashes."""
        return self.spawn(supervise(what, run, on_crash=on_crash), what)

    def _finished(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task_failed", exc_info=error, extra={"kv": {"task": what}})

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Cancels every task and waits (at most `timeout_s`) for them to end."""
        self._closed = True
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
        for task in stuck:
            event(log, logging.WARNING, "task_did_not_stop", owner=self.name, task=task.get_name())


async def wait_event(event_: asyncio.Event, timeout_s: float | None) -> bool:
    """True if `event_` is set within `timeout_s` (None: no limit), else False.

    Unlike `asyncio.wait_for` on Python 3.11, a cancellation that races with the event
    being set is never swallowed, so loops built on this always stop when cancelled.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event_.wait()
    except TimeoutError:
        return False
    return True
