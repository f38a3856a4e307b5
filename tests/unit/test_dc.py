"""The DC power path (charger/cs/dc.py) on its own: inputs with an explicit `now`, no
hardware, no sleeps."""

from __future__ import annotations

import pytest

from charger.cs.dc import (
    CABLE_CHECK_MAX_A,
    CABLE_CHECK_TIMEOUT_S,
    PRECHARGE_MAX_A,
    PRECHARGE_TIMEOUT_S,
    WELD_CHECK_S,
    CableCheckFinished,
    DcLimits,
    DcOutputs,
    DcPowerPath,
    FaultChanged,
    Isolation,
    Precharged,
    SetpointClamped,
    cable_check_voltage,
    grade_isolation,
)
from charger.cs.iec61851 import Fault

LIMITS = DcLimits(
    max_voltage_v=500.0,
    min_voltage_v=150.0,
    max_current_a=125.0,
    min_current_a=1.0,
    max_power_w=50000.0,
    current_tolerance_a=1.0,
)
HEALTHY_OHM = 5e6


def closed_path(now: float = 0.0, *, has_imd: bool = True) -> DcPowerPath:
    dc = DcPowerPath(LIMITS, has_imd=has_imd, now=now)
    dc.power_path(now, closed=True, allowed=True)
    return dc


def checked_path(ev_max_v: float = 450.0, resistance_ohm: float = HEALTHY_OHM) -> DcPowerPath:
    """Contactors closed, cable check passed, output discharged, at t = 3."""
    dc = closed_path()
    dc.ev_limits(0.0, ev_max_v, None)
    dc.start_cable_check(0.0)
    dc.reading(1.0, dc.outputs.voltage_v, 0.5)
    dc.isolation_reading(2.0, resistance_ohm)
    dc.reading(3.0, 10.0, 0.0)
    dc.drain_events()
    return dc


def faults(dc: DcPowerPath) -> list[tuple[Fault, bool]]:
    return [(e.fault, e.active) for e in dc.drain_events() if isinstance(e, FaultChanged)]


def precharge(dc: DcPowerPath, now: float, voltage_v: float, current_a: float = 2.0) -> str | None:
    return dc.setpoint(now, precharge=True, voltage_v=voltage_v, current_a=current_a, power_w=None)


def charge(
    dc: DcPowerPath, now: float, voltage_v: float, current_a: float, power_w: float | None = None
) -> str | None:
    return dc.setpoint(
        now, precharge=False, voltage_v=voltage_v, current_a=current_a, power_w=power_w
    )


# ---------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("ev_max_v", "evse_max_v", "expected"),
    [
        (400.0, 1000.0, 450.0),  # EV max + 50 V
        (480.0, 1000.0, 500.0),  # capped at 500 V
        (400.0, 420.0, 420.0),  # never above the EVSE's maximum
        (800.0, 1000.0, 880.0),  # above 500 V: 1.1 x EV max
        (950.0, 1000.0, 1000.0),
        (None, 1000.0, 500.0),  # EV's maximum unknown
    ],
)
def test_cable_check_voltage_follows_iec_61851_23_formula_cc1(
    ev_max_v: float | None, evse_max_v: float, expected: float
) -> None:
    assert cable_check_voltage(ev_max_v, evse_max_v) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("resistance_ohm", "level"),
    [
        (250_000.0, Isolation.VALID),  # 500 ohm/V of 500 V
        (249_999.0, Isolation.WARNING),
        (50_000.0, Isolation.WARNING),  # 100 ohm/V
        (49_999.0, Isolation.FAULT),
    ],
)
def test_isolation_thresholds_per_volt_of_the_evse_maximum(
    resistance_ohm: float, level: Isolation
) -> None:
    assert grade_isolation(resistance_ohm, 500.0) is level


# ---------------------------------------------------------------------- cable check


