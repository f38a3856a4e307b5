"""A DC EVSE in the in-process station: the bus messages the SECC sends (cable_check,
power_electronics_setpoint, cs_contactor_status), the CS controller, and the simulated
board's DC physics behind it (docs/iec61851.md, "DC EVSE: the bus sequence").

The bus validates every message against the schemas. The simulated car does SLAC but no
ISO 15118 yet: the tests play the SECC and move the car's own DC contactor by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charger.bus.api import Message
from charger.cs.dc import PRECHARGE_TIMEOUT_S, WELD_CHECK_S
from charger.hal.interfaces import DcReading
from tests.support.station import (
    EVSE_ID,
    Station,
    dc_station_config,
    running_station,
    station_config,
)

EV_LIMITS = {"maximum_voltage": 450.0}  # the car of dc_station_config: battery 392 V


async def setpoint(st: Station, **data: Any) -> str:
    reply = await st.request(
        "power_electronics_setpoint", {"evse_id": EVSE_ID, "ev_limits": EV_LIMITS, **data}
    )
    assert reply.data["evse_id"] == EVSE_ID
    status: str = reply.data["status"]
    return status


async def cable_check(st: Station, action: str) -> dict[str, Any]:
    reply = await st.request("cable_check", {"evse_id": EVSE_ID, "cable_check_action": action})
    return dict(reply.data)


async def contactor(st: Station) -> str:
    reply = await st.request("cs_contactor_status", {"evse_id": EVSE_ID})
    status: str = reply.data["status"]
    return status


async def closed_when_asked(st: Station) -> bool:
    """Asks for the contactors as the SECC does, again while the answer is `opened`
    (the CS closes once its own conditions hold, e.g. the RCD self-test passed)."""
    for _ in range(200):
        if await contactor(st) == "closed":
            return True
        await asyncio.sleep(0.01)
    return False


async def wait_dc(
    st: Station, predicate: Callable[[dict[str, Any]], bool], after: int = 0
) -> dict[str, Any]:
    """The first cs_status_and_limits (update or response) whose EVSE entry matches."""

    def matches(m: Message) -> bool:
        return (
            m.name == "cs_status_and_limits"
            and m.type != "request"
            and predicate(m.data["evses"][0])
        )

    message = await st.wait_for(matches, after=after)
    entry: dict[str, Any] = message.data["evses"][0]
    return entry


async def notified(st: Station, code: str, after: int = 0) -> Message:
    return await st.wait_for(
        lambda m: m.name == "notify_event" and m.data.get("tech_code") == code, after=after
    )


def codes(st: Station, after: int = 0) -> list[str]:
    return [m.data["tech_code"] for m in st.messages[after:] if m.name == "notify_event"]


async def cable_checked(st: Station) -> None:
    """Plug-in to a passed cable check: the CableCheck phase of an ISO 15118 session."""
    st.ev.plug_in()
    await st.wait_state("C2")  # SLAC's 5 %, and the CCS car closes S2
    assert await setpoint(st) == "accepted"  # the EV's limits (ChargeParameterDiscovery)
    assert await closed_when_asked(st)
    mark = len(st.messages)
    assert (await cable_check(st, "start"))["cable_check_status"] == "ongoing"
    await wait_dc(st, lambda e: e["status_code"] == "evse_ready", after=mark)
    assert await cable_check(st, "status") == {
        "evse_id": EVSE_ID,
        "cable_check_status": "finished",
        "isolation_level": "valid",
    }


async def precharged(st: Station, voltage_v: float = 392.0) -> None:
    assert await setpoint(st, is_precharge=True, dc={"voltage": voltage_v}) == "accepted"
    await wait_dc(st, lambda e: abs(e["dc"]["present_voltage"] - voltage_v) <= 20)


async def charging(st: Station, current_a: float = 100.0) -> None:
    await cable_checked(st)
    await precharged(st)
    st.ev.set_ev_contactor(True)  # PowerDeliveryReq(start): the car closes its contactor
    assert await closed_when_asked(st)
    assert await setpoint(st, dc={"voltage": 430.0, "charge_current": current_a}) == "accepted"
    await wait_dc(st, lambda e: e["dc"]["present_current"] >= current_a - 1)


def record_cut_off(st: Station) -> list[str]:
    """What the hardware is told, in order, and what the controller had done by the time
    the power module's next reading callback after its own ran (same loop iteration)."""
    sim, module = st.board.evse(1), st.board.evses[1].power_module
    assert module is not None
    calls: list[str] = []
    set_closed, disable = sim.set_closed, module.disable

    def recording_set_closed(closed: bool) -> None:
        calls.append(f"contactor {'close' if closed else 'open'}")
        set_closed(closed)

    def recording_disable() -> None:
        calls.append("module off")
        disable()

    def after_controller(reading: DcReading) -> None:
        calls.append(
            f"reading {reading.voltage_v:g} V, contactor commanded {sim.out.contactor_cmd}"
        )

    sim.set_closed = recording_set_closed  # type: ignore[method-assign]
    module.disable = recording_disable  # type: ignore[method-assign]
    module.on_reading(after_controller)  # registered after the controller's callback
    return calls


