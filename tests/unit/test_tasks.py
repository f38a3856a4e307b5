"""Background tasks: a failure is logged with what the task was doing."""

import asyncio

import pytest

from charger.runtime.tasks import spawn


async def test_failure_is_logged_with_context(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("modem on fire")

    task = spawn(broken(), "slac DE*1")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    record = next(r for r in caplog.records if r.getMessage() == "task_failed")
    assert record.kv == {"task": "slac DE*1"}  # type: ignore[attr-defined]
    assert "modem on fire" in caplog.text


async def test_success_and_cancellation_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    async def fine() -> None:
        await asyncio.sleep(0)

    await spawn(fine(), "ok")
    slow = spawn(asyncio.sleep(10), "slow")
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert "task_failed" not in caplog.text


async def test_wait_event_reports_set_or_timeout_and_stops_when_cancelled() -> None:
    from charger.runtime.tasks import wait_event

    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 1.0) is True
    event.clear()

    async def loop_forever() -> None:
        while True:
            await wait_event(event, None)
            event.clear()

    task = asyncio.create_task(loop_forever())
    await asyncio.sleep(0)
    event.set()  # set and cancelled in the same iteration: the loop must still stop
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
