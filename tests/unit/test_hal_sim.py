"""The simulated board and EV behave as IEC 61851-1 says a car does."""

from __future__ import annotations

import asyncio

import pytest

from charger.config import EvseConfig, SimConfig
from charger.hal.interfaces import SteadyLevel
from charger.sim.board import SimBoard, SimEvse, create_board
from charger.sim.service import DEMO_SCRIPT

SIM = SimConfig(ev_reaction_s=0.0, ev_max_current_a=16, ev_capacity_wh=1000, ev_soc_percent=50)


def make(evse: EvseConfig | None = None, sim: SimConfig = SIM) -> SimBoard:
    return create_board([evse or EvseConfig(id=1, evse_id="E1")], sim)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def charging(sim: SimEvse, duty: float = 53.33) -> None:
    sim.plug_in()
    sim.set_pwm(duty)
    await settle()
    sim.set_closed(True)


async def test_ev_goes_to_c_and_draws_the_offered_current() -> None:
    sim = make().evse(1)
    sim.plug_in()
    assert sim.read().positive_v == 9.0
    sim.set_pwm(16.67)  # 10 A
    await settle()
    assert sim.ev.s2_state == "C" and sim.read().positive_v == 6.0
    assert sim.read().negative_v == -12.0
    assert sim.drawn_current_a() == 0.0  # no power until the contactor closes
    sim.set_closed(True)
    assert sim.drawn_current_a() == 10.0


async def test_ev_never_exceeds_its_own_maximum() -> None:
    sim = make().evse(1)
    await charging(sim, 53.33)  # 32 A offered
    assert sim.drawn_current_a() == 16.0


@pytest.mark.parametrize("level", [SteadyLevel.PLUS_12, None])
async def test_ev_leaves_c_without_pwm_or_at_5_percent(level: SteadyLevel | None) -> None:
    sim = make().evse(1)
    await charging(sim)
    if level is None:
        sim.set_pwm(5.0)  # HLC: this EV has no ISO 15118 stack, it waits in B
    else:
        sim.set_steady(level)
    await settle()
    assert sim.ev.s2_state == "B" and sim.drawn_current_a() == 0.0


async def test_ev_follows_a_lower_duty_unless_told_to_ignore_it() -> None:
    sim = make().evse(1)
    await charging(sim)
    sim.set_pwm(13.33)  # 8 A
    await settle()
    assert sim.drawn_current_a() == 8.0
    sim.set_fault("ev_ignore_reduction", True)
    sim.set_pwm(10.0)  # 6 A
    await settle()
    assert sim.drawn_current_a() == 8.0


async def test_meter_integrates_energy_and_full_battery_stops() -> None:
    board = make()
    sim = board.evse(1)
    await charging(sim)
    sim.step(3600.0)  # one hour at 16 A, three phases, 230 V, PF 0.99
    assert sim.energy_import_wh == pytest.approx(230 * 16 * 3 * 0.99)
    assert sim.ev.soc_percent == 100.0  # a 1 kWh battery is full
    await settle()
    assert sim.ev.s2_state == "B"
    reading = await board.evses[1].meter.read()
    assert reading.energy_import_wh == pytest.approx(10929.6) and reading.current_a == (0, 0, 0)


async def test_faults_change_what_the_evse_measures() -> None:
    sim = make().evse(1)
    sim.plug_in()
    sim.set_pwm(26.67)
    sim.set_fault("diode_short", True)
    assert sim.read().negative_v == -9.0
    sim.set_fault("cp_short", True)
    assert sim.read().positive_v == 0.0
    sim.set_fault("cp_short", False)
    sim.set_fault("contactor_welded", True)
    sim.set_closed(True)
    sim.set_closed(False)
    assert sim.feedback_closed() is True
    tripped: list[bool] = []
    make_rcd = make().evses[1].rcd
    make_rcd.on_change(tripped.append)
    assert make_rcd.reset() is True


async def test_pilot_reports_arrive_from_the_loop_not_the_setter() -> None:
    sim = make().evse(1)
    seen: list[float] = []
    sim.on_change(lambda r: seen.append(r.positive_v))
    sim.plug_in()
    assert seen == []
    await settle()
    assert seen == [9.0]


def test_commands_validate_their_arguments() -> None:
    board = make()
    with pytest.raises(ValueError, match="needs 'token' of type str"):
        board.command({"cmd": "present_token"})
    with pytest.raises(ValueError, match="'evse' must be an integer"):
        board.command({"cmd": "state", "evse": "1"})


async def test_demo_script_commands_are_valid() -> None:
    board = make()
    for _, command in DEMO_SCRIPT:
        state = board.command(command)
        assert state["evse"] == 1
    assert state["ev"]["state"] == "A"