# ---------------------------------------------------------------------- the session


async def test_whole_dc_session_on_the_bus(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        sim = st.board.evse(1)
        st.ev.plug_in()
        await st.wait_state("C2")
        auth = await st.wait_for(lambda m: m.name == "authorization" and m.type == "response")
        assert auth.data["status"] == "accepted"
        assert not sim.contactor_closed  # C2 and authorized, but the SECC has not asked
        assert await setpoint(st) == "accepted"

        # CableCheck: the SECC asks for the contactors, then for the check
        assert await closed_when_asked(st) and sim.contactor_closed
        mark = len(st.messages)
        assert await cable_check(st, "start") == {
            "evse_id": EVSE_ID,
            "cable_check_status": "ongoing",
        }
        await wait_dc(st, lambda e: e["status_code"] == "evse_isolation_monitoring_active")
        test = await wait_dc(st, lambda e: e["dc"]["present_voltage"] >= 490, after=mark)
        assert test["dc"]["present_current"] <= 2.0  # 500 V (IEC 61851-23 CC.1), at 2 A
        ready = await wait_dc(st, lambda e: e["status_code"] == "evse_ready", after=mark)
        assert ready["dc"]["isolation_status"] == "valid"
        assert ready["dc"]["present_voltage"] < 60  # discharged before "finished"
        assert (await cable_check(st, "start"))["isolation_level"] == "valid"  # no rerun
        assert sim.dc is not None and not sim.dc.enabled

        # PreCharge to the battery's voltage at <= 2 A (asked for more: clamped, accepted)
        precharge = {"voltage": 392.0, "charge_current": 10.0}
        assert await setpoint(st, is_precharge=True, dc=precharge) == "accepted"
        pre = await wait_dc(st, lambda e: abs(e["dc"]["present_voltage"] - 392) <= 20)
        assert pre["dc"]["present_current"] == 0.0 and sim.dc.limit_a == 2.0

        # PowerDelivery(start), CurrentDemand: the current follows the setpoints
        sim.set_ev_contactor(True)
        assert await closed_when_asked(st)
        mark = len(st.messages)
        assert await setpoint(st, dc={"voltage": 430.0, "charge_current": 100.0}) == "accepted"
        at_100 = await wait_dc(st, lambda e: e["dc"]["present_current"] >= 99, after=mark)
        assert 395 < at_100["dc"]["present_voltage"] < 430  # OCV + R x I, current-limited
        meter = await st.wait_for(
            lambda m: m.name == "meter_values" and m.data.get("dc_current", 0) >= 99, after=mark
        )
        assert meter.data["dc_voltage"] > 390 and meter.data["total_active_energy_imported"] > 0
        mark = len(st.messages)
        assert await setpoint(st, dc={"voltage": 430.0, "charge_current": 40.0}) == "accepted"
        at_40 = await wait_dc(st, lambda e: e["dc"]["present_current"] <= 41, after=mark)
        assert at_40["dc"]["present_current"] >= 39
        # more than the EVSE may give: clamped to 50 kW / 430 V = 116.3 A, still accepted
        assert await setpoint(st, dc={"voltage": 430.0, "charge_current": 300.0}) == "accepted"
        await wait_dc(st, lambda e: e["dc"]["present_current"] >= 115)
        assert sim.dc.limit_a < 116.3 and sim.dc.current_a < 116.3

        # PowerDelivery(stop): current to 0, the car opens its contactor, output off
        mark = len(st.messages)
        assert await setpoint(st, dc={"voltage": 430.0, "charge_current": 0.0}) == "accepted"
        await wait_dc(st, lambda e: e["dc"]["present_current"] == 0.0, after=mark)
        sim.set_ev_contactor(False)
        assert await setpoint(st, dc={"voltage": 0.0}) == "accepted"
        # WeldingDetection (the car's): the SECC watches the output fall below 60 V
        await wait_dc(st, lambda e: e["dc"]["present_voltage"] < 60, after=mark)
        assert sim.contactor_closed  # the EVSE opens once the car leaves C

        # SessionStop: the car goes to B, the contactors open, the output stays empty
        st.ev.request_charging(False)
        await st.wait_state("B2", after=mark)
        opened = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened",
            after=mark,
        )
        assert opened.type == "update" and not sim.contactor_closed
        st.clock.advance(WELD_CHECK_S)  # the CS's own welding check has nothing to find
        assert await contactor(st) == "opened"
        limits = await st.request("cs_status_and_limits", {})
        assert limits.data["evses"][0]["status_code"] == "evse_ready"
        assert codes(st) == []


