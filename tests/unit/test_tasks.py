"""Background tasks belong to an owner: a failure is logged with what the task was doing,
and closing the owner stops every task it started."""

import asyncio

import pytest

from charger.runtime.tasks import OwnerClosed, TaskOwner


async def test_failure_is_logged_with_context(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("modem on fire")

    task = TaskOwner("slac").spawn(broken(), "slac DE*1")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    record = next(r for r in caplog.records if r.getMessage() == "task_failed")
    assert record.kv == {"task": "slac DE*1"}  # type: ignore[attr-defined]
    assert "modem on fire" in caplog.text


async def test_success_and_cancellation_are_quiet(caplog: pytest.LogCaptureFixture) -> None:
    async def fine() -> None:
        await asyncio.sleep(0)

    owner = TaskOwner("test")
    await owner.spawn(fine(), "ok")
    slow = owner.spawn(asyncio.sleep(10), "slow")
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert "task_failed" not in caplog.text


async def test_closing_the_owner_stops_all_its_tasks_and_takes_no_more() -> None:
    owner, other = TaskOwner("v2g session"), TaskOwner("ocpp")
    cancelled: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append(name)

    first = owner.spawn(forever("a"), "a")
    second = owner.supervise("b", lambda: forever("b"))
    bystander = other.spawn(forever("c"), "c")
    await asyncio.sleep(0)
    assert len(owner) == 2
    await owner.close()
    assert first.cancelled() and second.cancelled() and not bystander.done()
    assert sorted(cancelled) == ["a", "b"] and len(owner) == 0
    work = forever("late")
    with pytest.raises(OwnerClosed, match="v2g session is closed"):
        owner.spawn(work, "late")
    await other.close()
    assert bystander.cancelled()


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
