"""OCA Part 6, block J (MeterValues), Core cases, on the whole firmware (`rig.octt`).

One test per case, its steps in order as comments. The configured intervals are whole
minutes or half minutes of the rig's virtual clock, so the intervals between timestamps
and the alignment to the clock can be checked exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from charger.cs.settings import StationConfig
from rig.octt import Octt

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import"
DURATION_S = 150  # <Configured transaction duration>


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def measurands(sampled: list[dict[str, Any]]) -> list[str]:
    """The measurands of sampled values; an omitted one is the energy register."""
    return sorted(s.get("measurand", "Energy.Active.Import.Register") for s in sampled)


def intervals(stamps: list[str]) -> list[float]:
    """Seconds between timestamps, to 0.1 s (the station's clock is the TS's, set from
    its currentTime to the millisecond at each Heartbeat)."""
    return [round(b - a, 1) for a, b in itertools.pairwise(seconds(s) for s in stamps)]


def on_the_minute(stamp: str) -> bool:
    return min(seconds(stamp) % 60, 60 - seconds(stamp) % 60) < 0.1


async def test_TC_J_01_CS_clock_aligned_meter_values_no_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: AlignedDataCtrlr.Interval <configured> (60 s), with two measurands
        await octt.set_variables(
            AlignedDataCtrlr__Interval="60", AlignedDataCtrlr__Measurands=MEASURANDS
        )
        # 1-2. MeterValues: the TS ends after three of them
        while len(octt.sent("MeterValues")) < 3:
            await octt.expect("MeterValues", within_s=61, after=len(octt.ts.log))
        values = octt.sent("MeterValues")[:3]
        for message in values:
            [reading] = message["meterValue"]
            assert reading["sampledValue"][0]["context"] == "Sample.Clock"
            assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))
        # post: the timestamps are the configured interval apart, on the clock's minutes
        stamps = [m["meterValue"][0]["timestamp"] for m in values]
        assert intervals(stamps) == [60, 60]
        assert all(on_the_minute(s) for s in stamps)


async def test_TC_J_02_CS_clock_aligned_meter_values_transaction_ongoing(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: Interval 60 s, SendDuringIdle false; State is EnergyTransferStarted
        await octt.set_variables(
            AlignedDataCtrlr__Interval="60",
            AlignedDataCtrlr__Measurands=MEASURANDS,
            AlignedDataCtrlr__SendDuringIdle="false",
        )
        await octt.charging()
        octt.mark()
        # 3. TransactionEvents MeterValueClock for the EVSE in the transaction, until the
        # transaction duration is reached
        await octt.advance(DURATION_S)
        clock = octt.sent("TransactionEvent", triggerReason="MeterValueClock")
        assert len(clock) >= DURATION_S // 60 - 1
        for event in clock:
            [reading] = event["meterValue"]
            assert reading["sampledValue"][0]["context"] == "Sample.Clock"
            assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))
        stamps = [e["meterValue"][0]["timestamp"] for e in clock]
        assert set(intervals(stamps)) == {60}
        assert all(on_the_minute(s) for s in stamps)
        # (MeterValues would be for idle EVSEs or the main meter: this station has none)
        assert octt.sent("MeterValues") == []


async def at_the_default_meter_interval(octt: Octt) -> None:
    """The firmware again, booted, at the station's own meter interval ([station]
    meter_interval_s, 10 s) instead of the rig's 1 s."""
    default = StationConfig.__dataclass_fields__["meter_interval_s"].default
    octt.config = replace(
        octt.config, station=replace(octt.config.station, meter_interval_s=default)
    )
    await octt.power_cycle()
    await octt.booted()


async def test_TC_J_03_CS_clock_aligned_meter_values_event_type_ended(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # the station's own meter interval ([station] meter_interval_s, 10 s), not the
        # rig's 1 s: the samples must not depend on when the CS last reported a reading
        await at_the_default_meter_interval(octt)
        # Before: AlignedDataCtrlr.TxEndedInterval 60 s (its TxEndedMeasurands: the energy
        # register), SampledDataCtrlr.TxEndedMeasurands empty, SendDuringIdle false;
        # State is EnergyTransferStarted
        await octt.set_variables(
            AlignedDataCtrlr__TxEndedInterval="60",
            AlignedDataCtrlr__TxEndedMeasurands=MEASURANDS,
            SampledDataCtrlr__TxEndedMeasurands="",
            AlignedDataCtrlr__SendDuringIdle="false",
        )
        await octt.charging()
        # 1. after the transaction duration: ParkingBayUnoccupied (stop, unplug)
        await octt.advance(DURATION_S)
        _, ended = await octt.stop_authorized()
        await octt.ev_disconnected()
        # post: the Ended event has meter values, one per clock-aligned moment, the
        # interval apart, context Sample.Clock, the configured measurands
        clock = [
            m for m in ended["meterValue"] if m["sampledValue"][0]["context"] == "Sample.Clock"
        ]
        assert len(clock) >= DURATION_S // 60 - 1
        # each sample carries the boundary's time (finding 17: not that of the CS's next
        # reading, up to its meter interval later), with a reading taken then
        stamps = [m["timestamp"] for m in clock]
        assert all(on_the_minute(s) for s in stamps), stamps
        assert set(intervals(stamps)) == {60}
        energy = [
            next(
                v["value"]
                for v in m["sampledValue"]
                if v.get("measurand", "Energy.Active.Import.Register")
                == "Energy.Active.Import.Register"
            )
            for m in clock
        ]
        assert energy == sorted(set(energy)), energy  # charging: each reading a new one
        for reading in clock:
            assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))


