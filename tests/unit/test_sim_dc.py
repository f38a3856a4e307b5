"""The simulated DC output (charger/sim/dc.py): power module, contactors, isolation
monitor and the car's battery, stepped by hand."""

from __future__ import annotations

import asyncio

import pytest

from charger.config import EvseConfig, SimConfig
from charger.hal.interfaces import DcReading, IsolationReading
from charger.sim.board import SimBoard, SimEvse, create_board
from charger.sim.dc import DISCHARGE_TAU_S

SIM = SimConfig(
    ev_reaction_s=0.0,
    ev_soc_percent=50.0,
    ev_capacity_wh=50000.0,
    ev_battery_voltage_v=400.0,
    ev_battery_resistance_ohm=0.1,
    dc_ramp_v_per_s=100.0,
    dc_isolation_ohm=2e6,
    dc_imd_measure_s=1.0,
)
DC = EvseConfig(id=1, evse_id="E1", kind="dc", hlc=True, dc_max_voltage_v=500.0)


def make(sim: SimConfig = SIM) -> SimBoard:
    return create_board([DC], sim)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def steps(sim: SimEvse, seconds: float, dt: float = 0.1) -> None:
    for _ in range(round(seconds / dt)):
        sim.step(dt)


async def connected(board: SimBoard) -> SimEvse:
    """Plugged in, in C at 5 %, both contactors closed."""
    sim = board.evse(1)
    sim.plug_in()
    sim.set_pwm(5.0)
    await settle()
    sim.set_closed(True)
    sim.set_ev_contactor(True)
    return sim


async def test_a_ccs_car_goes_to_c_at_5_percent_only() -> None:
    sim = make().evse(1)
    sim.plug_in()
    sim.set_pwm(16.67)  # a basic-charging duty: a DC car cannot use it
    await settle()
    assert sim.ev.s2_state == "B"
    sim.set_pwm(5.0)
    await settle()
    assert sim.ev.s2_state == "C"


async def test_the_module_ramps_its_voltage_and_needs_current_to_rise() -> None:
    board = make()
    sim = board.evse(1)
    module = board.evses[1].power_module
    assert module is not None
    module.set_limits(300.0, 0.0)
    module.enable()
    steps(sim, 1.0)
    assert module.read() == DcReading(0.0, 0.0)  # no current allowed: nothing charges up
    module.set_limits(300.0, 2.0)
    steps(sim, 1.0)
    assert module.read().voltage_v == pytest.approx(100.0)  # 100 V/s
    steps(sim, 3.0)
    assert module.read().voltage_v == pytest.approx(300.0)
    module.disable()
    sim.step(2 * DISCHARGE_TAU_S)  # the discharge circuit empties the output
    assert module.read().voltage_v == pytest.approx(300.0 * 0.1353, abs=0.1)


async def test_with_the_battery_the_current_is_limited_and_charges_it() -> None:
    board = make()
    sim = await connected(board)
    module = board.evses[1].power_module
    assert module is not None
    steps(sim, 0.1)
    assert module.read() == DcReading(400.0, 0.0)  # the battery's OCV at 50 %
    module.set_limits(450.0, 100.0)
    module.enable()
    steps(sim, 1.0)  # the module starts from what its output holds
    assert module.read().current_a == 100.0
    assert module.read().voltage_v == pytest.approx(410.0, abs=0.05)  # OCV + 100 A x 0.1
    module.set_limits(404.0, 100.0)
    steps(sim, 1.0)  # constant voltage: (404 - 400) / 0.1 = 40 A
    reading = module.read()
    assert reading.voltage_v == pytest.approx(404.0, abs=0.01)
    assert reading.current_a == pytest.approx(40.0, abs=0.5)
    soc = sim.ev.soc_percent
    steps(sim, 36.0)
    assert sim.ev.soc_percent > soc
    meter = await board.evses[1].meter.read()
    assert meter.dc_current_a == module.read().current_a < reading.current_a  # OCV rose
    assert meter.energy_import_wh > 0 and meter.current_a == (0.0, 0.0, 0.0)


