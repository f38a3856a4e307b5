"""The IEC 61851-1 machine's board-facing rules: the proximity pilot of a socket outlet
(Annex B, Table B.2), contactor feedback within 250 ms, drop-outs and the minimum time
between closings, the RCD self-test before each session, and a meter that stops answering.
Driven with an injected clock and hardware that does what it is told."""

from __future__ import annotations

import math

import pytest

from charger.cs.iec61851 import (
    CONTACTOR_FEEDBACK_S,
    PP_OPEN_FAULT_S,
    ChargingStopped,
    CpState,
    Fault,
    FaultCleared,
    FaultRaised,
    Iec61851,
    PilotMode,
    SessionEnded,
    cable_capacity_a,
)
from charger.cs.pwm import duty_for_current

LEVEL_V = {"A": 12.0, "B": 9.0, "C": 6.0}
RC = {13: 1500.0, 20: 680.0, 32: 220.0, 63: 100.0}  # Table B.2, nominal


class Rig:
    def __init__(self, **kwargs: object) -> None:
        self.now = 0.0
        args: dict[str, object] = {
            "max_current_a": 32.0,
            "has_lock": True,
            "ventilation_available": False,
            "now": 0.0,
        }
        args.update(kwargs)
        self.fsm = Iec61851(**args)  # type: ignore[arg-type]
        self.feedback: bool | None = None  # None: the auxiliary contact follows
        self.events: list[object] = []
        self.settle()

    def settle(self) -> Rig:
        for _ in range(4):
            out = self.fsm.outputs
            fb = out.contactor_closed if self.feedback is None else self.feedback
            self.fsm.contactor_feedback(self.now, fb)
            self.fsm.lock_feedback(self.now, out.lock_locked)
            if self.fsm.outputs == out:
                break
        self.events += self.fsm.drain_events()
        return self

    def at(self, t: float) -> Rig:
        self.now = t
        self.fsm.tick(t)
        return self.settle()

    def cp(self, level: str) -> Rig:
        out = self.fsm.outputs
        positive = LEVEL_V[level]
        pwm = out.pilot is PilotMode.PWM
        self.fsm.pilot(self.now, positive, -12.0 if pwm else positive, out.duty_percent or 100.0)
        return self.settle()

    def pp(self, ohm: float) -> Rig:
        self.fsm.proximity(self.now, ohm)
        return self.settle()

    def authorize(self) -> Rig:
        self.fsm.authorize(self.now, True)
        return self.settle()

    @property
    def closed(self) -> bool:
        return self.fsm.outputs.contactor_closed

    def raised(self) -> list[Fault]:
        return [e.fault for e in self.events if isinstance(e, FaultRaised)]


# ------------------------------------------------------------------ proximity pilot


@pytest.mark.parametrize(
    ("ohm", "amps"),
    [
        (0.0, None),  # short
        (74.9, None),
        (75.0, 63.0),
        (100.0, 63.0),  # nominal Rc, Table B.2
        (149.9, 63.0),
        (150.0, 32.0),  # a boundary takes the lower current
        (220.0, 32.0),
        (330.0, 20.0),
        (680.0, 20.0),
        (1000.0, 13.0),
        (1500.0, 13.0),
        (2200.0, 13.0),
        (2200.1, None),  # no plug / unknown coding
        (math.inf, None),
    ],
)
def test_pp_resistance_gives_the_cable_capacity(ohm: float, amps: float | None) -> None:
    assert cable_capacity_a(ohm) == amps


@pytest.mark.parametrize("cable_a", [13, 20, 32, 63])
def test_socket_outlet_never_offers_more_than_the_cable(cable_a: int) -> None:
    rig = Rig(socket_outlet=True).pp(RC[cable_a]).cp("B").authorize()
    offered = min(32.0, cable_a)
    assert rig.fsm.outputs.duty_percent == pytest.approx(duty_for_current(offered))
    assert rig.fsm.max_offer_a == offered
    rig.cp("C")
    assert rig.closed
    # A service asking for more still gets the cable's capacity at most.
    rig.fsm.set_current_limit(rig.now, 32.0)
    assert rig.fsm.announced_current_a == offered


def test_fixed_cable_ignores_pp() -> None:
    rig = Rig().pp(RC[13]).cp("B").authorize()
    assert rig.fsm.announced_current_a == 32.0 and rig.fsm.cable_current_a is None


@pytest.mark.parametrize("ohm", [0.0, 40.0])
def test_a_shorted_pp_is_refused(ohm: float) -> None:
    rig = Rig(socket_outlet=True).pp(ohm).cp("B").authorize().cp("C")
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12 and not rig.closed
    assert Fault.PP_INVALID in rig.raised()
    assert rig.fsm.state is CpState.C1
    rig.pp(RC[20])  # a good cable after all (the contact recovered)
    assert Fault.PP_INVALID not in rig.fsm.faults
    assert rig.fsm.outputs.duty_percent == pytest.approx(duty_for_current(20.0))


def test_an_ev_without_pp_is_refused_after_the_grace_time() -> None:
    rig = Rig(socket_outlet=True).cp("B").authorize()  # PP open: the contact is broken
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12
    assert Fault.PP_INVALID not in rig.raised()  # it may be a plug on its way out
    rig.at(PP_OPEN_FAULT_S)
    assert Fault.PP_INVALID in rig.raised()


def test_plug_pulled_at_the_station_opens_the_contactor_at_once() -> None:
    rig = Rig(socket_outlet=True).pp(RC[32]).cp("B").authorize().cp("C")
    assert rig.closed
    rig.pp(math.inf)  # PP breaks first: the contactor opens before CP reaches A
    assert not rig.closed
    assert rig.fsm.outputs.pilot is PilotMode.PLUS_12
    rig.cp("A")
    ended = [e for e in rig.events if isinstance(e, SessionEnded)]
    assert ended == [SessionEnded("station")]
    assert Fault.PP_INVALID not in rig.raised()  # an unplug, not a fault
    assert not rig.fsm.outputs.lock_locked


