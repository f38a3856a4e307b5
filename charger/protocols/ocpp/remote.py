"""CSMS-initiated operations carried out through the CS on the bus: Reset (B11, B12),
ChangeAvailability (G03, G04), UnlockConnector (F05), TriggerMessage (F06) and
DataTransfer (P01).

Operations that must wait for a transaction to end (an OnIdle reset, making a busy EVSE
inoperative) answer Scheduled and run when the last affected transaction has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from charger.bus import Bus, RequestTimeout, messages
from charger.bus.api import Form
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

_Operation = Callable[[], Coroutine[Any, Any, None]]  # a scheduled operation

_DATA_TRANSFER_STATUS = {
    "accepted": "Accepted",
    "rejected": "Rejected",
    "unknown_message_id": "UnknownMessageId",
    "unknown_vendor_id": "UnknownVendorId",
}


class Station(Protocol):
    """What the remote operations need from the OCPP client."""

    def evse_id(self, ocpp_evse_id: int) -> str | None: ...

    def evses(self) -> list[int]: ...

    def has_connector(self, ocpp_evse_id: int, connector_id: int) -> bool: ...

    def transaction_id(self, ocpp_evse_id: int) -> str | None: ...

    def end_for_reset(self, ocpp_evse_id: int) -> None: ...

    async def stop_energy(self, ocpp_evse_id: int) -> None:
        """Stops an ending transaction's energy transfer; returns once it has ended."""

    async def prepare_reset(self, reason: str) -> None: ...

    def reset_retries(self) -> int: ...

    def set_available(
        self, ocpp_evse_id: int, available: bool, *, report_unchanged: bool = False
    ) -> None: ...

    def schedule_unavailable(self, ocpp_evse_ids: list[int]) -> None:
        """These EVSEs become inoperative when their transactions end."""

    def unschedule_unavailable(self, ocpp_evse_ids: list[int]) -> None: ...

    def trigger(
        self, message: str, ocpp_evse_id: int | None, connector_id: int | None = None
    ) -> str: ...


