"""Supervision of long-lived tasks: a crash is logged with context and the task restarted
with exponential backoff; an optional hook runs first (e.g. drive the hardware safe)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from charger.runtime.log import event

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0  # a task that ran this long starts again from the initial backoff


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    on_crash: Callable[[], None] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    delay = INITIAL_BACKOFF_S
    while True:
        started = loop.time()
        try:
            await run()
            event(log, logging.WARNING, "task_exited", task=name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task_crashed", extra={"kv": {"task": name, "error": repr(exc)}})
            if on_crash is not None:
                try:
                    on_crash()
                except Exception:
                    log.exception("crash_hook_failed", extra={"kv": {"task": name}})
        if loop.time() - started >= HEALTHY_AFTER_S:
            delay = INITIAL_BACKOFF_S
        event(log, logging.INFO, "task_restart", task=name, delay_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