async def test_a_welded_contactor_keeps_the_battery_on_the_module() -> None:
    board = make()
    sim = await connected(board)
    module = board.evses[1].power_module
    assert module is not None
    module.set_limits(420.0, 50.0)
    module.enable()
    steps(sim, 1.0)
    sim.set_fault("contactor_welded", True)
    module.disable()
    sim.set_closed(False)
    steps(sim, 1.0)
    assert module.read() == DcReading(400.0, 0.0)
    sim.set_ev_contactor(False)  # once the car opens its side the output empties
    steps(sim, 1.0)
    assert module.read() == DcReading(0.0, 0.0)


async def test_power_module_faults() -> None:
    board = make()
    sim = board.evse(1)
    module = board.evses[1].power_module
    assert module is not None
    module.set_limits(400.0, 2.0)
    module.enable()
    sim.set_fault("power_module_overvoltage", True)
    steps(sim, 10.0)
    assert module.read().voltage_v == pytest.approx(650.0)  # 130 % of the EVSE's 500 V
    sim.set_fault("power_module_overvoltage", False)
    board2 = make()
    sim2 = await connected(board2)
    module2 = board2.evses[1].power_module
    assert module2 is not None
    steps(sim2, 0.1)
    module2.set_limits(450.0, 10.0)
    module2.enable()
    sim2.set_fault("power_module_overcurrent", True)
    steps(sim2, 1.0)
    assert module2.read().current_a > 100.0  # (450 - 400) / 0.1: the limit is ignored


async def test_the_isolation_monitor_measures_for_its_period_after_each_start() -> None:
    board = make()
    sim = board.evse(1)
    imd = board.evses[1].isolation_monitor
    assert imd is not None
    results: list[IsolationReading] = []
    imd.on_reading(results.append)
    steps(sim, 2.0)
    assert results == []  # not started
    imd.start()
    steps(sim, 0.5)
    assert imd.read() == IsolationReading(None)
    steps(sim, 0.5)
    assert results == [IsolationReading(2e6)]
    sim.set_fault("isolation_warning", True)
    steps(sim, 1.0)
    sim.set_fault("isolation_warning", False)
    sim.set_fault("isolation_fault", True)
    steps(sim, 1.0)
    assert results[1:] == [IsolationReading(125_000.0), IsolationReading(25_000.0)]
    imd.stop()
    steps(sim, 3.0)
    assert len(results) == 3


async def test_dc_commands() -> None:
    board = make()
    state = board.command({"cmd": "plug_in"})
    assert state["dc"]["battery_ocv_v"] == 400.0
    state = board.command(
        {
            "cmd": "set_ev",
            "battery_voltage_v": 800,
            "battery_resistance_ohm": 0.02,
            "dc_max_voltage_v": 900,
            "dc_max_current_a": 300,
        }
    )
    assert state["dc"]["battery_ocv_v"] == 800.0 and state["dc"]["ev_max_voltage_v"] == 900.0
    state = board.command({"cmd": "ev_contactor", "on": True})
    assert state["dc"]["ev_contactor_closed"] is True
    board.command({"cmd": "fault", "fault": "isolation_fault"})
    with pytest.raises(ValueError, match="'battery_voltage_v' must be within 50-1000"):
        board.command({"cmd": "set_ev", "battery_voltage_v": 2000})
    with pytest.raises(ValueError, match="needs 'on' of type bool"):
        board.command({"cmd": "ev_contactor"})
    assert board.command({"cmd": "unplug"})["dc"]["ev_contactor_closed"] is False


def test_dc_commands_on_an_ac_evse_are_refused() -> None:
    board = create_board([EvseConfig(id=1, evse_id="E1")], SIM)
    with pytest.raises(ValueError, match="needs a DC EVSE"):
        board.command({"cmd": "fault", "fault": "isolation_fault"})
    with pytest.raises(ValueError, match="needs a DC EVSE"):
        board.command({"cmd": "set_ev", "battery_voltage_v": 400})
    with pytest.raises(ValueError, match="is AC"):
        board.command({"cmd": "ev_contactor", "on": True})
    assert "dc" not in board.command({"cmd": "state"})
    assert board.evses[1].power_module is None and board.evses[1].isolation_monitor is None
