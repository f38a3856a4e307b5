"""The IEC 61851-1 state machine, driven with an injected clock and ideal hardware."""

from __future__ import annotations

import pytest

from charger.cs.iec61851 import (
    EV_FOLLOW_DUTY_S,
    EV_STOP_ON_X1_S,
    FAULT_RETRY_S,
    FEEDBACK_TIMEOUT_S,
    OVERCURRENT_SUSTAIN_S,
    ChargingStopped,
    ContactorChanged,
    CpState,
    Fault,
    FaultCleared,
    FaultRaised,
    Iec61851,
    Level,
    PilotMode,
    SessionEnded,
    StateChanged,
    classify,
)
from charger.cs.pwm import DutyError

LEVEL_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0}


class Rig:
    """An EVSE whose contactor and lock do what they are told, unless a test says not."""

    def __init__(self, *, max_current_a: float = 32.0, lock: bool = True, vent: bool = False):
        self.now = 0.0
        self.fsm = Iec61851(
            max_current_a=max_current_a, has_lock=lock, ventilation_available=vent, now=0.0
        )
        self.level = "A"
        self.diode_short = False
        self.contactor_welded = False
        self.contactor_stuck_open = False
        self.lock_jammed = False
        self.events: list[object] = []
        self._settle()

    def _settle(self) -> None:
        # Ideal hardware: feedback follows the command (unless a fault is injected), and
        # the CP reading follows our output and the EV's resistors.
        for _ in range(4):
            out = self.fsm.outputs
            closed = out.contactor_closed
            if self.contactor_welded:
                closed = True if self.fsm.outputs.contactor_closed or self._was_closed else closed
            if self.contactor_stuck_open:
                closed = False
            self._was_closed = closed
            self.fsm.contactor_feedback(self.now, closed)
            self.fsm.lock_feedback(self.now, False if self.lock_jammed else out.lock_locked)
            if self.fsm.outputs == out:
                break
        self.events += self.fsm.drain_events()

    _was_closed = False

    def at(self, t: float) -> Rig:
        self.now = t
        self.fsm.tick(t)
        self._settle()
        return self

    def cp(self, level: str) -> Rig:
        self.level = level
        out = self.fsm.outputs
        positive = LEVEL_V[level]
        if out.pilot is PilotMode.PWM:
            negative = -positive if self.diode_short else -12.0
            duty = out.duty_percent or 0.0
        else:
            negative, duty = positive, 100.0
        self.fsm.pilot(self.now, positive, negative, duty)
        self._settle()
        return self

    def authorize(self) -> Rig:
        self.fsm.authorize(self.now, True)
        self._settle()
        return self

    def current(self, amps: float) -> Rig:
        self.fsm.measured_current(self.now, amps)
        self._settle()
        return self

    def charging(self) -> Rig:
        self.cp("B").authorize().cp("C")
        assert self.fsm.outputs.contactor_closed
        return self

    @property
    def state(self) -> CpState:
        return self.fsm.state

    @property
    def closed(self) -> bool:
        return self.fsm.outputs.contactor_closed

    def faults_raised(self) -> list[Fault]:
        return [e.fault for e in self.events if isinstance(e, FaultRaised)]


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(
    ("volts", "level"),
    [
        (13.0, Level.A),
        (12.0, Level.A),
        (10.5, Level.A),
        (10.49, Level.B),
        (9.0, Level.B),
        (7.5, Level.B),
        (7.49, Level.C),
        (6.0, Level.C),
        (4.5, Level.C),
        (4.49, Level.D),
        (3.0, Level.D),
        (1.5, Level.D),
        (1.49, Level.E),
        (0.0, Level.E),
        (-1.5, Level.E),
        (-1.51, Level.INVALID),
        (-12.0, Level.INVALID),
    ],
)
def test_cp_voltage_bands(volts: float, level: Level) -> None:
    assert classify(volts) is level


# ------------------------------------------------------------------ the basic session


def test_starts_in_a1_with_everything_off() -> None:
    rig = Rig()
    assert rig.state is CpState.A1
    out = rig.fsm.outputs
    assert out.pilot is PilotMode.PLUS_12 and out.duty_percent is None
    assert not out.contactor_closed and not out.lock_locked


def test_plug_in_without_authorization_stays_b1() -> None:
    rig = Rig().cp("B")
    assert rig.state is CpState.B1
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12


def test_authorization_offers_current_and_locks() -> None:
    rig = Rig().cp("B").authorize()
    assert rig.state is CpState.B2
    assert rig.fsm.outputs.duty_percent == pytest.approx(32 / 0.6, abs=0.01)
    assert rig.fsm.outputs.lock_locked