def test_cable_check_ramps_measures_at_the_test_voltage_then_discharges() -> None:
    dc = DcPowerPath(LIMITS, has_imd=True, now=0.0)
    dc.ev_limits(0.0, 400.0, 200.0)
    dc.start_cable_check(0.0)
    assert dc.cable_check_state() == ("ongoing", None) and dc.checking
    assert dc.outputs == DcOutputs(False, 0.0, 0.0, False)  # contactors still open
    dc.power_path(0.5, closed=True, allowed=True)
    assert dc.outputs == DcOutputs(True, 450.0, CABLE_CHECK_MAX_A, False)
    dc.reading(0.8, 300.0, 0.1)
    dc.isolation_reading(0.9, HEALTHY_OHM)  # measured below the test voltage: not counted
    assert dc.cable_check_state() == ("ongoing", None) and not dc.outputs.imd_on
    dc.reading(1.0, 445.0, 0.1)  # within 10 V: the IMD starts a fresh measurement
    assert dc.outputs.imd_on and dc.outputs.enabled
    dc.isolation_reading(3.0, HEALTHY_OHM)
    assert dc.outputs == DcOutputs(False, 0.0, 0.0, True)  # discharging, still monitoring
    assert dc.cable_check_state() == ("ongoing", None)
    dc.reading(3.2, 120.0, 0.0)
    assert dc.cable_check_state() == ("ongoing", None)
    dc.reading(3.3, 55.0, 0.0)  # below 60 V: done
    assert dc.cable_check_state() == ("finished", Isolation.VALID) and not dc.checking
    assert dc.drain_events() == [CableCheckFinished(Isolation.VALID, HEALTHY_OHM, 450.0)]


def test_isolation_fault_fails_the_cable_check() -> None:
    dc = closed_path()
    dc.start_cable_check(0.0)
    dc.reading(1.0, 500.0, 0.1)
    dc.isolation_reading(2.0, 40_000.0)
    assert dc.cable_check_state() == ("finished", Isolation.FAULT)
    events = dc.drain_events()
    assert CableCheckFinished(Isolation.FAULT, 40_000.0, 500.0) in events
    assert [(e.fault, e.active) for e in events if isinstance(e, FaultChanged)] == [
        (Fault.ISOLATION, True)
    ]
    assert dc.outputs == DcOutputs(False, 0.0, 0.0, False)
    assert precharge(dc, 3.0, 392.0) is not None


def test_isolation_warning_passes_the_check_and_is_reported() -> None:
    dc = checked_path(resistance_ohm=150_000.0)
    assert dc.cable_check_state() == ("finished", Isolation.WARNING)
    assert precharge(dc, 4.0, 392.0) is None


def test_a_repeated_start_does_not_run_the_check_again() -> None:
    dc = checked_path()
    dc.start_cable_check(5.0)  # Josev repeats cable_check until PowerDelivery
    assert dc.cable_check_state() == ("finished", Isolation.VALID)
    assert not dc.outputs.enabled


def test_each_closing_needs_its_own_check() -> None:
    dc = checked_path()
    dc.power_path(5.0, closed=False, allowed=False)
    assert dc.cable_check_state() == ("finished", Isolation.VALID)  # as it ended
    dc.power_path(6.0, closed=True, allowed=True)
    assert dc.cable_check_state() == ("finished", Isolation.INVALID)
    assert precharge(dc, 6.0, 392.0) is not None  # a new check first
    dc.start_cable_check(6.0)
    assert dc.outputs.enabled and dc.cable_check_state() == ("ongoing", None)


def test_a_start_while_open_after_a_check_runs_a_new_one_on_closing() -> None:
    dc = checked_path()
    dc.power_path(5.0, closed=False, allowed=False)  # e.g. a pause
    dc.start_cable_check(6.0)  # asked before the contactors close again
    assert dc.cable_check_state() == ("ongoing", None) and not dc.outputs.enabled
    dc.power_path(7.0, closed=True, allowed=True)
    assert dc.outputs.enabled and dc.outputs.voltage_v == 500.0


def test_opening_during_the_check_fails_it() -> None:
    dc = closed_path()
    dc.start_cable_check(0.0)
    dc.reading(1.0, 300.0, 1.0)
    dc.power_path(2.0, closed=False, allowed=False)
    assert dc.cable_check_state() == ("finished", Isolation.INVALID)
    assert not dc.outputs.enabled


def test_monitoring_after_the_check_cuts_off_on_a_fault() -> None:
    dc = checked_path()
    assert charge(dc, 4.0, 420.0, 100.0) is None
    dc.isolation_reading(5.0, 150_000.0)
    assert dc.isolation is Isolation.WARNING and dc.outputs.enabled
    dc.isolation_reading(6.0, 20_000.0)
    assert faults(dc) == [(Fault.ISOLATION, True)]
    assert not dc.outputs.enabled and dc.isolation is Isolation.FAULT


