"""A socket outlet on the simulated board: the car's cable coding (PP) read by the board,
the CS controller's offer limited to it, an invalid PP refused with a notify_event, the
RCD self-test before each session, and a meter that stops answering (Josev API traffic,
every message validated against the schemas)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from charger.cs.pwm import duty_for_current
from charger.hal.interfaces import MeterError, MeterReading
from tests.support.station import EVSE_ID, running_station, station_config

SOCKET = "socket_outlet = true\ncontactor_min_off_s = 0"


def notify(station: object, code: str, after: int = 0) -> list[str]:
    return [
        m.data.get("tech_info", "")
        for m in station.messages[after:]  # type: ignore[attr-defined]
        if m.name == "notify_event" and m.data.get("tech_code") == code
    ]


async def test_the_cable_limits_the_offer_and_cs_status_and_limits(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, evse=SOCKET)  # the car takes 16 A
    async with running_station(cfg) as st:
        st.ev.plug_in(cable_a=13)
        await st.wait_state("C2")
        assert st.board.evse(1).out.pwm_duty == pytest.approx(duty_for_current(13.0))
        limits = await st.request("cs_status_and_limits", {})
        assert limits.data["evses"][0]["ac"]["max_current"] == {"l1": 13.0, "l2": 13.0, "l3": 13.0}
        assert st.ev.snapshot()["cable"] == {"current_a": 13, "in_socket": True, "pp_ohm": 1500.0}
        update = await st.wait_for(
            lambda m: (
                m.name == "cs_status_and_limits"
                and m.type == "update"
                and m.data["evses"][0]["ac"]["max_current"]["l1"] == 13.0
            )
        )
        assert update.topic == "cs/josev"


async def test_an_invalid_pp_is_refused_with_a_notify_event(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path, evse=SOCKET)) as st:
        st.ev.set_fault("pp_fault", True)
        st.ev.plug_in()
        await st.wait_for(lambda m: bool(notify(st, "proximity_invalid")))
        assert "short" in notify(st, "proximity_invalid")[0]
        assert st.board.evse(1).out.pwm_duty is None and not st.ev.contactor_closed
        st.ev.set_fault("pp_fault", False)
        await st.wait_state("C2")
        assert "cleared" in notify(st, "proximity_invalid")


async def test_unplug_at_the_station_and_at_the_car_are_told_apart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="charger.cs.evse")
    async with running_station(station_config(tmp_path, evse=SOCKET)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        mark = len(st.messages)
        st.ev.unplug(at="station")
        await st.wait_state("A1", after=mark)
        assert not st.ev.contactor_closed
        assert not notify(st, "proximity_invalid")  # an unplug, not a fault
        st.ev.plug_in()
        await st.wait_state("C2", after=mark)
        mark = len(st.messages)
        st.ev.unplug()  # at the car: the cable stays in the socket
        await st.wait_state("A1", after=mark)
        assert st.ev.snapshot()["cable"]["in_socket"]
    unplugged = [r for r in caplog.records if r.getMessage().startswith("unplugged")]
    assert [r.kv["at"] for r in unplugged] == ["station", "ev"]  # type: ignore[attr-defined]


async def test_a_socket_outlet_needs_a_pp_input(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, evse=SOCKET)
    async with running_station(cfg) as st:
        hw = st.board.evses[1]
        assert hw.proximity is not None
    st.board._hardware[1].proximity = None
    from charger.cs.evse import EvseController, EvseSettings
    from charger.runtime.tasks import TaskOwner

    with pytest.raises(ValueError, match="socket outlet but the board has no proximity"):
        EvseController(
            cfg.evses[0],
            st.board.evses[1],
            st.bus,
            EvseSettings(free_charging=True, meter_interval_s=1, connection_timeout_s=1),
            TaskOwner("test"),
            next_event_id=lambda: 1,
        )


async def test_a_failing_rcd_self_test_keeps_the_contactor_open(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.set_fault("rcd_self_test_fail", True)
        st.ev.plug_in()
        await st.wait_for(lambda m: bool(notify(st, "rcd_self_test_failed")))
        await st.wait_state("F")
        assert not st.ev.contactor_closed
        status = await st.request("cs_status_and_limits", {})
        assert status.data["evses"][0]["status_code"] == "evse_malfunction"


async def test_a_silent_meter_is_a_fault_until_it_answers(tmp_path: Path) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")
        sim = st.board.evse(1)
        real_read = sim.read_meter
        silent = True

        async def read_meter() -> MeterReading:
            if silent:
                raise MeterError("no answer from the meter at address 1")
            return await real_read()

        sim.read_meter = read_meter  # type: ignore[method-assign]
        await st.wait_for(lambda m: bool(notify(st, "meter_not_responding")))
        assert notify(st, "meter_not_responding")[0] == "no answer from the meter at address 1"
        await st.wait_for(lambda m: not st.ev.contactor_closed)
        silent = False
        await st.wait_for(lambda m: "cleared" in notify(st, "meter_not_responding"))
        await st.wait_for(lambda m: st.ev.contactor_closed, timeout_s=5)
        assert EVSE_ID