def test_c2_closes_contactor_in_the_same_step() -> None:
    rig = Rig().cp("B").authorize()
    rig.cp("C")  # no time passes: well within the 3 s of Table A.6
    assert rig.state is CpState.C2 and rig.closed
    assert ContactorChanged(True, "C2 authorized") in rig.events


def test_c_to_b_opens_contactor_in_the_same_step() -> None:
    rig = Rig().charging()
    rig.cp("B")  # no time passes: well within the 100 ms of Table A.6
    assert not rig.closed and rig.state is CpState.B2


def test_unplug_ends_session_and_unlocks() -> None:
    rig = Rig().charging().cp("B").cp("A")
    assert rig.state is CpState.A1
    assert not rig.fsm.authorized and not rig.fsm.outputs.lock_locked
    assert any(isinstance(e, SessionEnded) for e in rig.events)


def test_unplug_under_load_opens_at_once() -> None:
    rig = Rig().charging().cp("A")
    assert not rig.closed and rig.state is CpState.A1


def test_full_session_state_sequence() -> None:
    rig = Rig().charging().cp("B").cp("A")
    states = [e.state for e in rig.events if isinstance(e, StateChanged)]
    assert states == [CpState.B1, CpState.B2, CpState.C2, CpState.B2, CpState.A1]


def test_c_without_authorization_is_c1_and_open() -> None:
    rig = Rig().cp("B").cp("C")
    assert rig.state is CpState.C1 and not rig.closed
    rig.authorize()
    assert rig.state is CpState.C2 and rig.closed


def test_no_lock_fitted_still_charges() -> None:
    rig = Rig(lock=False).charging()
    assert rig.closed and not rig.fsm.outputs.lock_locked


# ------------------------------------------------------------------ state D


def test_d_without_ventilation_does_not_close() -> None:
    rig = Rig().cp("B").authorize().cp("D")
    assert rig.state is CpState.D2 and not rig.closed
    assert Fault.VENTILATION_UNAVAILABLE in rig.faults_raised()


def test_d_with_ventilation_closes() -> None:
    rig = Rig(vent=True).cp("B").authorize().cp("D")
    assert rig.state is CpState.D2 and rig.closed


# ------------------------------------------------------------------ current limits


def test_limit_below_6_a_is_rejected() -> None:
    rig = Rig()
    with pytest.raises(DutyError, match=r"5\.9 A cannot be encoded"):
        rig.fsm.set_current_limit(0.0, 5.9)


def test_limit_zero_removes_pwm() -> None:
    rig = Rig().cp("B").authorize()
    rig.fsm.set_current_limit(rig.now, 0)
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12 and rig.state is CpState.B1


def test_limit_is_capped_by_hardware() -> None:
    rig = Rig(max_current_a=16).cp("B").authorize()
    rig.fsm.set_current_limit(0.0, 32)
    assert rig.fsm.outputs.duty_percent == pytest.approx(16 / 0.6, abs=0.01)


def test_duty_change_at_most_every_5_s_while_charging() -> None:
    rig = Rig().charging().at(10.0)
    rig.fsm.set_current_limit(10.0, 20)
    assert rig.fsm.outputs.duty_percent == pytest.approx(20 / 0.6, abs=0.01)
    rig.at(12.0)
    rig.fsm.set_current_limit(12.0, 32)  # too soon after the last change: deferred
    assert rig.fsm.outputs.duty_percent == pytest.approx(20 / 0.6, abs=0.01)
    rig.at(14.99)
    assert rig.fsm.outputs.duty_percent == pytest.approx(20 / 0.6, abs=0.01)
    rig.at(15.0)
    assert rig.fsm.outputs.duty_percent == pytest.approx(32 / 0.6, abs=0.01)


def test_safety_reduction_is_not_rate_limited() -> None:
    rig = Rig().charging().at(10.0)
    rig.fsm.set_current_limit(10.0, 20)
    rig.at(11.0)
    rig.fsm.set_current_limit(11.0, 10, safety=True)
    assert rig.fsm.outputs.duty_percent == pytest.approx(10 / 0.6, abs=0.01)


def test_duty_changes_freely_before_charging() -> None:
    rig = Rig().cp("B").authorize()
    rig.fsm.set_current_limit(0.0, 10)
    rig.fsm.set_current_limit(0.1, 20)
    assert rig.fsm.outputs.duty_percent == pytest.approx(20 / 0.6, abs=0.01)


def test_ev_gets_5_s_to_follow_a_lower_duty() -> None:
    rig = Rig().charging().current(32).at(10.0)
    rig.fsm.set_current_limit(10.0, 16)
    rig.at(10.0 + EV_FOLLOW_DUTY_S - 0.01).current(32)
    assert rig.closed
    rig.at(10.0 + EV_FOLLOW_DUTY_S).current(32)
    assert not rig.closed
    assert Fault.EV_IGNORED_REDUCTION in rig.faults_raised()
    assert any(isinstance(e, ChargingStopped) for e in rig.events)