@dataclass
class RemoteOperations:
    bus: Bus
    station: Station
    timeout_s: float
    tasks: TaskOwner
    # OnIdle resets waiting for the transactions of their EVSEs to end
    _scheduled: list[tuple[frozenset[int], Callable[[], Awaitable[None]]]] = field(
        default_factory=list
    )
    # the one record of the Inoperatives waiting for an EVSE's transaction to end: the
    # EVSE's, until it runs (`_scheduled_inoperative`) or an Operative cancels it (the
    # StatusReporter's scheduled_unavailable follows it, Station.schedule_unavailable)
    _inoperative: dict[int, _Operation] = field(default_factory=dict)

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        return {
            "Reset": self.reset,
            "ChangeAvailability": self.change_availability,
            "UnlockConnector": self.unlock_connector,
            "TriggerMessage": self.trigger_message,
            "DataTransfer": self.data_transfer,
        }

    async def _ask(self, form: Form[Any], data: dict[str, Any]) -> dict[str, Any] | None:
        try:
            reply = await self.bus.request(form.make(data), self.timeout_s)
        except RequestTimeout:
            return None
        return dict(reply.data)

    def _busy(self, evses: list[int]) -> frozenset[int]:
        return frozenset(e for e in evses if self.station.transaction_id(e) is not None)

    async def transaction_ended(self) -> None:
        """Runs the operations that were waiting for their transactions to end: the
        Inoperatives first (a reset keeps the availability they leave), then the
        resets. Each Inoperative checks its record when it runs, so one cancelled
        meanwhile (while an earlier operation waited for the CS) does nothing."""
        inoperative = [op for e, op in self._inoperative.items() if not self._busy([e])]
        ready = [(evses, op) for evses, op in self._scheduled if not self._busy(list(evses))]
        self._scheduled = [item for item in self._scheduled if item not in ready]
        for operation in [*inoperative, *(op for _, op in ready)]:
            await operation()

    # ------------------------------------------------------------------ B11, B12

    async def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse = payload.get("evseId")
        targets = self.station.evses() if evse is None else [evse]
        if evse is not None and self.station.evse_id(evse) is None:
            return {"status": "Rejected"}
        data = {} if evse is None else {"evse_id": self.station.evse_id(evse)}

        async def do_reset(
            reason: str = "RemoteReset", ending: frozenset[int] = frozenset()
        ) -> None:
            # Immediate: the energy stops and the transactions' Ended events are queued
            # before the station restarts (B12.FR.02; TC_B_22 steps 3-5)
            await asyncio.gather(*(self.station.stop_energy(e) for e in sorted(ending)))
            event(log, logging.WARNING, "ocpp_reset", evse=evse or "station")
            if evse is None:
                await self.station.prepare_reset(reason)  # what the next boot says
            retries = self.station.reset_retries()  # OCPPCommCtrlr.ResetRetries
            for attempt in range(1 + retries):
                reply = await self._ask(messages.RESET_REQUEST, data)
                if reply is not None and reply["status"] == "accepted":
                    return
                event(log, logging.ERROR, "ocpp_reset_failed", attempt=attempt + 1, reply=reply)

        busy = self._busy(targets)
        if busy and payload["type"] == "OnIdle":
            # once the transactions have ended: the boot after it says ScheduledReset
            self._scheduled.append((busy, lambda: do_reset("ScheduledReset")))
            return {"status": "Scheduled"}
        for e in busy:  # Immediate: the transactions end now, then the reset
            self.station.end_for_reset(e)
        # an EVSE's reset stops its energy in the CS, which ends its transaction
        reply = (
            await self._ask(messages.RESET_REQUEST, data)
            if evse is not None
            else {"status": "accepted"}
        )
        if evse is None:  # the answer goes out first
            self.tasks.spawn(do_reset(ending=busy), "station reset")
        return {"status": "Accepted" if reply and reply["status"] == "accepted" else "Rejected"}

    # ------------------------------------------------------------------ G03, G04

    async def change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("evse")
        evse = None if target is None else target["id"]
        if evse is not None and self.station.evse_id(evse) is None:
            return {"status": "Rejected"}
        connector = None if target is None else target.get("connectorId")
        if (
            evse is not None
            and connector is not None
            and not self.station.has_connector(evse, connector)
        ):
            return {"status": "Rejected"}
        targets = self.station.evses() if evse is None else [evse]
        operative = payload["operationalStatus"] == "Operative"
        busy = self._busy(targets)
        if busy and not operative:
            # G03.FR.05/G04.FR.06: an EVSE with a transaction becomes inoperative when
            # it ends (each its own), the others at once (TC_G_14 step 3)
            free = [e for e in targets if e not in busy]
            if free and not await self._make_available(free, evse is None, False):
                return {"status": "Rejected"}
            for e in sorted(busy):
                if e not in self._inoperative:  # once, however often asked
                    self._inoperative[e] = self._scheduled_inoperative(e)
            self.station.schedule_unavailable(sorted(busy))
            return {"status": "Scheduled"}
        # an Operative takes the scheduled Inoperatives out at once, so none of them
        # runs (its transaction ending now) while the CS is asked
        taken = {e: op for e in targets if operative and (op := self._inoperative.pop(e, None))}
        if not await self._make_available(targets, evse is None, operative):
            self._restore_scheduled_inoperative(taken)
            return {"status": "Rejected"}
        if taken:
            self.station.unschedule_unavailable(sorted(taken))
            event(log, logging.INFO, "ocpp_inoperative_cancelled", evses=sorted(taken))
        return {"status": "Accepted"}

    def _restore_scheduled_inoperative(self, taken: dict[int, _Operation]) -> None:
        """A refused Operative cancels nothing: the Inoperatives it took out wait again
        (or run now, their transactions having ended meanwhile)."""
        for e, op in taken.items():
            if self._inoperative.setdefault(e, op) is op and not self._busy([e]):
                self.tasks.spawn(op(), "scheduled inoperative")

    async def _make_available(self, evses: list[int], station: bool, operative: bool) -> bool:
        """Asks the CS (once for the whole station when `station` and these are all its
        EVSEs); once it accepted, the connectors report their changed states, and for the
        station (G04) every connector its state, changed or not (TC_G_13 step 3)."""
        status = "operative" if operative else "inoperative"
        whole = station and evses == self.station.evses()
        if whole:
            requests: list[dict[str, Any]] = [{"operational_status": status}]
        else:
            requests = [
                {"operational_status": status, "evse_id": self.station.evse_id(e)} for e in evses
            ]
        for data in requests:
            reply = await self._ask(messages.CHANGE_AVAILABILITY_REQUEST, data)
            if reply is None or reply["status"] != "accepted":
                return False
        for e in evses:
            self.station.set_available(e, operative, report_unchanged=whole)
        return True

    def _scheduled_inoperative(self, evse: int) -> _Operation:
        """A scheduled Inoperative of one EVSE, run when its transaction has ended; only
        while it is still the EVSE's record (not cancelled, not run already)."""

        async def apply() -> None:
            if self._inoperative.get(evse) is not apply:
                return  # an Operative cancelled it after the transaction ended
            del self._inoperative[evse]
            data = {"operational_status": "inoperative", "evse_id": self.station.evse_id(evse)}
            reply = await self._ask(messages.CHANGE_AVAILABILITY_REQUEST, data)
            accepted = reply is not None and reply["status"] == "accepted"
            self.station.unschedule_unavailable([evse])
            self.station.set_available(evse, not accepted)

        return apply

    # ------------------------------------------------------------------ F05, F06, P01

    async def unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse_id = self.station.evse_id(payload["evseId"])
        if evse_id is None or not self.station.has_connector(
            payload["evseId"], payload["connectorId"]
        ):
            return {"status": "UnknownConnector"}  # F05.FR.03
        if self.station.transaction_id(payload["evseId"]) is not None:
            return {"status": "OngoingAuthorizedTransaction"}
        reply = await self._ask(
            messages.CS_CONNECTOR_REQUEST,
            {"evse_id": evse_id, "connector_id": payload["connectorId"], "action": "unlock"},
        )
        unlocked = reply is not None and reply["status"] == "unlocked"
        return {"status": "Unlocked" if unlocked else "UnlockFailed"}

    async def trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("evse") or {}
        status = self.station.trigger(
            payload["requestedMessage"], target.get("id"), target.get("connectorId")
        )
        return {"status": status}

    async def data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"vendor_id": payload["vendorId"]}
        if "messageId" in payload:
            data["message_id"] = payload["messageId"]
        if "data" in payload:
            data["data"] = payload["data"]
        reply = await self._ask(messages.DATA_TRANSFER_REQUEST, data)
        if reply is None:
            return {"status": "Rejected"}
        result: dict[str, Any] = {"status": _DATA_TRANSFER_STATUS[reply["status"]]}
        if "data" in reply:
            result["data"] = reply["data"]
        return result
