"""The EVSE SLAC state machine with an injected clock: phases, timers, retries, faults."""

from __future__ import annotations

import pytest

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.protocols.slac.evse import SlacEvse, SlacSettings
from charger.protocols.slac.keys import nid_from_nmk
from tests.support.slac_rig import EVSE_MAC, MODEM, NMK, PEV_A, PEV_B, RUN_A, RUN_B, Rig


def test_start_puts_a_fresh_key_into_the_local_modem() -> None:
    rig = Rig().knows_modem()
    rig.sent.clear()
    rig.events.clear()
    rig.slac.start(0.0)
    rig.collect()
    [(dst, req)] = rig.sent
    assert dst == mme.LOCAL_MODEM and isinstance(req, mme.CmSetKeyReq)
    assert req.new_key == NMK and req.nid == bytes.fromhex("026bcba5354e08")
    assert (req.key_type, req.pid, req.new_eks) == (0x01, 0x04, 0x01)
    rig.rx(MODEM, mme.CmSetKeyCnf(1, bytes(4), bytes(4), 4, 0, 0, 0))
    assert rig.events == [fsm.KeySet(nid_from_nmk(NMK))]


def test_modem_firmware_query() -> None:
    rig = Rig()
    rig.slac.query_modem()
    rig.collect()
    assert rig.sent == [(mme.LOCAL_MODEM, mme.VsSwVerReq())]
    rig.rx(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0"))
    assert rig.events == [fsm.ModemInfo("MAC-QCA7000-1.1.0", MODEM)]
    assert rig.slac.modem_mac == MODEM


def test_each_start_draws_a_new_random_key() -> None:
    slac = SlacEvse(SlacSettings(evse_mac=EVSE_MAC))
    slac.start(0.0)
    first = slac.nmk
    slac.start(1.0)
    assert len(first) == 16 and slac.nmk != first and slac.nid == nid_from_nmk(slac.nmk)


def test_set_key_is_retried_then_the_modem_is_reset() -> None:
    rig = Rig().started()
    rig.at(fsm.SET_KEY_TIMEOUT_S)  # no answer: second attempt
    rig.rx(MODEM, mme.CmSetKeyCnf(0, bytes(4), bytes(4), 4, 0, 0, 0))  # refused: third
    assert len(rig.sent_of(mme.CmSetKeyReq)) == 3
    rig.at(fsm.SET_KEY_TIMEOUT_S * 2 + 0.01)
    assert rig.events_of(fsm.ModemReset) == [
        fsm.ModemReset(f"no CM_SET_KEY.CNF after {fsm.SET_KEY_ATTEMPTS} attempts")
    ]
    assert rig.sent_of(mme.VsRsDevReq) == [(mme.LOCAL_MODEM, mme.VsRsDevReq())]
    rig.at(1.0 + fsm.MODEM_RESET_WAIT_S)
    assert len(rig.sent_of(mme.CmSetKeyReq)) == 3  # still booting
    rig.at(1.01 + fsm.MODEM_RESET_WAIT_S)
    assert len(rig.sent_of(mme.CmSetKeyReq)) == 4  # the modem is back: try again


def test_a_whole_match() -> None:
    rig = Rig().start_ready()
    rig.parm()
    [(dst, cnf)] = rig.sent_of(mme.CmSlacParmCnf)
    assert dst == PEV_A and cnf == mme.CmSlacParmCnf(mme.BROADCAST, 10, 6, 1, PEV_A, 0, 0, RUN_A)
    assert rig.events_of(fsm.Matching) == [fsm.Matching(RUN_A, PEV_A)]
    rig.start_atten()
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.SOUNDING
    for i in range(10):
        rig.profile(value=10 if i % 2 else 20)
    [(dst, ind)] = rig.sent_of(mme.CmAttenCharInd)
    assert isinstance(ind, mme.CmAttenCharInd)
    assert dst == PEV_A and ind.num_sounds == 10 and ind.aag == bytes([15]) * 58
    assert ind.source_address == PEV_A and ind.run_id == RUN_A
    rig.atten_rsp()
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_MATCH
    rig.match_req()
    [(dst, match)] = rig.sent_of(mme.CmSlacMatchCnf)
    assert isinstance(match, mme.CmSlacMatchCnf)
    assert dst == PEV_A and match.nmk == NMK and match.nid == nid_from_nmk(NMK)
    assert (match.evse_mac, match.pev_mac, match.run_id, match.mvf_length) == (
        EVSE_MAC,
        PEV_A,
        RUN_A,
        0x56,
    )
    assert rig.events_of(fsm.Matched) == [fsm.Matched(RUN_A, PEV_A, NMK, nid_from_nmk(NMK))]
    rig.at(fsm.LINK_POLL_INTERVAL_S)
    assert rig.sent_of(mme.VsPlLnkStatusReq) == [(mme.LOCAL_MODEM, mme.VsPlLnkStatusReq())]
    rig.rx(MODEM, mme.VsPlLnkStatusCnf(0, 0))
    assert not rig.events_of(fsm.LinkEstablished)
    rig.rx(MODEM, mme.VsPlLnkStatusCnf(0, 1))
    assert rig.events_of(fsm.LinkEstablished) == [fsm.LinkEstablished(RUN_A)]


def test_lost_sounds_end_sounding_at_the_timeout() -> None:
    rig = Rig().start_ready().parm().start_atten()
    for _ in range(8):
        rig.profile()
    rig.at(0.59)
    assert not rig.sent_of(mme.CmAttenCharInd)
    rig.at(0.6)
    [(_, ind)] = rig.sent_of(mme.CmAttenCharInd)
    assert isinstance(ind, mme.CmAttenCharInd) and ind.num_sounds == 8


def test_lost_start_atten_char_is_tolerated() -> None:
    rig = Rig().start_ready().parm()
    for _ in range(10):
        rig.profile()
    assert len(rig.sent_of(mme.CmAttenCharInd)) == 1


def test_repeated_parm_req_gets_the_same_answer_once_per_request() -> None:
    rig = Rig().start_ready().parm().parm()
    assert len(rig.sent_of(mme.CmSlacParmCnf)) == 2 and len(rig.events_of(fsm.Matching)) == 1


def test_atten_char_ind_is_repeated_then_the_run_fails() -> None:
    rig = Rig().start_ready().sounded()
    rig.at(fsm.TT_MATCH_RESPONSE_S)
    rig.at(fsm.TT_MATCH_RESPONSE_S * 2)
    assert len(rig.sent_of(mme.CmAttenCharInd)) == 1 + fsm.C_EV_MATCH_RETRY
    rig.at(fsm.TT_MATCH_RESPONSE_S * 3)
    [failed] = rig.events_of(fsm.RunFailed)
    assert failed == fsm.RunFailed(RUN_A, "no CM_ATTEN_CHAR.RSP after 3 CM_ATTEN_CHAR.IND")


def test_two_evs_at_once_do_not_mix() -> None:
    rig = Rig().start_ready()
    rig.parm(PEV_A, RUN_A).parm(PEV_B, RUN_B).start_atten(PEV_A, RUN_A).start_atten(PEV_B, RUN_B)
    for _ in range(10):
        rig.profile(PEV_A, 10).profile(PEV_B, 30)
    inds = {m.run_id: m for _, m in rig.sent_of(mme.CmAttenCharInd)}
    assert inds[RUN_A].aag == bytes([10]) * 58 and inds[RUN_B].aag == bytes([30]) * 58
    rig.atten_rsp(PEV_A, RUN_A).atten_rsp(PEV_B, RUN_B).match_req(PEV_B, RUN_B)
    assert rig.events_of(fsm.RunFailed) == [fsm.RunFailed(RUN_A, "another EV matched this EVSE")]
    assert [e.run_id for e in rig.events_of(fsm.Matched)] == [RUN_B]


def test_no_ev_within_slac_init_fails() -> None:
    rig = Rig(slac_init_s=20.0).start_ready()
    rig.at(19.9)
    assert not rig.events_of(fsm.Failed)
    rig.at(20.0)
    assert rig.events_of(fsm.Failed) == [
        fsm.Failed("no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init (20 s)")
    ]
    assert not rig.slac.active


def test_failing_runs_give_up_after_slac_init() -> None:
    rig = Rig(slac_init_s=20.0).start_ready().sounded()
    for t in (0.2, 0.4, 0.61):  # no ATTEN_CHAR.RSP: the EV refused (attenuation out of range)
        rig.at(t)
    assert len(rig.events_of(fsm.RunFailed)) == 1
    rig.at(20.0)
    assert rig.events_of(fsm.Failed) == [
        fsm.Failed("no match within TT_EVSE_SLAC_init (20 s), 1 matching run(s) failed")
    ]


def test_a_run_must_match_within_the_session_time() -> None:
    rig = Rig().start_ready().parm()
    rig.slac.receive(0.0, mme.Frame(EVSE_MAC, PEV_A, mme.CmValidateReq(0, 100, 1)))
    rig.at(fsm.TT_EVSE_MATCH_SESSION_S)
    assert rig.events_of(fsm.RunFailed)[0].reason.startswith(
        "no match within TT_EVSE_match_session"
    )


def test_validation_counts_bcb_toggles() -> None:
    rig = Rig().start_ready().sounded().atten_rsp()
    rig.rx(PEV_A, mme.CmValidateReq(0, 0, 1))
    assert rig.sent_of(mme.CmValidateCnf) == [(PEV_A, mme.CmValidateCnf(0, 0, 1))]
    rig.rx(PEV_A, mme.CmValidateReq(0, 10, 1))  # toggle for 1 s
    for t in (0.2, 0.4, 0.6):
        rig.now = t
        rig.slac.cp_state(t, "C2")
        rig.slac.cp_state(t + 0.1, "B2")
    rig.at(1.09)
    assert len(rig.sent_of(mme.CmValidateCnf)) == 1
    rig.at(1.1)
    assert rig.sent_of(mme.CmValidateCnf)[-1] == (PEV_A, mme.CmValidateCnf(0, 3, 2))
    rig.match_req()
    assert rig.events_of(fsm.Matched)


def test_ev_that_does_not_join_the_avln_fails() -> None:
    rig = Rig().start_ready().sounded().atten_rsp().match_req()
    for step in range(1, 24):
        rig.at(step * fsm.LINK_POLL_INTERVAL_S)
    assert len(rig.sent_of(mme.VsPlLnkStatusReq)) == 23 and not rig.events_of(fsm.Failed)
    rig.at(fsm.TT_MATCH_JOIN_S)
    assert rig.events_of(fsm.Failed) == [
        fsm.Failed("the EV did not join the AVLN within TT_match_join (12 s)")
    ]


@pytest.mark.parametrize(
    ("message", "what"),
    [
        (mme.CmSlacParmReq(0, 1, RUN_A, (1,)), "public-key security"),
        (mme.CmSlacParmReq(3, 0, RUN_A), "application type 3"),
        (
            mme.CmSlacMatchReq(0, 0, 0x3E, bytes(17), PEV_A, bytes(17), EVSE_MAC, RUN_A),
            "unknown or early run",
        ),
    ],
)
def test_messages_that_are_not_for_us_are_ignored(message: mme.Mme, what: str) -> None:
    rig = Rig().start_ready().rx(PEV_A, message)
    [ignored] = rig.events_of(fsm.Ignored)
    assert what in ignored.what
    assert not rig.sent_of(mme.CmSlacParmCnf) and not rig.sent_of(mme.CmSlacMatchCnf)


def test_inactive_evse_ignores_slac_and_stop_forgets_runs() -> None:
    rig = Rig()
    rig.parm()
    assert rig.events_of(fsm.Ignored) and not rig.sent
    rig.start_ready().parm()
    rig.slac.stop(0.0)
    assert rig.slac.run_phase(RUN_A) is None and not rig.slac.active


def test_run_without_start_atten_or_sounds_times_out() -> None:
    rig = Rig().start_ready().parm()
    rig.at(fsm.TT_MATCH_SEQUENCE_S - 0.01)
    assert not rig.events_of(fsm.RunFailed)
    rig.at(fsm.TT_MATCH_SEQUENCE_S)
    assert rig.events_of(fsm.RunFailed) == [
        fsm.RunFailed(RUN_A, "no CM_START_ATTEN_CHAR.IND or sound within TT_match_sequence")
    ]


def test_run_without_match_req_times_out() -> None:
    rig = Rig().start_ready().sounded().atten_rsp()
    rig.at(fsm.TT_MATCH_SEQUENCE_S + 0.01)
    assert rig.events_of(fsm.RunFailed) == [
        fsm.RunFailed(RUN_A, "no CM_SLAC_MATCH.REQ within TT_match_sequence")
    ]


def test_link_local_address_is_the_modified_eui64_of_the_mac() -> None:
    from charger.protocols.slac.link import link_local_from_mac

    assert link_local_from_mac(bytes.fromhex("020000 00ee01".replace(" ", ""))) == (
        "fe80::ff:fe00:ee01"
    )
    assert link_local_from_mac(bytes.fromhex("00b052123456")) == "fe80::2b0:52ff:fe12:3456"


def test_next_deadline_is_always_one_tick_acts_on() -> None:
    """Ticking at next_deadline() must move it on, or a driver would spin."""
    rig = Rig(slac_init_s=20.0).start_ready().sounded().atten_rsp().match_req()
    rig.rx(MODEM, mme.VsPlLnkStatusCnf(0, 1))  # matched and linked: nothing left to time
    assert rig.slac.next_deadline() is None
    rig = Rig(slac_init_s=1.0).start_ready().parm()  # a run in progress past the give-up
    seen = []
    for _ in range(50):
        deadline = rig.slac.next_deadline()
        if deadline is None:
            break
        assert deadline not in seen, "tick did not move the deadline on"
        seen.append(deadline)
        rig.at(deadline)
    assert rig.slac.next_deadline() is None and rig.events_of(fsm.Failed)