def test_cable_check_that_cannot_reach_its_voltage_times_out() -> None:
    dc = closed_path()
    dc.start_cable_check(0.0)
    dc.reading(1.0, 100.0, 2.0)
    dc.tick(CABLE_CHECK_TIMEOUT_S - 0.1)
    assert faults(dc) == []
    dc.tick(CABLE_CHECK_TIMEOUT_S)
    assert faults(dc) == [(Fault.CABLE_CHECK_FAILED, True)]
    assert dc.cable_check_state() == ("finished", Isolation.INVALID)


def test_without_an_imd_the_check_reports_no_imd_and_energy_may_flow() -> None:
    dc = closed_path(has_imd=False)
    dc.start_cable_check(0.0)
    assert dc.cable_check_state() == ("finished", Isolation.NO_IMD)
    assert precharge(dc, 1.0, 392.0) is None


# ---------------------------------------------------------------------- precharge, charging


def test_precharge_is_limited_to_2_a_and_reaches_the_target() -> None:
    dc = closed_path()
    assert precharge(dc, 0.0, 392.0) == "no passed cable check (isolation invalid)"
    dc = checked_path()
    assert precharge(dc, 4.0, 392.0, current_a=10.0) is None
    assert dc.outputs == DcOutputs(True, 392.0, PRECHARGE_MAX_A, True)
    assert dc.drain_events() == [SetpointClamped("392 V 10 A", "392 V 2 A")]
    dc.reading(5.0, 360.0, 0.0)
    assert dc.drain_events() == []
    dc.reading(5.5, 375.0, 0.0)  # within 20 V
    assert dc.drain_events() == [Precharged(375.0)]
    dc.tick(4.0 + PRECHARGE_TIMEOUT_S)
    assert faults(dc) == []


def test_precharge_not_reached_in_7_s_fails_the_session() -> None:
    dc = checked_path()
    precharge(dc, 4.0, 450.0)
    dc.reading(5.0, 392.1, 2.0)  # the EV's battery holds the output (contactor closed early)
    precharge(dc, 6.0, 450.0)  # the EV repeats its request: the clock keeps running
    dc.tick(4.0 + PRECHARGE_TIMEOUT_S - 0.1)
    assert faults(dc) == []
    dc.tick(4.0 + PRECHARGE_TIMEOUT_S)
    assert faults(dc) == [(Fault.PRECHARGE_TIMEOUT, True)]
    assert not dc.outputs.enabled
    assert charge(dc, 12.0, 420.0, 10.0) is not None


def test_charging_setpoints_are_clamped_to_the_limits() -> None:
    dc = checked_path(ev_max_v=450.0)
    assert charge(dc, 4.0, 420.0, 100.0) is None
    assert dc.outputs == DcOutputs(True, 420.0, 100.0, True)
    assert dc.drain_events() == []
    charge(dc, 5.0, 480.0, 200.0)  # above the EV's maximum voltage and the EVSE's current
    assert dc.outputs.voltage_v == 450.0
    assert dc.outputs.current_a == pytest.approx(50000.0 / 450.0)  # the power limit
    assert dc.drain_events() == [SetpointClamped("480 V 200 A", "450 V 111.111 A")]
    charge(dc, 6.0, 400.0, 100.0, power_w=20000.0)  # the EV's power target
    assert dc.outputs.current_a == pytest.approx(50.0)
    charge(dc, 7.0, 100.0, 0.5)  # below the EVSE's minimums
    assert (dc.outputs.voltage_v, dc.outputs.current_a) == (150.0, 1.0)
    charge(dc, 8.0, 400.0, 0.0)  # no current
    assert dc.outputs == DcOutputs(True, 400.0, 0.0, True)
    assert charge(dc, 9.0, 0.0, 0.0) is None  # voltage 0: output off
    assert not dc.outputs.enabled


def test_setpoints_need_closed_contactors_and_an_energy_offer() -> None:
    dc = checked_path()
    dc.power_path(4.0, closed=True, allowed=False)  # a stop: PWM off, contactor still closed
    assert charge(dc, 4.0, 420.0, 100.0) is not None
    dc.power_path(4.1, closed=True, allowed=True)
    assert charge(dc, 4.2, 420.0, 100.0) is None
    dc.power_path(4.3, closed=True, allowed=False)
    assert not dc.outputs.enabled  # current stops before the contactor opens
    assert precharge(dc, 4.4, 392.0) is not None


def test_precharge_after_charging_started_is_refused() -> None:
    dc = checked_path()
    charge(dc, 4.0, 420.0, 10.0)
    assert precharge(dc, 5.0, 392.0) == "precharge asked for while charging"


# ---------------------------------------------------------------------- protection