async def test_dc_station_describes_itself(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        limits = await st.request("cs_status_and_limits", {})
        assert limits.data["evses"] == [
            {
                "evse_id": EVSE_ID,
                "status_code": "evse_ready",
                "dc": {
                    "present_voltage": 0.0,
                    "present_current": 0.0,
                    "max_current": 125.0,
                    "min_current": 0.0,
                    "max_voltage": 500.0,
                    "min_voltage": 150.0,
                    "max_power": 50000.0,
                    "peak_current_ripple": 0.5,
                    "current_reg_tolerance": 1.0,
                    "isolation_status": "invalid",
                },
            }
        ]
        params = await st.request("cs_parameters", {})
        assert params.data["parameters"][0]["connectors"] == [
            {"id": 1, "services": {"dc": {"connector_type": "DC_extended"}}}
        ]
        model = await st.request("device_model", {})
        assert model.data["evses"][0]["power_kw"] == 50.0
        assert model.data["evses"][0]["supply_phases"] == 0
        assert model.data["evses"][0]["connectors"][0]["connector_type"] == "cCCS2"
        meter = await st.request(
            "meter_values", {"evse_id": EVSE_ID, "timestamp": "2026-01-01T00:00:00Z"}
        )
        assert meter.data["dc_voltage"] == 0.0 and meter.data["dc_current"] == 0.0
        basic = await st.request(
            "cp_pwm",
            {
                "evse_id": EVSE_ID,
                "hlc": False,
                "current": 16.0,
                "error_state": False,
                "fault_state": False,
            },
        )
        assert basic.data["status"] == "invalid" and "DC EVSE" in basic.data["info"]


async def test_an_ac_evse_refuses_the_dc_requests(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        assert await cable_check(st, "start") == {
            "evse_id": EVSE_ID,
            "cable_check_status": "finished",
            "isolation_level": "invalid",
        }
        assert await setpoint(st, dc={"voltage": 400.0}) == "rejected"


async def test_setpoints_before_a_passed_cable_check_are_rejected(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        assert await setpoint(st, is_precharge=True, dc={"voltage": 392.0}) == "rejected"
        assert await closed_when_asked(st)
        assert await setpoint(st, is_precharge=True, dc={"voltage": 392.0}) == "rejected"
        sim = st.board.evse(1)
        assert sim.dc is not None and not sim.dc.enabled


# ---------------------------------------------------------------------- protection


async def test_overvoltage_cuts_off_in_the_reading_that_shows_it(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        await cable_checked(st)
        await precharged(st)
        calls = record_cut_off(st)
        mark = len(st.messages)
        st.ev.set_fault("power_module_overvoltage", True)  # regulation runs to 650 V
        note = await notified(st, "dc_overvoltage", after=mark)
        assert note.data["evse_id"] == EVSE_ID
        assert "limit 450 V" in note.data["tech_info"]  # the EV's maximum
        first_over = next(c for c in calls if c.startswith("reading") and "650" in c)
        assert first_over == "reading 650 V, contactor commanded False"
        assert calls.index("contactor open") < calls.index("module off") < calls.index(first_over)
        opened = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened",
            after=mark,
        )
        assert st.messages.index(note) < st.messages.index(opened)
        await wait_dc(st, lambda e: e["status_code"] == "evse_emergency_shutdown", after=mark)
        assert await setpoint(st, dc={"voltage": 400.0, "charge_current": 10.0}) == "rejected"
        assert await contactor(st) == "opened"  # asking again does not close it
        st.ev.set_fault("power_module_overvoltage", False)
        st.ev.unplug()  # the fault lasts until the car leaves
        await wait_dc(st, lambda e: e["status_code"] == "evse_ready", after=mark)


async def test_isolation_fault_fails_the_cable_check(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        st.ev.set_fault("isolation_fault", True)  # 50 ohm/V of 500 V: 25 kohm
        st.ev.plug_in()
        await st.wait_state("C2")
        assert await setpoint(st) == "accepted"
        assert await closed_when_asked(st)
        mark = len(st.messages)
        assert (await cable_check(st, "start"))["cable_check_status"] == "ongoing"
        note = await notified(st, "isolation_fault", after=mark)
        assert "25 kohm" in note.data["tech_info"]
        assert await cable_check(st, "status") == {
            "evse_id": EVSE_ID,
            "cable_check_status": "finished",
            "isolation_level": "fault",
        }
        entry = await wait_dc(st, lambda e: e["status_code"] == "evse_emergency_shutdown")
        assert entry["dc"]["isolation_status"] == "fault"
        assert await contactor(st) == "opened" and not st.ev.contactor_closed
        assert await setpoint(st, is_precharge=True, dc={"voltage": 392.0}) == "rejected"


async def test_isolation_warning_lets_the_session_go_on(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        st.ev.set_fault("isolation_warning", True)  # 250 ohm/V
        st.ev.plug_in()
        await st.wait_state("C2")
        assert await closed_when_asked(st)
        await cable_check(st, "start")
        await wait_dc(
            st,
            lambda e: e["status_code"] == "evse_ready" and e["dc"]["isolation_status"] == "warning",
        )
        assert (await cable_check(st, "status"))["isolation_level"] == "warning"
        assert await setpoint(st, is_precharge=True, dc={"voltage": 392.0}) == "accepted"


async def test_isolation_fault_while_charging_cuts_off(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        await charging(st)
        mark = len(st.messages)
        st.ev.set_fault("isolation_fault", True)  # the IMD keeps measuring while closed
        await notified(st, "isolation_fault", after=mark)
        await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened",
            after=mark,
        )
        await wait_dc(st, lambda e: e["dc"]["present_current"] == 0.0, after=mark)
        sim = st.board.evse(1)
        assert sim.dc is not None and not sim.dc.enabled


async def test_precharge_that_does_not_reach_the_target_times_out(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        await cable_checked(st)
        st.ev.set_ev_contactor(True)  # the car closed too early: its battery holds 392 V
        assert await setpoint(st, is_precharge=True, dc={"voltage": 450.0}) == "accepted"
        await wait_dc(st, lambda e: e["dc"]["present_voltage"] >= 390)
        mark = len(st.messages)
        st.clock.advance(PRECHARGE_TIMEOUT_S)
        note = await notified(st, "precharge_timeout", after=mark)
        assert "not within 20 V of 450 V" in note.data["tech_info"]
        await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened",
            after=mark,
        )
        await wait_dc(st, lambda e: e["status_code"] == "evse_shutdown", after=mark)


async def test_welded_dc_contactor_is_found_by_the_voltage_after_opening(tmp_path: Path) -> None:
    async with running_station(dc_station_config(tmp_path)) as st:
        await charging(st)
        sim = st.board.evse(1)
        sim.set_fault("contactor_welded", True)
        assert await setpoint(st, dc={"voltage": 430.0, "charge_current": 0.0}) == "accepted"
        await wait_dc(st, lambda e: e["dc"]["present_current"] == 0.0)
        mark = len(st.messages)
        st.ev.request_charging(False)  # to B, but the car's contactor is still closed
        await st.wait_state("B2", after=mark)
        assert sim.out.contactor_cmd is False and sim.contactor_closed  # welded
        assert codes(st, after=mark) == []
        st.clock.advance(WELD_CHECK_S)
        note = await notified(st, "dc_contactor_welded", after=mark)
        assert "output still at 392" in note.data["tech_info"]
        await st.wait_state("F", after=mark)
        error = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "error", after=mark
        )
        assert "dc_contactor_welded" in error.data["info"]
        await wait_dc(st, lambda e: e["status_code"] == "evse_malfunction", after=mark)
        assert sim.lock_locked  # the battery is on the pins: the connector stays locked
        unlock = await st.request(
            "cs_connector", {"evse_id": EVSE_ID, "connector_id": 1, "action": "unlock"}
        )
        assert unlock.data["status"] == "error" and "contactor" in unlock.data["info"]
        sim.set_ev_contactor(False)  # the car opens its side: the output empties
        cleared = await st.wait_for(
            lambda m: (
                m.name == "notify_event"
                and m.data["tech_code"] == "dc_contactor_welded"
                and m.data["tech_info"] == "cleared"
            ),
            after=mark,
        )
        assert cleared is not None