def test_unplug_at_the_car_leaves_the_cable_in_the_socket_and_unlocks() -> None:
    rig = Rig(socket_outlet=True).pp(RC[32]).cp("B").authorize().cp("C")
    assert rig.fsm.outputs.lock_locked
    rig.cp("A")
    assert [e for e in rig.events if isinstance(e, SessionEnded)] == [SessionEnded("ev")]
    assert not rig.fsm.outputs.lock_locked  # state A: the cable may leave the socket


def test_fixed_cable_does_not_know_where_it_was_unplugged() -> None:
    rig = Rig().cp("B").cp("A")
    assert [e for e in rig.events if isinstance(e, SessionEnded)] == [SessionEnded("unknown")]


def test_socket_outlet_unlocks_only_in_state_a_or_after_the_session() -> None:
    rig = Rig(socket_outlet=True).pp(RC[32]).cp("B").authorize().cp("C").cp("B")
    assert not rig.closed
    reason = rig.fsm.request_lock(rig.now, False)
    assert reason is not None and "session is in progress" in reason
    rig.fsm.stop(rig.now)  # the session ends
    rig.settle()
    assert rig.fsm.request_lock(rig.now, False) is None
    rig.settle()
    assert not rig.fsm.outputs.lock_locked


def test_a_lower_cable_rating_mid_session_reduces_the_offer_at_once() -> None:
    rig = Rig(socket_outlet=True).pp(RC[32]).cp("B").authorize().cp("C")
    rig.at(1.0).pp(RC[13])
    assert rig.fsm.announced_current_a == 13.0  # a safety reduction: no 5 s wait


# ------------------------------------------------------------------ contactor


def test_contactor_feedback_must_follow_within_250_ms() -> None:
    assert CONTACTOR_FEEDBACK_S == 0.25
    rig = Rig().cp("B").authorize()
    rig.feedback = False  # the auxiliary contact never closes
    rig.cp("C")
    rig.at(0.24)
    assert Fault.CONTACTOR_NOT_CLOSING not in rig.raised()
    rig.at(0.25)
    assert Fault.CONTACTOR_NOT_CLOSING in rig.raised() and not rig.closed


def test_contactor_that_stays_closed_after_opening_is_welded_after_250_ms() -> None:
    rig = Rig().cp("B").authorize().cp("C")
    rig.feedback = True
    rig.at(1.0).cp("B")
    rig.at(1.2)
    assert Fault.CONTACTOR_WELDED not in rig.raised()
    rig.at(1.25)
    assert Fault.CONTACTOR_WELDED in rig.raised() and rig.fsm.state is CpState.F


def test_contactor_dropping_out_stops_the_session() -> None:
    rig = Rig().cp("B").authorize().cp("C")
    assert rig.closed
    rig.feedback = False  # opens by itself while commanded closed
    rig.at(0.1)
    assert Fault.CONTACTOR_DROPPED in rig.raised() and not rig.closed
    assert any(isinstance(e, ChargingStopped) for e in rig.events)
    rig.feedback = None
    rig.at(5.0).cp("C")
    assert not rig.closed  # not for this session
    rig.cp("A")
    assert Fault.CONTACTOR_DROPPED not in rig.fsm.faults


def test_minimum_time_between_closings() -> None:
    rig = Rig(contactor_min_off_s=2.0).cp("B").authorize().cp("C")
    assert rig.closed
    rig.at(1.0).cp("B")
    assert not rig.closed
    rig.at(1.5).cp("C")
    assert not rig.closed  # opened 0.5 s ago
    rig.at(2.9)
    assert not rig.closed
    rig.at(3.0)
    assert rig.closed  # 2 s after the opening, on a tick


# ------------------------------------------------------------------ RCD self-test


def test_rcd_self_test_before_each_session() -> None:
    rig = Rig(rcd_self_test=True)
    assert not rig.fsm.rcd_test_due  # no EV: nothing to test for
    rig.cp("B").authorize()
    assert rig.fsm.rcd_test_due
    rig.cp("C")
    assert not rig.closed  # not before the test passed
    rig.fsm.rcd_self_test_result(rig.now, True)
    rig.settle()
    assert rig.closed and not rig.fsm.rcd_test_due
    rig.cp("B").cp("A").cp("B")
    assert rig.fsm.rcd_test_due  # the next session tests again


def test_failed_rcd_self_test_takes_the_evse_out_of_service() -> None:
    rig = Rig(rcd_self_test=True).cp("B").authorize()
    rig.fsm.rcd_self_test_result(rig.now, False)
    rig.settle()
    assert Fault.RCD_SELF_TEST in rig.raised() and rig.fsm.state is CpState.F
    assert not rig.fsm.rcd_test_due  # retried by the controller on its own schedule
    rig.fsm.rcd_self_test_result(rig.now, True)
    rig.settle()
    assert any(isinstance(e, FaultCleared) and e.fault is Fault.RCD_SELF_TEST for e in rig.events)


# ------------------------------------------------------------------ meter


def test_meter_fault_opens_the_contactor_until_it_answers() -> None:
    rig = Rig().cp("B").authorize().cp("C")
    rig.fsm.external_fault(rig.now, Fault.METER, True, "no answer")
    rig.settle()
    assert not rig.closed and Fault.METER in rig.raised()
    rig.fsm.external_fault(rig.now + 2, Fault.METER, False)
    rig.at(rig.now + 2)
    assert rig.closed