async def test_TC_J_06_CS_clock_aligned_no_meter_values_during_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: Interval 60 s, SendDuringIdle true
        await octt.set_variables(
            AlignedDataCtrlr__Interval="60",
            AlignedDataCtrlr__Measurands=MEASURANDS,
            AlignedDataCtrlr__SendDuringIdle="true",
        )
        # 1-2. MeterValues while idle, Sample.Clock
        idle = await octt.expect("MeterValues", within_s=61)
        assert idle["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
        # 3. Execute Reusable State EnergyTransferStarted
        await octt.charging()
        # 4-5. during the transaction: no clock-aligned values at all
        octt.mark()
        await octt.advance(DURATION_S)
        await octt.nothing("MeterValues")
        await octt.nothing("TransactionEvent", triggerReason="MeterValueClock")
        # 6. ParkingBayUnoccupied (stop, unplug); 7-8. MeterValues again once idle
        await octt.stop_authorized()
        await octt.ev_disconnected()
        again = await octt.expect("MeterValues", within_s=61)
        assert again["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"


async def test_TC_J_07_CS_sampled_meter_values_started_evse_known(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint contains EVConnected; TxStartedMeasurands two measurands
        await octt.set_variables(
            TxCtrlr__TxStartPoint="EVConnected,Authorized",
            SampledDataCtrlr__TxStartedMeasurands=MEASURANDS,
        )
        await octt.advance(2)  # the meter has been read
        # 1. EVConnectedPreSession: the Started event has the meter values
        started = await octt.ev_connected_pre_session()
        assert started["eventType"] == "Started"
        [reading] = started["meterValue"]
        assert reading["sampledValue"][0]["context"] == "Transaction.Begin"
        assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))
        # 2. Execute Reusable State EnergyTransferStarted
        await octt.authorized()
        await octt.energy_transfer_started()


async def test_TC_J_09_CS_sampled_meter_values_event_type_updated(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxUpdatedInterval 30 s, two measurands; State is EnergyTransferStarted
        await octt.set_variables(
            SampledDataCtrlr__TxUpdatedInterval="30",
            SampledDataCtrlr__TxUpdatedMeasurands=MEASURANDS,
        )
        await octt.charging()
        octt.mark()
        # 1. MeterValuePeriodic events, Sample.Periodic, until the transaction duration
        await octt.advance(DURATION_S)
        periodic = octt.sent("TransactionEvent", triggerReason="MeterValuePeriodic")
        assert len(periodic) >= DURATION_S // 30 - 1
        for event in periodic:
            [reading] = event["meterValue"]
            assert reading["sampledValue"][0]["context"] == "Sample.Periodic"
            assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))
        # post: the timestamps the configured interval apart (to the meter's 1 s reading)
        gaps = intervals([e["meterValue"][0]["timestamp"] for e in periodic])
        assert all(abs(gap - 30) <= 1 for gap in gaps), gaps


