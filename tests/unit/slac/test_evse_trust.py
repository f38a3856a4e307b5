"""Who the SLAC state machine listens to (reliability issue, defects 11, 12, 13 and 15).

Each run belongs to the MAC that opened it; group source addresses are nobody; the
modem's confirmations count only from the modem's address; the NMK goes out only once
the modem holds it.
"""

from __future__ import annotations

import pytest

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from tests.support.slac_rig import EVSE_MAC, IMPOSTOR, MODEM, NMK, PEV_A, RUN_A, Rig

NOT_THE_EV = "which is not that run's EV (02:00:00:00:aa:01)"
GROUPS = [
    mme.BROADCAST,
    bytes.fromhex("01005e0000fb"),  # IPv4 multicast
    bytes.fromhex("333300000001"),  # IPv6 multicast
    bytes.fromhex("03000000aa01"),  # PEV_A's address with the group bit set
]


# ------------------------------------------------------------------ 11: one run, one EV


def test_match_req_from_an_impostor_gets_no_key() -> None:
    rig = Rig().start_ready().sounded().atten_rsp()
    rig.match_req(IMPOSTOR, RUN_A)  # the right RunID from another MAC
    assert not rig.sent_of(mme.CmSlacMatchCnf) and not rig.events_of(fsm.Matched)
    assert rig.ignored() == [
        f"CmSlacMatchReq for run {RUN_A.hex()} from 02:00:00:00:cc:01, {NOT_THE_EV}"
    ]
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_MATCH and not rig.slac.matched
    rig.match_req()  # the EV of the run still matches
    [(dst, cnf)] = rig.sent_of(mme.CmSlacMatchCnf)
    assert dst == PEV_A and cnf.nmk == NMK
    assert [e.pev_mac for e in rig.events_of(fsm.Matched)] == [PEV_A]


def test_impostor_match_req_with_the_evs_mac_in_the_payload_gets_nothing_either() -> None:
    rig = Rig().start_ready().sounded().atten_rsp()
    rig.rx(IMPOSTOR, mme.CmSlacMatchReq(0, 0, 0x3E, bytes(17), PEV_A, bytes(17), EVSE_MAC, RUN_A))
    assert not rig.sent_of(mme.CmSlacMatchCnf) and not rig.slac.matched


def test_repeated_parm_req_from_an_impostor_is_not_answered() -> None:
    rig = Rig().start_ready().parm()
    rig.parm(IMPOSTOR, RUN_A)
    assert [dst for dst, _ in rig.sent_of(mme.CmSlacParmCnf)] == [PEV_A]
    assert rig.events_of(fsm.Matching) == [fsm.Matching(RUN_A, PEV_A)]
    assert NOT_THE_EV in rig.ignored()[0]


def test_start_atten_char_and_sounds_from_an_impostor_do_not_start_sounding() -> None:
    rig = Rig().start_ready().parm()
    rig.start_atten(IMPOSTOR, RUN_A).sound(IMPOSTOR, RUN_A)
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_START_ATTEN
    assert [what.split(" for run")[0] for what in rig.ignored()] == [
        "CmStartAttenCharInd",
        "CmMnbcSoundInd",
    ]
    rig.at(fsm.TT_MATCH_SEQUENCE_S)  # the real EV never started: the run ends
    assert rig.events_of(fsm.RunFailed) == [
        fsm.RunFailed(RUN_A, "no CM_START_ATTEN_CHAR.IND or sound within TT_match_sequence")
    ]


@pytest.mark.parametrize("result", [0, 1])
def test_atten_char_rsp_from_an_impostor_changes_nothing(result: int) -> None:
    rig = Rig().start_ready().sounded()
    rig.atten_rsp(IMPOSTOR, RUN_A, result=result)
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_ATTEN_RSP
    assert not rig.events_of(fsm.RunFailed) and NOT_THE_EV in rig.ignored()[0]
    rig.atten_rsp()
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_MATCH


def test_validate_from_an_impostor_is_not_answered() -> None:
    rig = Rig().start_ready().sounded().atten_rsp()
    rig.validate(IMPOSTOR, 0).validate(IMPOSTOR, 10)
    rig.at(2.0)
    assert not rig.sent_of(mme.CmValidateCnf)
    assert rig.ignored() == ["CM_VALIDATE.REQ from an EV without a run"] * 2