def test_ev_that_follows_the_lower_duty_keeps_charging() -> None:
    rig = Rig().charging().current(32).at(10.0)
    rig.fsm.set_current_limit(10.0, 16)
    rig.at(12.0).current(16).at(20.0).current(16)
    assert rig.closed and not rig.faults_raised()


def test_overcurrent_sustained_7_s_stops() -> None:
    rig = Rig(max_current_a=16).charging()
    threshold = (16 + 0.5) * 1.1  # 18.15 A
    rig.at(1.0).current(threshold + 0.05)
    rig.at(1.0 + OVERCURRENT_SUSTAIN_S - 0.01).current(threshold + 0.05)
    assert rig.closed
    rig.at(1.0 + OVERCURRENT_SUSTAIN_S).current(threshold + 0.05)
    assert not rig.closed and Fault.OVERCURRENT in rig.faults_raised()


def test_overcurrent_below_threshold_or_interrupted_keeps_charging() -> None:
    rig = Rig(max_current_a=16).charging()
    rig.at(1.0).current(18.1).at(20.0).current(18.1)  # under 18.15 A
    rig.at(21.0).current(19).at(27.0).current(16).at(28.0).current(19).at(34.0).current(19)
    assert rig.closed and not rig.faults_raised()


# ------------------------------------------------------------------ stop


def test_stop_removes_pwm_and_opens_when_ev_leaves_c() -> None:
    rig = Rig().charging()
    rig.fsm.stop(rig.now)
    rig.cp("C")
    assert rig.state is CpState.C1 and rig.closed  # EV still drawing: do not break load
    rig.cp("B")
    assert not rig.closed and rig.state is CpState.B1


def test_stop_opens_anyway_after_6_s_in_c1() -> None:
    rig = Rig().charging().at(1.0)
    rig.fsm.stop(1.0)
    rig.at(1.0 + EV_STOP_ON_X1_S - 0.01)
    assert rig.closed
    rig.at(1.0 + EV_STOP_ON_X1_S)
    assert not rig.closed


def test_stopped_session_needs_new_authorization() -> None:
    rig = Rig().charging()
    rig.fsm.stop(rig.now)
    rig.cp("B").cp("C")
    assert not rig.closed
    rig.authorize()
    assert rig.closed


# ------------------------------------------------------------------ faults


def test_missing_negative_level_is_a_diode_fault() -> None:
    rig = Rig().cp("B").authorize()
    rig.diode_short = True
    rig.cp("C")
    assert rig.state is CpState.F and not rig.closed
    assert Fault.DIODE in rig.faults_raised()


def test_diode_fault_retries_after_hold_time() -> None:
    rig = Rig().cp("B").authorize()
    rig.diode_short = True
    rig.at(1.0).cp("B")
    assert rig.state is CpState.F
    rig.at(1.0 + FAULT_RETRY_S - 0.01)
    assert rig.state is CpState.F
    rig.diode_short = False
    rig.at(1.0 + FAULT_RETRY_S).cp("B")
    assert rig.state is CpState.B2
    assert any(isinstance(e, FaultCleared) and e.fault is Fault.DIODE for e in rig.events)


def test_cp_short_to_ground_is_state_e() -> None:
    rig = Rig().charging().cp("E")
    assert rig.state is CpState.E and not rig.closed
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12
    assert Fault.CP_SHORT in rig.faults_raised()
    rig.cp("B")
    assert rig.state is CpState.B2


def test_rcd_trip_opens_and_holds_f_until_cleared() -> None:
    rig = Rig().charging()
    rig.fsm.rcd(rig.now, True)
    rig._settle()
    assert rig.state is CpState.F and not rig.closed
    rig.at(100.0).cp("C")
    assert rig.state is CpState.F and not rig.closed
    rig.fsm.rcd(100.0, False)
    rig._settle()
    rig.cp("C")
    assert rig.state is CpState.C2 and rig.closed


def test_welded_contactor_is_a_fault_and_keeps_the_lock() -> None:
    rig = Rig().charging()
    rig.contactor_welded = True
    rig.cp("B")
    assert not rig.closed  # we commanded open
    rig.at(FEEDBACK_TIMEOUT_S)
    assert Fault.CONTACTOR_WELDED in rig.faults_raised() and rig.state is CpState.F
    rig.at(10.0)
    assert rig.fsm.outputs.lock_locked
    assert rig.fsm.request_lock(10.0, False) is not None


def test_contactor_that_does_not_close_is_a_fault() -> None:
    rig = Rig().cp("B").authorize()
    rig.contactor_stuck_open = True
    rig.cp("C").at(FEEDBACK_TIMEOUT_S)
    assert Fault.CONTACTOR_NOT_CLOSING in rig.faults_raised()
    assert not rig.closed


