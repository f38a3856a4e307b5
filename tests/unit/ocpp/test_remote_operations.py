"""Scheduled ChangeAvailability Inoperative against a later Operative (finding 25)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from charger.protocols.ocpp.remote import RemoteOperations
from charger.runtime.tasks import TaskOwner


class Station:
    """Two EVSEs, each with a transaction until the test ends it."""

    def __init__(self) -> None:
        self.transactions: dict[int, str | None] = {1: "tx-1", 2: "tx-2"}
        self.available: dict[int, bool] = {1: True, 2: True}
        self.scheduled: set[int] = set()

    def evse_id(self, ocpp_evse_id: int) -> str | None:
        return f"E{ocpp_evse_id}"

    def evses(self) -> list[int]:
        return [1, 2]

    def transaction_id(self, ocpp_evse_id: int) -> str | None:
        return self.transactions[ocpp_evse_id]

    def set_available(self, evse: int, available: bool, *, report_unchanged: bool = False) -> None:
        self.available[evse] = available

    def schedule_unavailable(self, evses: list[int]) -> None:
        self.scheduled.update(evses)

    def unschedule_unavailable(self, evses: list[int]) -> None:
        self.scheduled.difference_update(evses)


class Bus:
    """The CS: answers each request when the test says so (`answer`); once `at_once`,
    right away."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.pending: list[asyncio.Future[None]] = []
        self.asked = asyncio.Event()
        self.at_once = False

    async def request(self, message: Any, timeout_s: float) -> Any:
        self.requests.append(dict(message.data))
        if not self.at_once:
            answered = asyncio.get_running_loop().create_future()
            self.pending.append(answered)
            self.asked.set()
            await answered
        return type("Reply", (), {"data": {"status": "accepted"}})()

    def answer(self, index: int = 0) -> None:
        self.pending.pop(index).set_result(None)


@pytest.mark.parametrize("first", [1, 0], ids=["operative-answered-first", "inoperative-first"])
async def test_an_operative_while_an_earlier_scheduled_inoperative_runs_cancels_the_next(
    first: int,
) -> None:
    """Both EVSEs' transactions end; the station-wide Inoperative scheduled for them runs
    for EVSE 1 (the CS is asked) when an Operative for EVSE 2 comes: EVSE 2's Inoperative
    is cancelled, it stays operative (before: it had left the scheduled list, so the
    Operative found nothing to cancel, and then it ran anyway), whichever of the CS's
    answers comes first."""
    bus, station, tasks = Bus(), Station(), TaskOwner("t")
    remote = RemoteOperations(bus, station, 5.0, tasks)  # type: ignore[arg-type]
    reply = await remote.change_availability({"operationalStatus": "Inoperative"})
    assert reply == {"status": "Scheduled"} and station.scheduled == {1, 2}
    station.transactions = {1: None, 2: None}
    ended = asyncio.create_task(remote.transaction_ended())
    await bus.asked.wait()  # EVSE 1's Inoperative asks the CS
    assert bus.requests == [{"operational_status": "inoperative", "evse_id": "E1"}]
    bus.asked.clear()
    operative = asyncio.create_task(
        remote.change_availability({"operationalStatus": "Operative", "evse": {"id": 2}})
    )
    await bus.asked.wait()
    bus.answer(first)  # EVSE 2 operative (1) or EVSE 1 inoperative (0) first
    bus.answer(0)
    bus.at_once = True
    assert await operative == {"status": "Accepted"}
    await ended  # every operation that was ready has run (or seen it was cancelled)
    assert bus.requests == [
        {"operational_status": "inoperative", "evse_id": "E1"},
        {"operational_status": "operative", "evse_id": "E2"},
    ]
    assert station.available == {1: False, 2: True}
    assert station.scheduled == set()
    await tasks.close()