# ------------------------------------------------------------------ 12: group addresses


@pytest.mark.parametrize("group", GROUPS, ids=mme.mac_str)
def test_a_group_source_address_gets_no_answer(group: bytes) -> None:
    rig = Rig().start_ready()
    rig.parm(group, RUN_A).start_atten(group, RUN_A).validate(group, 0).match_req(group, RUN_A)
    assert [type(m) for _, m in rig.sent] == [mme.VsSwVerReq, mme.CmSetKeyReq]  # no answer
    assert not rig.events_of(fsm.Matching) and rig.slac.run_phase(RUN_A) is None
    assert all(
        what.endswith(f"from the group address {mme.mac_str(group)}") for what in rig.ignored()
    )
    assert len(rig.ignored()) == 4


@pytest.mark.parametrize("group", GROUPS[:2], ids=mme.mac_str)
def test_a_group_source_address_is_never_the_modem(group: bytes) -> None:
    rig = Rig()
    rig.slac.query_modem()
    rig.rx(group, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0"))
    assert rig.slac.modem_mac is None and not rig.events_of(fsm.ModemInfo)


# ------------------------------------------------------------------ 13: key before match


def test_match_waits_for_the_modems_set_key_confirmation() -> None:
    rig = Rig().started().sounded().atten_rsp()  # CM_SET_KEY.CNF has not come yet
    rig.match_req()
    assert not rig.sent_of(mme.CmSlacMatchCnf) and not rig.slac.matched
    assert rig.ignored() == ["CM_SLAC_MATCH.REQ before the modem confirmed CM_SET_KEY"]
    assert rig.slac.run_phase(RUN_A) is fsm.Phase.WAIT_MATCH
    rig.now = 0.3
    rig.key_set()
    rig.match_req()  # the EV repeats it
    assert [dst for dst, _ in rig.sent_of(mme.CmSlacMatchCnf)] == [PEV_A]


def test_an_ignored_match_req_keeps_the_run_alive_for_the_evs_repeat() -> None:
    rig = Rig().started().sounded().atten_rsp()
    for t in (0.0, 0.2, 0.4):  # the EV repeats every TT_match_response
        rig.at(t).match_req()
    rig.at(0.55).key_set()
    rig.at(0.6).match_req()
    assert rig.slac.matched and not rig.events_of(fsm.RunFailed)


def test_no_match_after_three_refusals_while_the_modem_is_reset() -> None:
    rig = Rig().started()
    for _ in range(fsm.SET_KEY_ATTEMPTS):
        rig.key_set(result=0)
    assert rig.events_of(fsm.ModemReset)
    rig.sounded().atten_rsp().match_req()
    assert not rig.sent_of(mme.CmSlacMatchCnf) and not rig.slac.key_ready
    assert rig.ignored()[-1] == "CM_SLAC_MATCH.REQ before the modem confirmed CM_SET_KEY"
    rig.rx(MODEM, mme.VsRsDevCnf(0))
    rig.at(fsm.MODEM_RESET_WAIT_S)  # the modem is back: the key again
    assert len(rig.sent_of(mme.CmSetKeyReq)) == fsm.SET_KEY_ATTEMPTS + 1
    rig.parm(run=RUN_A[:7] + b"\x02").start_atten(run=RUN_A[:7] + b"\x02")
    for _ in range(10):
        rig.profile()
    rig.atten_rsp(run=RUN_A[:7] + b"\x02").key_set().match_req(run=RUN_A[:7] + b"\x02")
    assert [dst for dst, _ in rig.sent_of(mme.CmSlacMatchCnf)] == [PEV_A]


def test_a_modem_reset_takes_the_key_away_until_it_is_set_again() -> None:
    rig = Rig().start_ready()
    assert rig.slac.key_ready
    rig.rx(MODEM, mme.VsRsDevCnf(0))  # the modem resets and forgets the NMK
    assert not rig.slac.key_ready
    rig.sounded().atten_rsp().match_req()
    assert not rig.sent_of(mme.CmSlacMatchCnf)
    rig.at(fsm.MODEM_RESET_WAIT_S)
    [_, (_, again)] = rig.sent_of(mme.CmSetKeyReq)
    assert again.new_key == NMK


# ------------------------------------------------------------------ 15: the modem's address


def test_the_modem_address_comes_from_the_answer_to_our_query() -> None:
    rig = Rig()
    rig.rx(IMPOSTOR, mme.VsSwVerCnf(0, 0x22, "fake"))  # nobody asked
    assert rig.slac.modem_mac is None and rig.ignored() == [
        "VsSwVerCnf from 02:00:00:00:cc:01 without a VS_SW_VER.REQ"
    ]
    rig.knows_modem()
    assert rig.slac.modem_mac == MODEM
    rig.slac.query_modem()
    rig.rx(IMPOSTOR, mme.VsSwVerCnf(0, 0x22, "fake"))
    assert rig.slac.modem_mac == MODEM
    assert rig.ignored()[-1].endswith("which is not the modem (00:b0:52:ee:ee:01)")


@pytest.mark.parametrize(
    "confirmation",
    [mme.CmSetKeyCnf(1, bytes(4), bytes(4), 4, 0, 0, 0), mme.VsRsDevCnf(0)],
    ids=["CM_SET_KEY.CNF", "VS_RS_DEV.CNF"],
)
def test_key_confirmations_from_an_ev_do_not_count(confirmation: mme.Mme) -> None:
    rig = Rig().started()
    rig.rx(PEV_A, confirmation)
    assert not rig.slac.key_ready and not rig.events_of(fsm.KeySet)
    assert rig.ignored()[-1].endswith("which is not the modem (00:b0:52:ee:ee:01)")
    rig.key_set()
    rig.rx(PEV_A, confirmation)
    assert rig.slac.key_ready and rig.events_of(fsm.KeySet)
    rig.at(fsm.MODEM_RESET_WAIT_S + 1)
    assert len(rig.sent_of(mme.CmSetKeyReq)) == 1  # no reset was believed


def test_link_status_from_an_ev_does_not_count() -> None:
    rig = Rig().start_ready().sounded().atten_rsp().match_req()
    rig.rx(PEV_A, mme.VsPlLnkStatusCnf(0, 1))
    assert not rig.events_of(fsm.LinkEstablished)
    rig.at(fsm.TT_MATCH_JOIN_S)
    assert rig.events_of(fsm.Failed)


def test_attenuation_profiles_from_an_ev_do_not_count() -> None:
    rig = Rig().start_ready().parm().start_atten()
    for _ in range(10):
        rig.profile(value=5, src=PEV_A)  # the EV forging its own good attenuation
    assert not rig.sent_of(mme.CmAttenCharInd)
    rig.at(0.6)
    [(_, ind)] = rig.sent_of(mme.CmAttenCharInd)
    assert ind.num_sounds == 0


def test_confirmations_before_the_modem_is_known_do_not_count() -> None:
    rig = Rig()
    rig.slac.start(0.0)  # the driver's query was lost: the key request asks again
    rig.collect()
    assert [type(m) for _, m in rig.sent] == [mme.VsSwVerReq, mme.CmSetKeyReq]
    rig.key_set()
    assert not rig.slac.key_ready
    assert rig.ignored() == [
        "CmSetKeyCnf from 00:b0:52:ee:ee:01 before the modem's address is known "
        "(no VS_SW_VER.CNF yet)"
    ]
    rig.rx(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0"))
    rig.at(fsm.SET_KEY_TIMEOUT_S)  # the retry; its confirmation counts
    rig.key_set()
    assert rig.slac.key_ready


def test_the_ev_of_a_run_is_never_taken_for_the_modem() -> None:
    rig = Rig()
    rig.slac.start(0.0)
    rig.collect().parm()
    rig.rx(PEV_A, mme.VsSwVerCnf(0, 0x22, "fake"))
    assert rig.slac.modem_mac is None
    assert rig.ignored()[-1] == "VsSwVerCnf from 02:00:00:00:aa:01, the EV of a run: not the modem"
    rig.key_set(src=PEV_A)
    assert not rig.slac.key_ready


@pytest.mark.parametrize("src", [MODEM, EVSE_MAC], ids=["modem", "ours"])
def test_the_modem_or_we_cannot_open_a_run(src: bytes) -> None:
    rig = Rig().start_ready().parm(src, RUN_A)
    assert not rig.sent_of(mme.CmSlacParmCnf) and rig.slac.run_phase(RUN_A) is None
    assert rig.ignored() == [f"CM_SLAC_PARM.REQ from {mme.mac_str(src)}, the modem's or ours"]