async def test_TC_J_10_CS_sampled_meter_values_event_type_ended(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: SampledDataCtrlr.TxEndedInterval 30 s, AlignedDataCtrlr.TxEndedMeasurands
        # empty; State is EnergyTransferStarted
        await octt.set_variables(
            SampledDataCtrlr__TxEndedInterval="30",
            SampledDataCtrlr__TxEndedMeasurands=MEASURANDS,
            AlignedDataCtrlr__TxEndedMeasurands="",
        )
        await octt.charging()
        # 1. after the transaction duration: ParkingBayUnoccupied (stop, unplug)
        await octt.advance(DURATION_S)
        _, ended = await octt.stop_authorized()
        await octt.ev_disconnected()
        # post: Sample.Periodic values the interval apart, and one Transaction.End
        contexts = [m["sampledValue"][0]["context"] for m in ended["meterValue"]]
        assert contexts.count("Transaction.End") == 1
        periodic = [
            m for m in ended["meterValue"] if m["sampledValue"][0]["context"] == "Sample.Periodic"
        ]
        assert len(periodic) >= DURATION_S // 30 - 1
        gaps = intervals([m["timestamp"] for m in periodic])
        assert all(abs(gap - 30) <= 1 for gap in gaps), gaps
        for reading in periodic:
            assert measurands(reading["sampledValue"]) == sorted(MEASURANDS.split(","))


async def test_clock_aligned_values_follow_the_virtual_clock(rig: Callable[..., Any]) -> None:
    """The rig's own check: the station's wall clock is the loop's, moved on with it."""
    async with rig() as octt:
        before = octt.loop.wall()
        await octt.advance(600)
        assert round(octt.loop.wall() - before) == 600
        assert isinstance(octt, Octt)


async def clock_aligned_every_minute(
    octt: Octt, in_transaction: bool
) -> tuple[str, dict[str, str]]:
    """AlignedDataCtrlr.Interval 60 s of the energy register, none in a transaction
    (SendDuringIdle false), charging if asked: the message and fields they come as."""
    await octt.set_variables(
        AlignedDataCtrlr__Interval="60",
        AlignedDataCtrlr__Measurands="Energy.Active.Import.Register",
        AlignedDataCtrlr__SendDuringIdle="false",
    )
    if in_transaction:
        await octt.charging()
        return "TransactionEvent", {"triggerReason": "MeterValueClock"}
    return "MeterValues", {}


@pytest.mark.parametrize("in_transaction", [False, True], ids=["idle", "transaction"])
async def test_clock_aligned_values_are_read_at_the_boundary(
    rig: Callable[..., Any], in_transaction: bool
) -> None:
    """Finding 20: the MeterValues of an idle EVSE and the MeterValueClock events of a
    transaction (AlignedDataCtrlr.Interval) carry a reading taken at the boundary, not
    the CS's last one, up to its meter interval ([station] meter_interval_s, 10 s) old.
    Just before each boundary the simulated meter's register jumps by 1 kWh, more than a
    meter interval of charging: a value from before the boundary has no jump."""
    async with rig() as octt:
        await at_the_default_meter_interval(octt)
        action, fields = await clock_aligned_every_minute(octt, in_transaction)
        for _ in range(2):
            wall = octt.loop.wall()
            boundary = (math.floor(wall / 60) + 1) * 60
            if boundary - wall < 1:
                boundary += 60
            await octt.advance(boundary - 0.05 - wall)
            meter = octt.sim()
            meter.energy_import_wh += 1000
            jumped = meter.energy_import_wh
            octt.mark()
            message = await octt.expect(action, within_s=1, **fields)
            [reading] = message["meterValue"]
            assert seconds(reading["timestamp"]) == pytest.approx(boundary, abs=0.1)
            [sample] = reading["sampledValue"]
            assert sample["context"] == "Sample.Clock"
            # the register at the boundary: the jump, plus at most what was charged
            # between the jump and the boundary
            assert round(jumped, 3) <= sample["value"] <= round(meter.energy_import_wh, 3)
            assert (octt.sim().contactor_closed) is in_transaction


@pytest.mark.parametrize("in_transaction", [False, True], ids=["idle", "transaction"])
async def test_clock_aligned_values_fall_on_the_csms_clock(
    rig: Callable[..., Any], in_transaction: bool
) -> None:
    """Finding 22: the CSMS's clock is 7.3 s ahead of the station's machine clock (its
    BootNotification and Heartbeat answers tell it). The clock-aligned values come at
    the boundaries of the station's time, the CSMS's, stamped with the boundary itself:
    on the CSMS's minute, sent when the CSMS's clock is there (before: the machine
    clock's minutes, stamped with the time after the wait, 7.3 s past the minute)."""
    async with rig(boot=False) as octt:
        loop = octt.loop
        octt.ts.wall_clock = lambda: loop.wall() + 7.3
        await octt.booted()
        action, fields = await clock_aligned_every_minute(octt, in_transaction)
        for _ in range(2):
            octt.mark()
            message = await octt.expect(action, within_s=61, **fields)
            csms_now = octt.ts.wall_clock()
            [reading] = message["meterValue"]
            stamp = reading["timestamp"]
            assert stamp.endswith(":00.000Z"), stamp  # the CSMS's minute, exactly
            assert 0 <= csms_now - seconds(stamp) < 1  # sent at that boundary
            if in_transaction:
                assert message["timestamp"] == stamp
