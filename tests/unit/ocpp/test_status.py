"""How connector statuses combine into EVSE and station AvailabilityState, and when a
change is told to the CSMS (NotifyEvent ids unique across restarts)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from charger.protocols.ocpp.event_ids import EventIds
from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model
from charger.protocols.ocpp.status import (
    StatusReporter,
    connector_status,
    evse_state,
    station_state,
)
from charger.runtime.store import Store
from charger.runtime.tasks import TaskOwner


@pytest.mark.parametrize(
    ("cp_state", "status"),
    [
        ("A1", "Available"),
        ("B1", "Occupied"),
        ("C2", "Occupied"),
        ("E", "Faulted"),
        ("F", "Faulted"),
    ],
)
def test_connector_status_follows_the_control_pilot(cp_state: str, status: str) -> None:
    assert connector_status(cp_state) == status


@pytest.mark.parametrize(
    ("connectors", "state"),
    [
        (["Available", "Available"], "Available"),
        (["Occupied", "Available"], "Occupied"),  # one EVSE charges one car at a time
        (["Faulted", "Available"], "Available"),
        (["Faulted", "Faulted"], "Faulted"),
        (["Unavailable", "Unavailable"], "Unavailable"),
        (["Unavailable", "Faulted"], "Available"),
    ],
)
def test_evse_state(connectors: list[str], state: str) -> None:
    assert evse_state(connectors) == state


@pytest.mark.parametrize(
    ("evses", "state"),
    [
        (["Available", "Occupied"], "Available"),  # a new driver still finds a free EVSE
        (["Occupied", "Unavailable"], "Occupied"),
        (["Occupied", "Occupied"], "Occupied"),
        (["Unavailable", "Unavailable"], "Unavailable"),
        (["Faulted"], "Faulted"),
    ],
)
def test_station_state(evses: list[str], state: str) -> None:
    assert station_state(evses) == state


class RecordingSession:
    """Answers every CALL; NotifyEvents can be refused with a CALLERROR (None)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse_events = False

    async def call_quietly(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append((action, payload))
        if action == "NotifyEvent" and self.refuse_events:
            return None
        return {}

    def event_ids(self) -> list[int]:
        return [p["eventData"][0]["eventId"] for a, p in self.calls if a == "NotifyEvent"]


def reporter(store: Store | None = None) -> StatusReporter:
    settings = OcppSettings("ws://x/ocpp", "CS1", "", "V", "M", "1", "1", (Connector("E", 1, 1),))
    status = StatusReporter(
        build_device_model(settings),
        [(1, 1)],
        lambda: "2026-12-01T10:00:00.000Z",
        lambda: None,
        TaskOwner("t"),
    )
    status.event_ids = EventIds(store)
    return status


async def test_a_triggered_status_that_changed_nothing_sends_no_delta_event() -> None:
    status, session = reporter(), RecordingSession()
    await status.notify(session, 1, 1, "Available")  # first report: the CSMS learns it
    await status.notify(session, 1, 1, "Available")  # TriggerMessage: same value again
    await status.notify(session, 1, 1, "Occupied")  # a change
    assert [a for a, _ in session.calls] == [
        "StatusNotification",
        "NotifyEvent",
        "StatusNotification",
        "StatusNotification",
        "NotifyEvent",
    ]


async def test_a_refused_notify_event_is_not_retried_but_sent_with_the_next_report() -> None:
    status, session = reporter(), RecordingSession()
    session.refuse_events = True
    await status.notify(session, 1, 1, "Occupied")  # CALLERROR: not sent again by itself
    session.refuse_events = False
    await status.notify(session, 1, 1, "Occupied")  # the next report carries it
    assert [a for a, _ in session.calls].count("NotifyEvent") == 2
    assert session.event_ids() == [1, 2]  # never the same id twice


async def test_event_ids_continue_after_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "dm.db")
    first = EventIds(store)
    ids = [await first.next() for _ in range(3)]
    second = EventIds(Store(tmp_path / "dm.db"))  # a restart: the same file again
    later = [await second.next() for _ in range(3)]
    assert ids == [1, 2, 3] and later == [1001, 1002, 1003]
    assert not set(ids) & set(later)


async def test_a_scheduled_inoperative_shows_unavailable_at_once_when_the_transaction_ends() -> (
    None
):
    """OCPP issue, defect 6: Available and 12 ms later Unavailable; now straight there."""
    session, busy = RecordingSession(), {1}
    settings = OcppSettings("ws://x/ocpp", "CS1", "", "V", "M", "1", "1", (Connector("E", 1, 1),))
    tasks = TaskOwner("t")
    status = StatusReporter(
        build_device_model(settings),
        [(1, 1)],
        lambda: "2026-12-01T10:00:00.000Z",
        lambda: session,
        tasks,
        in_transaction=lambda evse: evse in busy,
    )
    status.cp_status(1, "C2")
    status.scheduled_unavailable.add(1)  # ChangeAvailability Inoperative: Scheduled
    status.cp_status(1, "B1")  # still in its transaction: Occupied
    busy.clear()  # the transaction ended (unplugged)
    status.cp_status(1, "A1")
    status.set_available(1, False)  # the scheduled operation takes effect: no change left
    for _ in range(10):
        await asyncio.sleep(0)
    reported = [p["connectorStatus"] for a, p in session.calls if a == "StatusNotification"]
    assert reported == ["Occupied", "Unavailable"]
    await tasks.close()
