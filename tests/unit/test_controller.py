"""The CS controller on the simulated board: Josev API traffic for sessions and faults.

The bus validates every message the station sends against the schemas.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from charger.cs.iec61851 import EV_FOLLOW_DUTY_S, FEEDBACK_TIMEOUT_S
from tests.support.station import EVSE_ID, running_station, station_config


def cp_states(station: object, after: int = 0) -> list[str]:
    return [
        m.data["state"]
        for m in station.messages[after:]  # type: ignore[attr-defined]
        if m.name == "cp_status"
    ]


async def test_basic_ac_session_in_free_mode(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        auth = await st.wait_for(lambda m: m.name == "authorization" and m.type == "request")
        assert dict(auth.data) == {"evse_id": EVSE_ID, "token_type": "no_authorization"}
        first = await st.wait_for(lambda m: m.name == "cs_contactor_status")
        assert first.data["status"] == "opened"  # reported at start-up
        closed = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "closed"
        )
        assert closed.topic == "cs/josev"
        meter = await st.wait_for(
            lambda m: m.name == "meter_values" and m.data["total_active_energy_imported"] > 0
        )
        assert meter.data["current"] == {"l1": 16.0, "l2": 16.0, "l3": 16.0}
        mark = len(st.messages)
        st.ev.request_charging(False)
        await st.wait_state("B2", after=mark)
        opened = await st.wait_for(lambda m: m.name == "cs_contactor_status", after=mark)
        assert opened.data["status"] == "opened"
        st.ev.unplug()
        await st.wait_state("A1", after=mark)
        assert cp_states(st) == ["B1", "B2", "C2", "B2", "A1"]
        # the contactor closed only after C2 was reached, and opened before B2 was reported
        names = st.names()
        assert names.index("authorization.response") < st.messages.index(closed)


async def test_allow_list_token_starts_and_the_same_token_stops(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, '[authorization]\nmode = "allow_list"\ntokens = ["CAFE01"]')
    async with running_station(cfg) as st:
        st.ev.plug_in()
        await st.wait_state("B1")
        st.ev.present_token("BAD999")
        reply = await st.wait_for(lambda m: m.name == "authorization" and m.type == "response")
        assert reply.data["status"] == "rejected"
        assert st.board.evse(1).out.pwm_duty is None
        mark = len(st.messages)
        st.ev.present_token("CAFE01")
        await st.wait_state("C2", after=mark)
        mark = len(st.messages)
        st.ev.present_token("CAFE01")
        stop = await st.wait_for(lambda m: m.name == "stop_charging", after=mark)
        assert stop.type == "request" and stop.data["evse_id"] == EVSE_ID
        await st.wait_state("B1", after=mark)  # stopped: PWM off
        opened = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened", after=mark
        )
        assert opened is not None and not st.board.evse(1).contactor_closed


async def test_station_requests(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        limits = await st.request("cs_status_and_limits", {})
        assert limits.data == {
            "evses": [
                {
                    "evse_id": EVSE_ID,
                    "status_code": "evse_ready",
                    "ac": {
                        "max_current": {"l1": 32.0, "l2": 32.0, "l3": 32.0},
                        "nominal_voltage": 230.0,
                        "rcd_error": False,
                    },
                }
            ]
        }
        params = await st.request("cs_parameters", {})
        assert params.data["number_of_evses"] == 1
        assert params.data["parameters"][0]["connectors"][0]["services"]["ac"] == {
            "connector_type": "AC_three_phase_core",
            "nominal_voltage": 230.0,
        }
        model = await st.request("device_model", {})
        assert model.data["evses"][0] == {
            "ocpp_id": 1,
            "iso15118_id": EVSE_ID,
            "power_kw": 22.1,
            "supply_phases": 3,
            "connectors": [{"id": 1, "connector_type": "cType2"}],
        }
        meter = await st.request("meter_values", {"timestamp": "2026-01-01T00:00:00Z"})
        assert "evse_id" not in meter.data and meter.data["frequency"] == 50.0
        contactor = await st.request("cs_contactor_status", {"evse_id": EVSE_ID})
        assert contactor.data == {"evse_id": EVSE_ID, "status": "opened"}


async def test_cp_pwm_requests(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        base = {"evse_id": EVSE_ID, "error_state": False, "fault_state": False}
        bad = await st.request("cp_pwm", {**base, "hlc": False, "current": 5.0})
        assert bad.data["status"] == "invalid" and "5 A cannot be encoded" in bad.data["info"]
        unknown = await st.request("cp_pwm", {**base, "evse_id": "XX", "hlc": False, "current": 6})
        assert dict(unknown.data) == {
            "evse_id": "XX",
            "status": "invalid",
            "info": "unknown evse_id 'XX'",
        }
        ok = await st.request("cp_pwm", {**base, "hlc": False, "current": 10.0})
        assert ok.data["status"] == "valid"
        assert st.board.evse(1).out.pwm_duty == pytest.approx(16.67)
        mark = len(st.messages)
        await st.request("cp_pwm", {**base, "hlc": False, "current": 0.0, "error_state": True})
        await st.wait_state("E", after=mark)
        assert not st.board.evse(1).contactor_closed


async def test_connector_lock_requests(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        req = {"evse_id": EVSE_ID, "connector_id": 1}
        refused = await st.request("cs_connector", {**req, "action": "unlock"})
        assert refused.data["status"] == "error" and "contactor is closed" in refused.data["info"]
        status = await st.request("cs_connector", {**req, "action": "status"})
        assert status.data["status"] == "locked"
        mark = len(st.messages)
        st.ev.request_charging(False)
        await st.wait_state("B2", after=mark)
        unlocked = await st.request("cs_connector", {**req, "action": "unlock"})
        assert unlocked.data["status"] == "unlocked" and not st.board.evse(1).lock_locked


async def test_change_availability_is_persisted_before_the_answer(tmp_path: Path) -> None:
    cfg = station_config(tmp_path)
    async with running_station(cfg) as st:
        reply = await st.request("change_availability", {"operational_status": "inoperative"})
        assert reply.data["status"] == "accepted"
        assert await st.store.get("available/1") is False
        limits = await st.wait_for(
            lambda m: (
                m.name == "cs_status_and_limits"
                and m.type == "update"
                and m.data["evses"][0]["status_code"] == "evse_not_ready"
            )
        )
        assert limits is not None
        st.ev.plug_in()
        await st.wait_state("B1")
        auth = await st.wait_for(lambda m: m.name == "authorization" and m.type == "response")
        assert auth.data["status"] == "accepted"
        assert st.board.evse(1).out.pwm_duty is None  # authorized, but inoperative
    async with running_station(cfg) as st:  # a restart keeps the station inoperative
        st.ev.plug_in()
        await st.wait_state("B1")
        limits = await st.request("cs_status_and_limits", {})
        assert limits.data["evses"][0]["status_code"] == "evse_not_ready"


async def test_reset_and_stop_charging(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        mark = len(st.messages)
        stop = await st.request("stop_charging", {"evse_id": EVSE_ID})
        assert dict(stop.data) == {"evse_id": EVSE_ID, "status": "accepted"}
        await st.wait_state("B1", after=mark)
        assert not st.board.evse(1).contactor_closed
        reset = await st.request("reset", {})
        assert reset.data["status"] == "accepted"
        await st.wait_for(lambda m: st.resets == 1, timeout_s=3.0)


async def test_diode_fault_goes_to_f_and_notifies(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.board.evse(1).set_fault("diode_short", True)
        st.ev.plug_in()
        await st.wait_state("F")
        note = await st.wait_for(lambda m: m.name == "notify_event")
        assert note.data["tech_code"] == "diode_fault" and note.data["evse_id"] == EVSE_ID
        assert "negative CP level -9.0 V" in note.data["tech_info"]
        assert not st.board.evse(1).contactor_closed


async def test_rcd_trip_reports_and_recovers_after_reset(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        mark = len(st.messages)
        st.board.evse(1).set_fault("rcd_trip", True)
        await st.wait_state("F", after=mark)
        assert not st.board.evse(1).contactor_closed
        limits = await st.wait_for(
            lambda m: m.name == "cs_status_and_limits" and m.data["evses"][0]["ac"]["rcd_error"],
            after=mark,
        )
        assert limits.data["evses"][0]["status_code"] == "evse_malfunction"
        st.board.evse(1).set_fault("rcd_trip", False)
        assert st.board.evse(1).reset() is True
        await st.wait_state("C2", after=mark)


async def test_welded_contactor_reports_error_and_stays_locked(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        st.board.evse(1).set_fault("contactor_welded", True)
        mark = len(st.messages)
        st.ev.request_charging(False)
        await st.wait_state("B2", after=mark)
        st.clock.advance(FEEDBACK_TIMEOUT_S)
        error = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "error"
        )
        assert error.data["info"] == "contactor_welded"
        await st.wait_state("F")
        st.ev.unplug()
        assert st.board.evse(1).lock_locked


async def test_ev_ignoring_a_lower_duty_is_stopped_after_5_s(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        st.board.evse(1).set_fault("ev_ignore_reduction", True)
        await st.request(
            "cp_pwm",
            {
                "evse_id": EVSE_ID,
                "hlc": False,
                "current": 8.0,
                "error_state": False,
                "fault_state": False,
            },
        )
        st.clock.advance(EV_FOLLOW_DUTY_S)
        note = await st.wait_for(
            lambda m: (
                m.name == "notify_event" and m.data["tech_code"] == "ev_ignored_current_reduction"
            )
        )
        assert "EV draws 16.0 A" in note.data["tech_info"]
        await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "opened"
        )
        assert not st.board.evse(1).contactor_closed


async def test_remote_authorization_update(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, '[authorization]\nmode = "external"')
    async with running_station(cfg) as st:
        from charger.bus import api

        st.ev.plug_in()
        await st.wait_state("B1")
        st.bus.publish(
            api.update("authorization", "josev/cs", {"evse_id": EVSE_ID, "status": "accepted"})
        )
        await st.wait_state("C2")
        mark = len(st.messages)
        st.bus.publish(
            api.update("authorization", "josev/cs", {"evse_id": EVSE_ID, "status": "deauthorized"})
        )
        await st.wait_state("B1", after=mark)
        assert not st.board.evse(1).contactor_closed


async def test_controller_failure_drives_outputs_safe_then_restarts(tmp_path: Path) -> None:
    from charger.runtime.supervise import supervise

    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        controller = st.controller  # type: ignore[attr-defined]
        evse = next(iter(controller.evses.values()))

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("bug in the state machine")

        evse.fsm.pilot = broken
        st.ev.request_charging(False)  # the next CP change hits the bug
        await st.wait_for(lambda m: evse._halted)
        sim = st.board.evse(1)
        assert not sim.contactor_closed and sim.out.steady.value == "-12V"
        # the supervisor sees the failure and restarts the EVSE from what the board says
        task = asyncio.create_task(
            supervise("cs_controller", controller.run, on_crash=controller.drive_safe)
        )
        mark = len(st.messages)
        await st.wait_state("B2", after=mark)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not evse._halted


async def test_ventilation_request_without_ventilation(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.request_ventilation(True)
        st.ev.plug_in()
        await st.wait_state("D2")
        note = await st.wait_for(lambda m: m.name == "notify_event")
        assert note.data["tech_code"] == "ventilation_not_available"
        assert not st.board.evse(1).contactor_closed
    cfg = station_config(tmp_path / "vent", evse="ventilation_available = true")
    async with running_station(cfg) as st:
        st.ev.request_ventilation(True)
        st.ev.plug_in()
        await st.wait_state("D2")
        await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "closed"
        )
