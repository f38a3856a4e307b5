"""Connector status reporting (G01, B04, G03/G04): the status each connector shows, made
from the CS's control-pilot state and the availability the CSMS set; StatusNotification
and the matching NotifyEvent on each change; the catch-up after an offline period; the
AvailabilityState of every Connector, EVSE and the ChargingStation in the device model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.event_ids import EventIds
from charger.protocols.ocpp.session import Session
from charger.runtime.tasks import TaskOwner

ConnectorKey = tuple[int, int]  # (EVSE id, connector id)


def connector_status(cp_state: str) -> str:
    """OCPP ConnectorStatusEnumType for an IEC 61851 state."""
    letter = cp_state[:1]
    if letter == "A":
        return "Available"
    if letter in "EF":
        return "Faulted"
    return "Occupied"


def _all_the_same(states: list[str]) -> str | None:
    """Unavailable or Faulted when every part is."""
    for whole in ("Unavailable", "Faulted"):
        if states and all(s == whole for s in states):
            return whole
    return None


def evse_state(connectors: list[str]) -> str:
    """An EVSE's AvailabilityState from its connectors': one in use takes the EVSE."""
    if (whole := _all_the_same(connectors)) is not None:
        return whole
    return "Occupied" if "Occupied" in connectors else "Available"


def station_state(evses: list[str]) -> str:
    """The station's AvailabilityState: Available while any EVSE is free for a new user."""
    if (whole := _all_the_same(evses)) is not None:
        return whole
    return "Available" if "Available" in evses else "Occupied"


