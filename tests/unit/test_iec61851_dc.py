"""The IEC 61851 machine of a DC EVSE: contactors closed only at the SECC's request, and
the DC power path's faults; injected clock, ideal contactor and lock."""

from __future__ import annotations

from charger.cs.iec61851 import (
    ContactorChanged,
    CpState,
    Fault,
    FaultCleared,
    FaultRaised,
    Iec61851,
)

C, B, A = 6.0, 9.0, 12.0


def settle(fsm: Iec61851, now: float) -> None:
    for _ in range(4):
        out = fsm.outputs
        fsm.contactor_feedback(now, out.contactor_closed)
        fsm.lock_feedback(now, out.lock_locked)
        if fsm.outputs == out:
            return


def cp(fsm: Iec61851, now: float, level_v: float) -> None:
    duty = fsm.outputs.duty_percent or 100.0
    fsm.pilot(now, level_v, -12.0 if duty < 100 else level_v, duty)
    settle(fsm, now)


def dc_in_c2() -> Iec61851:
    """HLC at 5 %, authorized, the car in C: everything but the SECC's request."""
    fsm = Iec61851(
        max_current_a=16.0,
        has_lock=True,
        ventilation_available=False,
        now=0.0,
        pwm_by_request=True,
        closing_on_request=True,
    )
    cp(fsm, 0.0, B)
    fsm.set_pwm_request(0.0, hlc=True, current_a=None, error=False, fault=False)
    cp(fsm, 0.0, B)
    fsm.authorize(0.0, True)
    settle(fsm, 0.0)
    cp(fsm, 1.0, C)
    assert fsm.state is CpState.C2
    return fsm


def test_contactors_close_only_once_the_secc_asks() -> None:
    fsm = dc_in_c2()
    assert not fsm.outputs.contactor_closed and fsm.outputs.lock_locked
    fsm.allow_closing(2.0)
    settle(fsm, 2.0)
    assert fsm.outputs.contactor_closed


def test_each_opening_needs_a_new_request() -> None:
    fsm = dc_in_c2()
    fsm.allow_closing(2.0)
    settle(fsm, 2.0)
    cp(fsm, 3.0, B)  # the EV ends the session (state B): contactors open
    assert not fsm.outputs.contactor_closed
    cp(fsm, 4.0, C)
    assert not fsm.outputs.contactor_closed
    fsm.allow_closing(5.0)
    settle(fsm, 5.0)
    assert fsm.outputs.contactor_closed


def test_a_request_before_plug_in_does_not_carry_over_to_the_next_ev() -> None:
    fsm = dc_in_c2()
    fsm.allow_closing(2.0)  # closes
    settle(fsm, 2.0)
    cp(fsm, 3.0, A)  # unplugged under load
    fsm.allow_closing(3.5)  # asked while nobody is there
    cp(fsm, 4.0, B)
    fsm.set_pwm_request(4.0, hlc=True, current_a=None, error=False, fault=False)
    fsm.authorize(4.0, True)
    cp(fsm, 5.0, C)
    assert not fsm.outputs.contactor_closed


def test_a_dc_fault_opens_the_contactors_until_the_ev_leaves() -> None:
    fsm = dc_in_c2()
    fsm.allow_closing(2.0)
    settle(fsm, 2.0)
    fsm.drain_events()
    fsm.external_fault(3.0, Fault.DC_OVERVOLTAGE, True, "output at 560 V")
    assert not fsm.outputs.contactor_closed
    events = fsm.drain_events()
    assert FaultRaised(Fault.DC_OVERVOLTAGE, "output at 560 V") in events
    assert ContactorChanged(False, "dc_overvoltage") in events
    fsm.allow_closing(4.0)
    settle(fsm, 4.0)
    assert not fsm.outputs.contactor_closed and fsm.state is CpState.C2  # no state F
    cp(fsm, 5.0, A)
    assert FaultCleared(Fault.DC_OVERVOLTAGE) in fsm.drain_events()
    assert fsm.faults == frozenset()


def test_a_welded_dc_contactor_goes_to_f_and_keeps_the_connector_locked() -> None:
    fsm = dc_in_c2()
    fsm.allow_closing(2.0)
    settle(fsm, 2.0)
    cp(fsm, 3.0, B)
    fsm.external_fault(4.0, Fault.DC_WELDED, True, "output still at 392 V")
    settle(fsm, 4.0)
    assert fsm.state is CpState.F and fsm.outputs.lock_locked
    assert fsm.request_lock(4.5, False) is not None  # no unlocking with the battery on it
    cp(fsm, 5.0, A)  # the plug cannot be read in F: the weld is not a session fault
    assert Fault.DC_WELDED in fsm.faults and fsm.outputs.lock_locked
    fsm.external_fault(6.0, Fault.DC_WELDED, False)
    settle(fsm, 6.0)
    assert fsm.state is CpState.B2  # as last seen: F could not read the plug
    assert fsm.request_lock(6.5, False) is None