def test_lock_before_close() -> None:
    rig = Rig().cp("B").authorize()
    rig.lock_jammed = True
    rig.fsm.lock_feedback(0.0, False)
    rig.cp("C")
    assert not rig.closed
    rig.at(FEEDBACK_TIMEOUT_S)
    assert Fault.LOCK_FAILURE in rig.faults_raised() and not rig.closed


def test_unlock_only_with_contactor_open() -> None:
    rig = Rig().charging()
    assert rig.fsm.request_lock(rig.now, False) == (
        "the contactor is closed; the connector unlocks only with it open"
    )
    rig.cp("B")
    assert rig.fsm.request_lock(rig.now, False) is None
    rig._settle()
    assert not rig.fsm.outputs.lock_locked


def test_forced_error_and_fault_states() -> None:
    rig = Rig().charging()
    rig.fsm.set_pwm_request(rig.now, hlc=False, current_a=16, error=True, fault=False)
    rig._settle()
    assert rig.state is CpState.E and not rig.closed
    assert rig.fsm.outputs.pilot is PilotMode.ZERO
    rig.fsm.set_pwm_request(rig.now, hlc=False, current_a=16, error=True, fault=True)
    rig._settle()
    assert rig.state is CpState.F and rig.fsm.outputs.pilot is PilotMode.MINUS_12
    rig.fsm.set_pwm_request(rig.now, hlc=False, current_a=16, error=False, fault=False)
    rig.cp("C")
    assert rig.state is CpState.C2 and rig.closed


def test_hlc_gives_5_percent_and_still_needs_authorization() -> None:
    rig = Rig().cp("B")
    rig.fsm.set_pwm_request(0.0, hlc=True, current_a=None, error=False, fault=False)
    rig._settle()
    assert rig.state is CpState.B2 and rig.fsm.outputs.duty_percent == 5.0
    rig.cp("C")
    assert not rig.closed
    rig.authorize()
    assert rig.closed


def test_a_basic_request_of_0_a_turns_the_pwm_off_after_hlc() -> None:
    """Josev API cp_pwm: hlc false with current 0 is 100 % (PWM off, EVSE not ready),
    also when the duty was the 5 % of digital communication."""
    rig = Rig()
    rig.fsm = Iec61851(
        max_current_a=32, has_lock=True, ventilation_available=False, now=0.0, pwm_by_request=True
    )
    rig.cp("B").authorize()
    rig.fsm.set_pwm_request(0.0, hlc=True, current_a=None, error=False, fault=False)
    rig._settle()
    assert rig.state is CpState.B2 and rig.fsm.outputs.duty_percent == 5.0
    rig.fsm.set_pwm_request(0.0, hlc=False, current_a=0, error=False, fault=False)
    rig._settle()
    assert rig.state is CpState.B1 and rig.fsm.outputs.duty_percent is None
    rig.cp("C")
    assert not rig.closed


def test_unavailable_offers_no_current() -> None:
    rig = Rig()
    rig.fsm.set_available(0.0, False)
    rig.cp("B").authorize()
    assert rig.state is CpState.B1
    rig.fsm.set_available(0.0, True)
    rig._settle()
    assert rig.state is CpState.B2


def test_invalid_hardware_limit_is_rejected() -> None:
    with pytest.raises(DutyError):
        Iec61851(max_current_a=100, has_lock=False, ventilation_available=False, now=0.0)


def test_only_measurements_after_the_grace_period_count() -> None:
    rig = Rig().charging().current(32).at(10.0)
    rig.fsm.set_current_limit(10.0, 16)
    rig.at(14.9).current(32)  # still allowed: within the 5 s
    rig.at(15.5)  # deadline passed, but no measurement since: nothing to judge yet
    assert rig.closed
    rig.current(32)
    assert not rig.closed and Fault.EV_IGNORED_REDUCTION in rig.faults_raised()


def test_hlc_station_waits_for_the_slac_service_to_choose_the_duty() -> None:
    rig = Rig()
    rig.fsm = Iec61851(
        max_current_a=32, has_lock=True, ventilation_available=False, now=0.0, pwm_by_request=True
    )
    rig.cp("B").authorize()
    assert rig.state is CpState.B1  # authorized, but no basic PWM until asked
    rig.fsm.set_pwm_request(0.0, hlc=True, current_a=None, error=False, fault=False)
    rig._settle()
    assert rig.fsm.outputs.duty_percent == 5.0
    rig.fsm.set_pwm_request(0.0, hlc=False, current_a=16, error=False, fault=False)
    rig.cp("C")
    assert rig.fsm.outputs.duty_percent == pytest.approx(26.67) and rig.closed