class StatusReporter:
    def __init__(
        self,
        dm: DeviceModel,
        connectors: list[ConnectorKey],
        timestamp: Callable[[], str],
        online: Callable[[], Session | None],
        tasks: TaskOwner,
        in_transaction: Callable[[int], bool] = lambda evse: False,
    ) -> None:
        """`online`: the session to report over, None while not registered;
        `in_transaction`: whether an EVSE has a transaction now."""
        self._dm = dm
        self._tasks = tasks
        self._timestamp = timestamp
        self._online = online
        self.statuses: dict[ConnectorKey, str] = {key: "Available" for key in connectors}
        self.unavailable: set[int] = set()  # EVSEs made inoperative by the CSMS
        # EVSEs to become inoperative once their transaction ends (ChangeAvailability
        # Scheduled): the end shows Unavailable at once, not Available first (defect 6)
        self.scheduled_unavailable: set[int] = set()
        self._in_transaction = in_transaction
        self._cp_states: dict[int, str] = {}
        self._reported: dict[ConnectorKey, str] = {}  # statuses the CSMS acknowledged
        # AvailabilityStates the CSMS acknowledged in a NotifyEvent: a Delta goes out only
        # for a change (not for a triggered StatusNotification that repeats the value)
        self._notified: dict[ConnectorKey, str] = {}
        self.event_ids = EventIds(None)  # the client gives the persisted one
        self._offline_since: float | None = None  # monotonic time the connection was lost
        self.monotonic: Callable[[], float] = time.monotonic  # the offline period's clock
        self._reported_to: object | None = None  # the CSMS _reported refers to
        self._update_availability_states()

    def cp_status(self, evse: int, state: str) -> None:
        """The CS's control-pilot state of an EVSE (all its connectors share it)."""
        self._cp_states[evse] = state
        for key in self.statuses:
            if key[0] == evse:
                self._refresh(key)

    def set_available(self, evse: int, available: bool, *, report_unchanged: bool = False) -> None:
        """G03/G04: the connectors report Unavailable (or their real status again);
        `report_unchanged`: a connector whose status stays is reported again too, with its
        AvailabilityState event (a ChangeAvailability to the state it is in, TC_G_13)."""
        if available:
            self.unavailable.discard(evse)
        else:
            self.unavailable.add(evse)
        for key in self.statuses:
            if key[0] == evse and not self._refresh(key) and report_unchanged:
                self._report(key, "ocpp availability unchanged")

    def restore_unavailable(self, evses: set[int]) -> None:
        """B11.FR.04: the EVSEs that were Unavailable before the reset are so again."""
        self.unavailable = set(evses)
        for key in self.statuses:
            self._refresh(key)

    def _refresh(self, key: ConnectorKey) -> bool:
        """Recomputes a connector's status; reports it if it changed (True)."""
        status = connector_status(self._cp_states.get(key[0], "A1"))
        evse = key[0]
        scheduled = evse in self.scheduled_unavailable and not self._in_transaction(evse)
        if (evse in self.unavailable or scheduled) and status != "Faulted":
            status = "Unavailable"
        if self.statuses[key] == status:
            return False
        self.statuses[key] = status
        self._update_availability_states()
        session = self._online()
        if session is not None:
            self._tasks.spawn(self.notify(session, *key, status), "ocpp status")
        return True

    def _report(self, key: ConnectorKey, what: str) -> None:
        """A connector's current status again, with its AvailabilityState event."""
        session = self._online()
        if session is not None:
            status = self.statuses[key]
            self._tasks.spawn(self.notify(session, *key, status, always_event=True), what)

    def _update_availability_states(self) -> None:
        evses: dict[int, list[str]] = {}
        for (evse, connector), status in self.statuses.items():
            self._dm.assign_at("Connector", "AvailabilityState", status, evse, connector)
            evses.setdefault(evse, []).append(status)
        per_evse = [evse_state(states) for states in evses.values()]
        for evse, state in zip(evses, per_evse, strict=True):
            self._dm.assign_at("EVSE", "AvailabilityState", state, evse, None)
        station = station_state(per_evse)
        self._dm.assign_at("ChargingStation", "AvailabilityState", station, None, None)

    def went_offline(self) -> None:
        """The registered connection is gone: the offline period (B04) starts now."""
        if self._offline_since is None:
            self._offline_since = self.monotonic()

    async def catch_up(self, session: Session, csms: object) -> None:
        """B04: after an offline period longer than OfflineThreshold (and at boot) every
        connector's status; after a shorter one only the statuses that changed. A CSMS
        reached over another network profile (`csms`) has heard nothing yet: it gets all."""
        offline_s = None
        if self._offline_since is not None:
            offline_s = self.monotonic() - self._offline_since
        self._offline_since = None
        everything = (
            offline_s is None
            or offline_s > self._dm.integer("OCPPCommCtrlr", "OfflineThreshold")
            or self._reported_to != csms
        )
        if self._reported_to != csms:
            self._notified.clear()  # another CSMS: it has heard of no state yet
        self._reported_to = csms
        for key, status in sorted(self.statuses.items()):
            if everything or self._reported.get(key) != status:
                await self.notify(session, *key, status)

    def trigger(self, session: Session, evses: list[int], connector: int | None = None) -> None:
        """F06: every connector's status of these EVSEs (or the one connector), sent again
        with its AvailabilityState event, changed or not (TC_F_23/F_24 step 3)."""
        for (evse, connector_id), status in sorted(self.statuses.items()):
            if evse in evses and connector in (None, connector_id):
                self._tasks.spawn(
                    self.notify(session, evse, connector_id, status, always_event=True),
                    "ocpp trigger",
                )

    async def notify(
        self,
        session: Session,
        evse: int,
        connector: int,
        status: str,
        *,
        always_event: bool = False,
    ) -> None:
        """StatusNotification, and the change of the Connector's AvailabilityState as a
        NotifyEvent (trigger Delta), as G01/B04 pair them; `always_event`: the event
        also when the CSMS knows the value (a report of the current state on request)."""
        sent = await session.call_quietly(
            "StatusNotification",
            {
                "timestamp": self._timestamp(),
                "connectorStatus": status,
                "evseId": evse,
                "connectorId": connector,
            },
        )
        if sent is not None:
            self._reported[(evse, connector)] = status
        if self._notified.get((evse, connector)) == status and not always_event:
            return
        stamp = self._timestamp()
        # A CALLERROR is not retried (the CSMS could not process this event; the same
        # again would fail too): the state stays un-notified, so the next change or
        # report sends it again, with a new eventId. docs/ocpp-oca.md, readings.
        answer = await session.call_quietly(
            "NotifyEvent",
            {
                "generatedAt": stamp,
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": await self.event_ids.next(),
                        "timestamp": stamp,
                        "trigger": "Delta",
                        "actualValue": status,
                        "eventNotificationType": "HardWiredNotification",
                        "component": {
                            "name": "Connector",
                            "evse": {"id": evse, "connectorId": connector},
                        },
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            },
        )
        if answer is not None:
            self._notified[(evse, connector)] = status
