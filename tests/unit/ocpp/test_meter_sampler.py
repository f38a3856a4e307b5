"""TxUpdatedInterval's periodic values count from the transaction's start (OCPP issue,
defect 4: the timer kept its phase from the previous transaction)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from charger.bus import Bus
from charger.protocols.ocpp.client import OcppClient
from charger.protocols.ocpp.meter_values import MeterSampler
from charger.protocols.ocpp.outbox import Outbox
from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model
from charger.protocols.ocpp.transactions import TransactionManager, TxSettings
from charger.runtime.tasks import TaskOwner
from rig.ocpp_station import settings

SETTINGS = OcppSettings(
    csms_url="ws://csms/ocpp",
    identity="CS1",
    basic_auth_password="",
    vendor="V",
    model="M",
    serial_number="1",
    firmware_version="1",
    connectors=(Connector("E1", 1, 1),),
    tx_updated_interval_s=10,
)


def reading(energy_wh: float) -> dict[str, Any]:
    phases = {"l1": 230.0, "l2": 230.0, "l3": 230.0}
    return {
        "timestamp": "2026-12-01T10:00:00.000Z",
        "voltage": phases,
        "current": {"l1": 16.0, "l2": 16.0, "l3": 16.0},
        "power_factor": 1.0,
        "frequency": 50.0,
        "total_active_energy_imported": energy_wh,
        "total_reactive_energy_imported": 0.0,
    }


def test_the_first_periodic_value_comes_one_interval_after_the_start() -> None:
    now = [0.0]
    sent: list[tuple[float, str, str]] = []
    tx = TransactionManager(TxSettings(), [(1, 1)], now=lambda: "2026-12-01T10:00:00Z")

    def emit(evse: int, events: list[dict[str, Any]]) -> None:
        for e in events:
            sent.append((now[0], e["eventType"], e["triggerReason"]))
            if e["eventType"] == "Started":
                sampler.transaction_started(evse)

    sampler = MeterSampler(
        build_device_model(SETTINGS), tx, emit, lambda: "t", lambda: None, TaskOwner("t")
    )
    sampler.monotonic = lambda: now[0]

    def run_until(t: float) -> None:  # a reading every second, as the CS sends them
        while now[0] < t:
            now[0] += 1.0
            sampler.reading(1, reading(now[0]))

    emit(1, tx.cp_state(1, "B1"))  # first transaction: started at t=0
    run_until(14)
    emit(1, tx.cp_state(1, "A1"))  # ends at 14
    run_until(17)
    emit(1, tx.cp_state(1, "B1"))  # the next starts at 17: 3 s into the old phase
    run_until(30)
    periodic = [t for t, kind, why in sent if why == "MeterValuePeriodic"]
    assert periodic == [10.0, 27.0]


async def test_a_clock_aligned_ended_sample_has_the_boundary_time_and_a_fresh_reading() -> None:
    """Finding 17: at an AlignedDataCtrlr.TxEndedInterval boundary the sample is stamped
    with the boundary and carries a reading asked for then, not the last one the CS
    reported (up to its meter interval old). Finding 22: the stamp is the boundary
    itself, however late the loop wakes (here 0.3 s), not the clock read after it."""
    boundary = 1_800_000_000.0
    times = iter([boundary - 0.05])  # the station's clock: just before, then after
    clock = lambda: next(times, boundary + 0.3)  # noqa: E731
    tx = TransactionManager(TxSettings(), [(1, 1)], now=lambda: "now")
    dm = build_device_model(SETTINGS)
    dm.assign("AlignedDataCtrlr", "TxEndedInterval", "60")
    dm.assign("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register")
    asked: list[float] = []

    async def read(evse: int) -> dict[str, Any]:
        asked.append(clock())
        return reading(1234.0)  # the meter now

    class Tasks(TaskOwner):
        spawned: list[asyncio.Task[Any]] = []

        def spawn(self, work: Any, what: str) -> asyncio.Task[Any]:
            task = super().spawn(work, what)
            self.spawned.append(task)
            return task

    tasks = Tasks("t")
    sampler = MeterSampler(dm, tx, lambda e, ev: None, lambda: "now", lambda: None, tasks)
    sampler.clock, sampler.read = clock, read
    sampler.timestamp_at = lambda seconds: f"{seconds:.2f}"
    tx.cp_state(1, "B1")  # a transaction
    sampler.reading(1, reading(1000.0))  # the CS's last periodic reading
    aligned = asyncio.create_task(sampler.clock_aligned_forever([1]))
    try:
        async with asyncio.timeout(5):
            while not tasks.spawned:  # the boundary: its sample is being taken
                await asyncio.wait({aligned}, timeout=0.01)
            await tasks.spawned[0]
    finally:
        aligned.cancel()
        await tasks.close()
    [sample] = sampler.take_ended_values(1)
    assert sample["timestamp"] == "1800000000.00"  # the boundary
    assert sample["sampledValue"][0]["value"] == 1234.0
    assert sample["sampledValue"][0]["context"] == "Sample.Clock"
    assert asked == [boundary + 0.3]


async def test_a_clock_aligned_event_keeps_its_place_and_its_reading_takes_the_common_path(
    tmp_path: Path,
) -> None:
    """Finding 23: the MeterValueClock event of a boundary gets its seqNo then, so an
    event of the transaction that comes while its reading is asked for goes out after it
    (seqNo in timestamp order, OCPP E); and the reading asked for goes the way of every
    reading: kept with the transaction, MaxEnergyOnInvalidId checked."""
    wall = [1_800_000_000.0]
    outbox = Outbox(tmp_path / "ocpp.db")
    client = OcppClient(
        Bus(), settings("ws://127.0.0.1:9/ocpp"), outbox, wall_clock=lambda: wall[0]
    )
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def read(evse: int) -> dict[str, Any]:
        return await answer

    client.meter.read = read
    client.dm.assign("TxCtrlr", "MaxEnergyOnInvalidId", "100")
    client._emit(1, client.tx.cp_state(1, "B1"))  # Started, seqNo 0
    client._meter_reading(1, reading(1000.0))
    client._invalid_token.add(1)  # charging goes on up to 100 Wh
    tx_id = client.tx.transaction_id(1)
    boundary = client._timestamp()
    before = set(client._tasks._tasks)
    client.meter._at_boundary(1, {"Interval"}, tx_id, boundary)  # the reading is asked for
    [sample] = client._tasks._tasks - before
    wall[0] += 1.0
    client._emit(1, client.tx.trigger(1))  # meanwhile: an Updated event, 1 s later
    answer.set_result(reading(1200.0))  # the reading: 200 Wh into the transaction
    await sample
    await client._tasks.close()
    writes = []
    while not client._writes.empty():
        writes.append(client._writes.get_nowait())
    events = [p for _, p, _ in writes if isinstance(p, dict)]
    assert [(e["seqNo"], e["triggerReason"]) for e in events] == [
        (0, "CablePluggedIn"),
        (1, "MeterValueClock"),
        (2, "Trigger"),
    ]
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    [clock] = [e for e in events if e["triggerReason"] == "MeterValueClock"]
    assert clock["timestamp"] == clock["meterValue"][0]["timestamp"] == boundary
    assert clock["meterValue"][0]["sampledValue"][0]["value"] == 1200.0  # the fresh one
    # the fresh reading is kept with the transaction, after the events before it
    assert writes[-1] == (1, tx_id, client.tx.snapshot(1))
    assert client.tx.snapshot(1)["energy_wh"] == 1200.0
    assert 1 not in client._invalid_token  # the limit was reached: charging stops
    outbox.close()


async def test_the_ended_values_keep_time_order_when_a_clock_aligned_reading_is_slow() -> None:
    """A TxEndedInterval boundary asks for a reading; a periodic Ended sample taken
    while that reading is on its way is later than the boundary, and goes after it."""
    tx = TransactionManager(TxSettings(), [(1, 1)], now=lambda: "now")
    dm = build_device_model(SETTINGS)
    dm.assign("AlignedDataCtrlr", "TxEndedInterval", "60")
    dm.assign("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register")
    dm.assign("SampledDataCtrlr", "TxEndedInterval", "1")
    dm.assign("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register")
    boundary = "2026-12-01T10:01:00.000Z"
    stamps = iter(["2026-12-01T10:01:01.000Z", "2026-12-01T10:01:02.000Z"])
    now = [0.0]
    tasks = TaskOwner("t")
    sampler = MeterSampler(dm, tx, lambda e, ev: None, lambda: next(stamps), lambda: None, tasks)
    sampler.monotonic = lambda: now[0]
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def read(evse: int) -> dict[str, Any]:
        return await answer

    sampler.read = read
    tx.cp_state(1, "B1")  # a transaction
    tx_id = tx.transaction_id(1)
    assert tx_id is not None
    sampler.reading(1, reading(1000.0))  # t=0: the periodic count starts
    before = set(tasks._tasks)
    sampler._at_boundary(1, {"TxEndedInterval"}, tx_id, boundary)  # the reading is asked for
    [sample] = tasks._tasks - before
    now[0] = 1.5
    sampler.reading(1, reading(1100.0))  # meanwhile a periodic sample, 1 s on
    answer.set_result(reading(1050.0))  # the boundary's reading comes (itself periodic)
    await sample
    await tasks.close()
    values = sampler.take_ended_values(1)
    assert [v["timestamp"] for v in values] == [
        boundary,
        "2026-12-01T10:01:01.000Z",
    ]
    assert [v["sampledValue"][0]["value"] for v in values] == [1050.0, 1100.0]
