"""Sampled and clock-aligned meter values per the device model (OCA J cases)."""

from __future__ import annotations

from typing import Any

from charger.protocols.ocpp.settings import Connector
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, station
from tests.support.ocpp_steps import cs, meter, set_variables, tx_events, wait_ended
from tests.support.polling import eventually


async def configure(csms: Any, *values: tuple[str, str, str]) -> None:
    await set_variables(csms, **{f"{c}__{v}": value for c, v, value in values})


async def test_TC_J_01_J_02_CS_clock_aligned_outside_and_inside_a_transaction() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        meter(st, 100.0)
        await configure(
            state.stations[0],
            ("AlignedDataCtrlr", "Measurands", "Energy.Active.Import.Register,Voltage"),
            ("AlignedDataCtrlr", "Interval", "1"),
        )
        values = await state.wait_for("MeterValues")
        sampled = values["meter_value"][0]["sampled_value"]
        assert [(s["measurand"], s.get("phase")) for s in sampled] == [
            ("Energy.Active.Import.Register", None),
            ("Voltage", "L1"),
            ("Voltage", "L2"),
            ("Voltage", "L3"),
        ]
        assert {s["context"] for s in sampled} == {"Sample.Clock"} and values["evse_id"] == 1
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        clock = await state.wait_for("TransactionEvent", count=2)
        assert clock["trigger_reason"] == "MeterValueClock"
        assert clock["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Clock"


async def test_TC_J_06_CS_with_send_during_idle_clock_aligned_values_wait_for_idle() -> None:
    """EVSE 2 stays idle: its clock-aligned MeterValues show that clock ticks passed while
    EVSE 1 charged, and none of them gave EVSE 1 a value."""
    second = "DE*OCP*E0002"
    connectors = (Connector(EVSE_ID, 1, 1), Connector(second, 2, 1))
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url, connectors=connectors) as st:
        await state.wait_for("StatusNotification", count=2)
        meter(st, 100.0)
        meter(st, 200.0, evse_id=second)
        await configure(
            state.stations[0],
            ("AlignedDataCtrlr", "SendDuringIdle", "true"),
            ("AlignedDataCtrlr", "Interval", "1"),
        )

        def clock_values(evse: int) -> list[dict[str, Any]]:
            return [p for a, p in state.received if a == "MeterValues" and p["evse_id"] == evse]

        await eventually(lambda: len(clock_values(1)) == 1)
        sampled = clock_values(1)[0]["meter_value"][0]["sampled_value"]
        assert [(s["context"], s["value"]) for s in sampled] == [("Sample.Clock", 100.0)]
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        idle_ticks = len(clock_values(2))
        await eventually(lambda: len(clock_values(2)) >= idle_ticks + 2, timeout_s=15)
        assert len(clock_values(1)) == 1
        assert all(p["trigger_reason"] != "MeterValueClock" for p in tx_events(state))
        cs(st, "cp_status", connector_id=1, state="A1")
        await wait_ended(state)
        await eventually(lambda: len(clock_values(1)) == 2)  # idle again


async def test_TC_J_07_J_09_CS_sampled_values_in_transaction_events() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        await configure(
            state.stations[0],
            ("SampledDataCtrlr", "TxStartedMeasurands", "Energy.Active.Import.Register"),
            (
                "SampledDataCtrlr",
                "TxUpdatedMeasurands",
                "Energy.Active.Import.Register,Current.Import",
            ),
            ("SampledDataCtrlr", "TxUpdatedInterval", "1"),
        )
        client: Any = st.client  # type: ignore[attr-defined]
        client.meter.monotonic = lambda: 1000.0
        meter(st, 100.0)
        cs(st, "cp_status", connector_id=1, state="B1")
        started = await state.wait_for("TransactionEvent")
        assert [s["measurand"] for s in started["meter_value"][0]["sampled_value"]] == [
            "Energy.Active.Import.Register"
        ]
        client.meter.monotonic = lambda: 1001.0  # TxUpdatedInterval passed before the next reading
        meter(st, 150.0)
        periodic = await state.wait_for("TransactionEvent", count=2)
        assert periodic["trigger_reason"] == "MeterValuePeriodic"
        sampled = periodic["meter_value"][0]["sampled_value"]
        assert [(s["measurand"], s.get("phase"), s["value"]) for s in sampled] == [
            ("Energy.Active.Import.Register", None, 150.0),
            ("Current.Import", "L1", 16),
            ("Current.Import", "L2", 16),
            ("Current.Import", "L3", 16),
        ]


async def test_TC_J_10_CS_tx_ended_interval_samples_go_into_the_ended_event() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        await configure(
            state.stations[0],
            ("SampledDataCtrlr", "TxEndedInterval", "60"),
            ("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
        )
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        client: Any = st.client  # type: ignore[attr-defined]
        for minute, energy_wh in ((0, 1000.0), (1, 1500.0), (2, 2100.0)):
            client.meter.monotonic = lambda minute=minute: 1000.0 + 60 * minute  # a minute apart
            meter(st, energy_wh)
        cs(st, "cp_status", connector_id=1, state="A1")
        values = (await wait_ended(state))["meter_value"]
        contexts = [v["sampled_value"][0]["context"] for v in values]
        assert contexts == ["Sample.Periodic", "Sample.Periodic", "Transaction.End"]
        assert [v["sampled_value"][0]["value"] for v in values[:2]] == [1500.0, 2100.0]


async def test_TC_J_03_CS_clock_aligned_tx_ended_values_go_into_the_ended_event() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        await configure(
            state.stations[0],
            ("AlignedDataCtrlr", "TxEndedInterval", "900"),
            ("AlignedDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register"),
            ("SampledDataCtrlr", "TxEndedMeasurands", ""),
        )
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        client: Any = st.client  # type: ignore[attr-defined]
        # readings at 10:14, 10:16 (past the 10:15 boundary) and 10:20 (same quarter)
        for wall_s, energy_wh in ((36840.0, 1000.0), (36960.0, 1200.0), (37200.0, 1500.0)):
            client.meter.wall_clock = lambda wall_s=wall_s: wall_s
            meter(st, energy_wh)
        cs(st, "cp_status", connector_id=1, state="A1")
        ended = await state.wait_for("TransactionEvent", count=2)
        assert ended["event_type"] == "Ended"
        values = ended["meter_value"]
        assert [v["sampled_value"][0]["context"] for v in values] == ["Sample.Clock"]
        assert values[0]["sampled_value"][0]["value"] == 1200.0
