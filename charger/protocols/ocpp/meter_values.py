"""Meter values (J01, J02): the CS's `meter_values` readings turned into the sampled
values of TransactionEvents (per SampledDataCtrlr), clock-aligned MeterValues and
Updated events (per AlignedDataCtrlr), and the samples gathered for the Ended event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.measurands import sampled_values
from charger.protocols.ocpp.session import Session
from charger.protocols.ocpp.transactions import TransactionManager
from charger.runtime.tasks import TaskOwner, wait_event

Emit = Callable[[int, list[dict[str, Any]]], None]  # TransactionEvents of an EVSE

_MEASURANDS = {
    "Started": ("SampledDataCtrlr", "TxStartedMeasurands"),
    "Updated": ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    "Ended": ("SampledDataCtrlr", "TxEndedMeasurands"),
    "Clock": ("AlignedDataCtrlr", "Measurands"),
}


class MeterSampler:
    def __init__(
        self,
        dm: DeviceModel,
        tx: TransactionManager,
        emit: Emit,
        timestamp: Callable[[], str],
        session: Callable[[], Session | None],
        tasks: TaskOwner,
    ) -> None:
        """`session`: the registered session to send MeterValues over, if any."""
        self._dm = dm
        self._tasks = tasks
        self._tx = tx
        self._emit = emit
        self._timestamp = timestamp
        self._session = session
        self._meters: dict[int, dict[str, Any]] = {}  # last meter_values data per EVSE
        self._last_periodic: dict[int, float] = {}
        # TxEndedInterval / AlignedDataCtrlr.TxEndedInterval samples of each EVSE's tx:
        # (meter values, monotonic time of the last periodic one, last clock slot)
        self._ended: dict[int, tuple[list[dict[str, Any]], float, int]] = {}
        self.dm_changed = asyncio.Event()  # the client sets it after every SetVariables
        self.monotonic = time.monotonic  # the clock of sampling intervals (tests set it)
        self.wall_clock = time.time  # the clock that clock-aligned samples follow
        tx.sampler = self.sample
        tx.ended_values = self.take_ended_values

    def sample(self, evse: int, which: str, context: str) -> list[dict[str, Any]]:
        """The measurands configured for `which` (Started, Updated, Ended, Clock) of the
        EVSE's last meter reading."""
        meter = self._meters.get(evse)
        if meter is None:
            return []
        return sampled_values(meter, self._dm.members(*_MEASURANDS[which]), context)

    def transaction_started(self, evse: int) -> None:
        """TxUpdatedInterval counts from the transaction's start, not from a phase left
        over from the previous one (the first periodic value comes one interval in)."""
        self._last_periodic[evse] = self.monotonic()

    def reading(self, evse: int, data: dict[str, Any]) -> None:
        """A `meter_values` update of the CS: TxUpdatedInterval's periodic event when due."""
        self._meters[evse] = data
        now = self.monotonic()
        interval = self._dm.integer("SampledDataCtrlr", "TxUpdatedInterval")  # 0: none
        periodic = interval > 0 and now - self._last_periodic.get(evse, now) >= interval
        self._last_periodic.setdefault(evse, now)
        energy_wh = float(data["total_active_energy_imported"])
        events = self._tx.meter(evse, energy_wh, periodic=periodic)
        if events:
            self._last_periodic[evse] = now
        self._emit(evse, events)
        if self._tx.transaction_id(evse) is not None:
            self._gather_ended_values(evse, now)

    async def clock_aligned_forever(self, evses: list[int]) -> None:
        """J02: every AlignedDataCtrlr.Interval seconds, aligned to the wall clock: in a
        transaction an Updated event (none when SendDuringIdle is set), else MeterValues."""
        while True:
            interval = self._dm.integer("AlignedDataCtrlr", "Interval")
            self.dm_changed.clear()
            wait = None if interval <= 0 else interval - self.wall_clock() % interval
            if await wait_event(self.dm_changed, wait):
                continue  # the interval changed: start over
            idle_only = self._dm.value("AlignedDataCtrlr", "SendDuringIdle") == "true"
            for evse in evses:
                if self._tx.transaction_id(evse) is not None:
                    if not idle_only:
                        self._emit(evse, self._tx.clock(evse))
                elif (session := self._session()) is not None:
                    self.send(session, evse, "Sample.Clock")

    def send(self, session: Session, evse: int, context: str) -> None:
        """MeterValues with the AlignedDataCtrlr measurands (J02 outside a transaction,
        F06 on a trigger, also while the boot is Pending); none before a first reading."""
        samples = self.sample(evse, "Clock", context)
        if samples:
            reading = {"timestamp": self._timestamp(), "sampledValue": samples}
            payload = {"evseId": evse, "meterValue": [reading]}
            self._tasks.spawn(
                session.call_quietly("MeterValues", payload), f"ocpp {context} values"
            )

    def _gather_ended_values(self, evse: int, now: float) -> None:
        """Samples for the Ended event: every SampledDataCtrlr.TxEndedInterval seconds and
        at each boundary of AlignedDataCtrlr.TxEndedInterval on the wall clock (J01/J02)."""
        meter = self._meters[evse]
        values, last, slot = self._ended.get(evse, ([], now, -1))

        def sample(component: str, context: str) -> None:
            measurands = self._dm.members(component, "TxEndedMeasurands")
            sampled = sampled_values(meter, measurands, context)
            if sampled:
                values.append({"timestamp": self._timestamp(), "sampledValue": sampled})

        periodic_s = self._dm.integer("SampledDataCtrlr", "TxEndedInterval")
        if periodic_s > 0 and now - last >= periodic_s:
            sample("SampledDataCtrlr", "Sample.Periodic")
            last = now
        aligned_s = self._dm.integer("AlignedDataCtrlr", "TxEndedInterval")
        if aligned_s > 0:
            current = int(self.wall_clock() // aligned_s)
            if slot >= 0 and current != slot:
                sample("AlignedDataCtrlr", "Sample.Clock")
            slot = current
        self._ended[evse] = (values, last, slot)

    def take_ended_values(self, evse: int) -> list[dict[str, Any]]:
        values, _, _ = self._ended.pop(evse, ([], 0.0, -1))
        return values
