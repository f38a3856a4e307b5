"""Meter values (J01, J02): the CS's `meter_values` readings turned into the sampled
values of TransactionEvents (per SampledDataCtrlr), clock-aligned MeterValues and
Updated events (per AlignedDataCtrlr), and the samples gathered for the Ended event.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from charger.bus import api
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.measurands import sampled_values
from charger.protocols.ocpp.session import Session
from charger.protocols.ocpp.transactions import TransactionManager
from charger.runtime.tasks import TaskOwner, wait_event

Emit = Callable[[int, list[dict[str, Any]]], None]  # TransactionEvents of an EVSE
Read = Callable[[int], Awaitable[dict[str, Any] | None]]  # a fresh meter_values, or None
Release = Callable[[list[dict[str, Any]]], None]  # emits events in the place held for them

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
        # SampledDataCtrlr / AlignedDataCtrlr.TxEndedInterval samples of each EVSE's tx:
        # (its transactionId, meter values, monotonic time of the last periodic one)
        self._ended: dict[int, tuple[str, list[dict[str, Any]], float]] = {}
        # the client sets it after every SetVariables and when its clock is set: the
        # clock-aligned boundaries are planned again
        self.replan = asyncio.Event()
        self.monotonic = time.monotonic  # the clock of sampling intervals (tests set it)
        # the station's time, in seconds since the epoch, that clock-aligned samples
        # follow: the client's is the CSMS's (its wall clock plus the offset it learnt)
        self.clock: Callable[[], float] = time.time
        self.timestamp_at: Callable[[float], str] = _timestamp_at  # an instant of `clock`
        # asks the CS for a reading now (the client's bus request); None: the last one
        self.read: Read | None = None
        # where a fresh reading goes: the path of every reading (the client's also keeps
        # it with the transaction and checks MaxEnergyOnInvalidId)
        self.take: Callable[[int, dict[str, Any]], None] = self.reading
        # holds an EVSE's place in the order of its events: those emitted meanwhile go
        # out after the ones given to the returned function (the client's write order)
        self.hold: Callable[[int], Release] = lambda evse: lambda events: self._emit(evse, events)
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
        if (tx_id := self._tx.transaction_id(evse)) is not None:
            self._gather_ended_values(evse, tx_id, now)

    async def clock_aligned_forever(self, evses: list[int]) -> None:
        """J02 and J01: at each boundary of AlignedDataCtrlr.Interval on the station's
        clock (`clock`, the CSMS's), in a transaction an Updated event (none when
        SendDuringIdle is set), else MeterValues; at each boundary of
        AlignedDataCtrlr.TxEndedInterval a sample for the Ended event of every
        transaction (`_aligned_ended_sample`). Each is stamped with its boundary."""
        done: dict[str, int] = {}  # the last boundary handled, per interval
        while True:
            intervals = {
                name: self._dm.integer("AlignedDataCtrlr", name)
                for name in ("Interval", "TxEndedInterval")
            }
            self.replan.clear()
            now = self.clock()
            due: dict[str, int] = {}  # the next boundary of each interval, as its count
            for name, interval_s in intervals.items():
                if interval_s > 0:
                    due[name] = max(math.floor(now / interval_s) + 1, done.get(name, -1) + 1)
            at = {name: count * intervals[name] for name, count in due.items()}
            wait = None if not at else max(min(at.values()) - now, 0.0)
            if await wait_event(self.replan, wait):
                continue  # an interval or the clock changed: plan again
            first = min(at.values())
            if self.clock() < first - 1e-3:
                continue  # woke before the boundary on the station's clock: wait again
            names = {n for n, t in at.items() if t - first < 1e-3}
            for name in names:
                done[name] = due[name]
            stamp = self.timestamp_at(first)  # the boundary, whenever the reading comes
            for evse in evses:
                tx_id = self._tx.transaction_id(evse)
                if wanted := self._clock_aligned_wanted(names, tx_id):
                    self._at_boundary(evse, wanted, tx_id, stamp)

    def _clock_aligned_wanted(self, names: set[str], tx_id: str | None) -> set[str]:
        """What a boundary of `names` asks of an EVSE with `tx_id` (None: idle): Interval's
        Updated event or MeterValues (SendDuringIdle: none in a transaction), and
        TxEndedInterval's sample for the Ended event of a transaction."""
        wanted = set(names)
        if tx_id is None:
            wanted.discard("TxEndedInterval")
            if self._session() is None:
                wanted.discard("Interval")  # MeterValues go over a registered session
        elif self._dm.value("AlignedDataCtrlr", "SendDuringIdle") == "true":
            wanted.discard("Interval")
        return wanted

    def _at_boundary(self, evse: int, wanted: set[str], tx_id: str | None, stamp: str) -> None:
        """J02 and J01 at a clock-aligned boundary (`stamp`): one reading asked for then
        (the last one the CS reported may be as old as its meter interval, [station]
        meter_interval_s; the labs allow 4 s) for the Updated event (MeterValueClock) or
        the MeterValues of an idle EVSE, and for the Ended event's sample. The Updated
        event is made now, so its seqNo is the boundary's: the transaction's events of
        the time the reading takes go out after it (OCPP E: seqNo in the order of the
        events); its values are the reading's."""
        events: list[dict[str, Any]] = []
        release: Release | None = None
        if "Interval" in wanted and tx_id is not None:
            events = self._tx.clock(evse, stamp)
            release = self.hold(evse)
        self._tasks.spawn(
            self._read_at_boundary(evse, wanted, tx_id, stamp, events, release),
            "ocpp clock-aligned sample",
        )

    async def _read_at_boundary(
        self,
        evse: int,
        wanted: set[str],
        tx_id: str | None,
        stamp: str,
        events: list[dict[str, Any]],
        release: Release | None,
    ) -> None:
        try:
            data = await self.read(evse) if self.read is not None else None
            if data is not None:  # a silent meter: the last reading
                self.take(evse, data)
        finally:
            if release is not None:
                for payload in events:
                    self._resample(evse, payload, stamp)
                release(events)
        if self._tx.transaction_id(evse) != tx_id:
            return  # the transaction ended or one started meanwhile: it was not this
        if "Interval" in wanted and tx_id is None and (session := self._session()) is not None:
            self.send(session, evse, "Sample.Clock", stamp)
        if "TxEndedInterval" in wanted and tx_id is not None:
            self._aligned_ended_sample(evse, tx_id, stamp)

    def _resample(self, evse: int, payload: dict[str, Any], stamp: str) -> None:
        """A clock-aligned event made at its boundary gets the reading asked for then."""
        samples = self.sample(evse, "Clock", "Sample.Clock")
        if samples:
            payload["meterValue"] = [{"timestamp": stamp, "sampledValue": samples}]

    def _aligned_ended_sample(self, evse: int, tx_id: str, stamp: str) -> None:
        """A clock-aligned sample for the Ended event (AlignedDataCtrlr.TxEndedInterval,
        J02, TC_J_03) of the transaction open at the boundary: the boundary's time, with
        the reading asked for then (`_at_boundary`)."""
        meter = self._meters.get(evse)
        entry = self._ended.get(evse)
        if meter is None:
            return  # no reading yet
        if entry is None or entry[0] != tx_id:
            entry = (tx_id, [], self.monotonic())
            self._ended[evse] = entry
        measurands = self._dm.members("AlignedDataCtrlr", "TxEndedMeasurands")
        sampled = sampled_values(meter, measurands, "Sample.Clock")
        if sampled:
            entry[1].append({"timestamp": stamp, "sampledValue": sampled})

    def send(self, session: Session, evse: int, context: str, stamp: str | None = None) -> None:
        """MeterValues with the AlignedDataCtrlr measurands (J02 outside a transaction,
        F06 on a trigger, also while the boot is Pending); none before a first reading.
        `stamp`: the reading's time (a clock-aligned boundary), else now."""
        samples = self.sample(evse, "Clock", context)
        if samples:
            reading = {"timestamp": stamp or self._timestamp(), "sampledValue": samples}
            payload = {"evseId": evse, "meterValue": [reading]}
            self._tasks.spawn(
                session.call_quietly("MeterValues", payload), f"ocpp {context} values"
            )

    def _gather_ended_values(self, evse: int, tx_id: str, now: float) -> None:
        """Samples for the Ended event every SampledDataCtrlr.TxEndedInterval seconds
        (J01); the clock-aligned ones come from `clock_aligned_forever`."""
        meter = self._meters[evse]
        entry = self._ended.get(evse)
        if entry is None or entry[0] != tx_id:
            entry = (tx_id, [], now)
        _, values, last = entry
        periodic_s = self._dm.integer("SampledDataCtrlr", "TxEndedInterval")
        if periodic_s > 0 and now - last >= periodic_s:
            measurands = self._dm.members("SampledDataCtrlr", "TxEndedMeasurands")
            sampled = sampled_values(meter, measurands, "Sample.Periodic")
            if sampled:
                values.append({"timestamp": self._timestamp(), "sampledValue": sampled})
            last = now
        self._ended[evse] = (tx_id, values, last)

    def take_ended_values(self, evse: int) -> list[dict[str, Any]]:
        """The Ended event's samples in time order: a clock-aligned one is added when its
        reading comes, after periodic ones taken meanwhile (one form of timestamp: its
        text sorts as its time)."""
        entry = self._ended.pop(evse, None)
        if entry is None or entry[0] != self._tx.transaction_id(evse):
            return []
        return sorted(entry[1], key=lambda value: str(value["timestamp"]))


def _timestamp_at(seconds: float) -> str:
    """An instant (seconds since the epoch) in the form of every OCPP timestamp."""
    return api.timestamp(datetime.fromtimestamp(seconds, UTC))
