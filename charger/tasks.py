"""Short-lived background tasks: kept referenced until done, failures logged with context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
_running: set[asyncio.Future[Any]] = set()


def spawn(work: Awaitable[T], what: str) -> asyncio.Future[T]:
    """Runs `work` in the background; an exception is logged as `task_failed what=...`."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(lambda done: _finished(done, what))
    return task


def _finished(task: asyncio.Future[Any], what: str) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("task_failed", exc_info=error, extra={"kv": {"task": what}})


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """True if `event` is set within `timeout_s` (None: no limit), else False.

    Unlike `asyncio.wait_for` on Python 3.11, a cancellation that races with the event
    being set is never swallowed, so loops built on this always stop when cancelled.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
