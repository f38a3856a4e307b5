"""Deadlines of the SLAC state machine (reliability issue, defect 14).

A driver sleeps until `next_deadline()` and then ticks; if a tick leaves a deadline at or
before `now`, the driver wakes again at once and spins.
"""

from __future__ import annotations

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from tests.support.slac_rig import PEV_A, RUN_A, Rig


def drive(rig: Rig, until: float, *, limit: int = 100) -> int:
    """Ticks at every deadline up to `until`, as the driver would; returns the wake-ups.
    After each tick the next deadline must be later, or the driver would spin."""
    wakeups = 0
    while (deadline := rig.slac.next_deadline()) is not None and deadline <= until:
        rig.at(max(deadline, rig.now))
        wakeups += 1
        after = rig.slac.next_deadline()
        assert after is None or after > rig.now, f"busy-spin: deadline {after} at {rig.now}"
        assert wakeups <= limit
    return wakeups


def test_atten_char_rsp_during_a_long_validation_does_not_spin() -> None:
    """The fuzzer's case: ~9,400 wake-ups in 10 s."""
    rig = Rig().start_ready().sounded()  # CM_ATTEN_CHAR.IND sent
    rig.validate(timer_100ms=90)  # the EV validates for 9 s before answering the IND
    rig.now = 0.05
    rig.atten_rsp()  # WAIT_MATCH while the validation timer runs
    wakeups = drive(rig, until=9.15)
    assert rig.sent_of(mme.CmValidateCnf) == [(PEV_A, mme.CmValidateCnf(0, 0, 3))]
    assert wakeups <= 2 and not rig.events_of(fsm.RunFailed)
    # after the CNF the EV has TT_match_sequence for its CM_SLAC_MATCH.REQ
    rig.at(rig.now + fsm.TT_MATCH_SEQUENCE_S - 0.01).match_req()
    assert rig.slac.matched


def test_no_match_req_after_the_validation_ends_the_run_in_time() -> None:
    rig = Rig().start_ready().sounded().atten_rsp().validate(timer_100ms=20)
    drive(rig, until=5.0)
    assert rig.events_of(fsm.RunFailed) == [
        fsm.RunFailed(RUN_A, "no CM_SLAC_MATCH.REQ within TT_match_sequence")
    ]
    failed_at = rig.now
    assert abs(failed_at - (2.0 + fsm.TP_VALIDATE_MARGIN_S + fsm.TT_MATCH_SEQUENCE_S)) < 1e-9


def test_the_session_limit_fires_at_its_deadline_in_floating_point() -> None:
    """6.01 + 10 - 6.01 < 10 in binary floating point: comparing `now - started >= 10`
    with a deadline of `started + 10` did not end the run at that deadline."""
    rig = Rig().start_ready()
    rig.now = 6.01
    rig.parm().validate(timer_100ms=255)  # keeps the run's other waits out of the way
    assert rig.slac.next_deadline() == 6.01 + fsm.TT_EVSE_MATCH_SESSION_S
    rig.tick_at_deadline()
    assert rig.events_of(fsm.RunFailed) == [
        fsm.RunFailed(RUN_A, "no match within TT_EVSE_match_session (10 s)")
    ]
    after = rig.slac.next_deadline()
    assert after is None or after > rig.now


def test_deadlines_that_fall_due_together_are_all_acted_on_in_one_tick() -> None:
    rig = Rig(slac_init_s=1.0).start_ready().parm()
    rig.at(5.0)  # the driver was late: the run's wait and the give-up are both over
    assert rig.events_of(fsm.RunFailed)
    assert rig.events_of(fsm.Failed)
    assert rig.slac.next_deadline() is None or rig.slac.next_deadline() > 5.0  # type: ignore[operator]


def test_a_whole_match_needs_few_wakeups() -> None:
    rig = Rig().start_ready().sounded().atten_rsp().match_req()
    wakeups = drive(rig, until=fsm.TT_MATCH_JOIN_S)
    assert wakeups == round(fsm.TT_MATCH_JOIN_S / fsm.LINK_POLL_INTERVAL_S)  # polls, then fail
    assert rig.events_of(fsm.Failed)