def test_overvoltage_cuts_off_on_the_reading_itself() -> None:
    dc = checked_path(ev_max_v=450.0)
    charge(dc, 4.0, 440.0, 10.0)
    dc.reading(5.0, 460.0, 10.0)  # limit 450 V + 10 V margin: not yet
    assert faults(dc) == []
    dc.reading(5.1, 460.5, 10.0)
    assert faults(dc) == [(Fault.DC_OVERVOLTAGE, True)]
    assert not dc.outputs.enabled
    dc.reading(5.2, 470.0, 10.0)
    assert faults(dc) == []  # raised once


def test_an_ev_maximum_of_0_says_nothing() -> None:
    dc = checked_path(ev_max_v=450.0)
    charge(dc, 4.0, 430.0, 100.0)
    dc.ev_limits(5.0, 0.0, None)  # e.g. an "output off" setpoint without the EV's limits
    assert charge(dc, 5.0, 0.0, 0.0) is None
    dc.reading(5.1, 392.0, 0.0)  # the battery still on the output: no over-voltage
    assert faults(dc) == [] and dc.ev_max_voltage_v == 450.0


def test_overvoltage_without_a_session_uses_the_evse_maximum() -> None:
    dc = DcPowerPath(LIMITS, has_imd=True, now=0.0)
    dc.reading(1.0, 509.0, 0.0)
    assert faults(dc) == []
    dc.reading(1.1, 511.0, 0.0)
    assert faults(dc) == [(Fault.DC_OVERVOLTAGE, True)]


def test_the_cable_check_may_test_above_the_evs_maximum() -> None:
    dc = closed_path()
    dc.ev_limits(0.0, 400.0, None)
    dc.start_cable_check(0.0)
    dc.reading(1.0, 450.0, 0.1)  # test voltage 450 V > EV max 400 V + 10 V
    dc.isolation_reading(2.0, HEALTHY_OHM)
    dc.reading(2.1, 430.0, 0.0)  # still discharging
    assert faults(dc) == []


def test_overcurrent_cuts_off_against_the_limit_in_force() -> None:
    dc = checked_path()
    precharge(dc, 4.0, 392.0)
    dc.reading(4.5, 392.0, 3.2)  # 2 A x 1.1 + 1 A tolerance = 3.2 A: not yet
    assert faults(dc) == []
    dc.reading(4.6, 392.0, 3.3)
    assert faults(dc) == [(Fault.DC_OVERCURRENT, True)]
    dc = checked_path()
    charge(dc, 4.0, 420.0, 100.0)
    dc.reading(4.5, 400.0, 138.5)  # 125 A x 1.1 + 1 A
    assert faults(dc) == []
    dc.reading(4.6, 400.0, 139.0)
    assert faults(dc) == [(Fault.DC_OVERCURRENT, True)]


def test_a_fault_refuses_setpoints_until_the_ev_leaves() -> None:
    dc = checked_path()
    dc.reading(4.0, 600.0, 0.0)
    dc.drain_events()
    assert charge(dc, 5.0, 420.0, 10.0) == "a DC fault is active: dc_overvoltage"
    dc.unplugged()
    assert dc.faults == frozenset() and dc.ev_max_voltage_v is None


def test_welding_detection_after_opening() -> None:
    dc = checked_path()
    charge(dc, 4.0, 420.0, 100.0)
    dc.reading(4.5, 397.0, 100.0)
    dc.power_path(5.0, closed=False, allowed=False)
    dc.reading(5.1, 392.0, 0.0)  # the battery still on the output
    dc.tick(5.0 + WELD_CHECK_S - 0.1)
    assert faults(dc) == []
    dc.tick(5.0 + WELD_CHECK_S)
    assert faults(dc) == [(Fault.DC_WELDED, True)]
    dc.unplugged()
    assert Fault.DC_WELDED in dc.faults  # a weld outlives the session
    dc.reading(8.0, 40.0, 0.0)  # the EV opened its side: the output empties
    assert faults(dc) == [(Fault.DC_WELDED, False)]


def test_an_output_that_empties_after_opening_is_no_weld() -> None:
    dc = checked_path()
    charge(dc, 4.0, 420.0, 100.0)
    dc.reading(4.5, 397.0, 100.0)
    dc.power_path(5.0, closed=False, allowed=False)
    dc.reading(5.2, 50.0, 0.0)
    dc.reading(5.5, 300.0, 0.0)  # (whatever comes later is not this opening's business)
    dc.tick(5.0 + WELD_CHECK_S)
    assert faults(dc) == []
