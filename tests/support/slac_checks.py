"""Checks of the SLAC EVSE state machine's properties, shared by its property tests
(tests/unit/slac/test_evse_properties.py) and the longer fuzz run (fuzz/slac_fsm_fuzz.py)."""

from __future__ import annotations

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from tests.support.slac_rig import MODEM
from tests.support.slac_scenarios import Played, Receive, Sim, Start, Step, Stop

# Deadline wake-ups a scenario may need: the periodic ones (link polls every 0.5 s, key
# attempts, the give-up) are at most about 2 per second, and each input can arm only a
# few one-shot waits (a run's phase wait, its repeats of CM_ATTEN_CHAR.IND, validation,
# session end).
WAKEUPS_PER_S = 3
WAKEUPS_PER_INPUT = 6
WAKEUPS_SPARE = 10


def check_timing(scenario: list[Step]) -> Sim:
    """After every tick(now) the machine never asks to be woken at or before `now` (the
    Sim asserts that on each tick), and it needs only a few wake-ups per second."""
    sim = Sim().play(scenario)
    allowed = WAKEUPS_SPARE + WAKEUPS_PER_INPUT * sim.inputs + WAKEUPS_PER_S * sim.duration_s
    assert sim.wakeups <= allowed, (
        f"{sim.wakeups} wake-ups in {sim.duration_s:.1f} s for {sim.inputs} inputs"
    )
    return sim


def check_trust(scenario: list[Step]) -> Sim:
    """Nothing goes to a group address; everything of a run goes to the EV that opened it;
    the NMK only to that EV, answering its own CM_SLAC_MATCH.REQ, once the modem holds the
    key; the modem's confirmations count only from the modem."""
    sim = Sim().play(scenario)
    owners: dict[bytes, bytes] = {}  # RunID of each live run -> the MAC that opened it
    for played in sim.played:
        step = played.step
        src = step.src if isinstance(step, Receive) else None
        message = step.message if isinstance(step, Receive) else None
        run_id = getattr(message, "run_id", None)
        if src is not None and mme.is_group(src):
            assert not played.sends, f"answered a group address: {played}"
            assert all(isinstance(e, fsm.Ignored) for e in played.events), played
        if run_id in owners and src != owners[run_id]:
            # a message of a live run from another MAC changes nothing
            assert not played.sends, f"answered an impostor: {played}"
            assert all(isinstance(e, fsm.Ignored) for e in played.events), played
        if isinstance(message, mme.CmValidateReq) and src not in owners.values():
            assert not played.sends, f"answered a validation without a run: {played}"
        if isinstance(step, Start | Stop):
            owners.clear()
        for ev in played.events:
            if isinstance(ev, fsm.Matching):
                assert isinstance(message, mme.CmSlacParmReq) and src == ev.pev_mac
                owners[ev.run_id] = ev.pev_mac
        for dst, sent in played.sends:
            assert not mme.is_group(dst), f"sent {sent} to a group address"
            _check_send(played, owners, dst, sent)
        for ev in played.events:
            _check_event(played, owners, ev)
            if isinstance(ev, fsm.RunFailed):
                owners.pop(ev.run_id, None)
            elif isinstance(ev, fsm.Failed):
                owners.clear()
    assert sim.slac.modem_mac == MODEM
    return sim


def _check_send(played: Played, owners: dict[bytes, bytes], dst: bytes, sent: mme.Mme) -> None:
    step = played.step
    match sent:
        case mme.CmSlacParmCnf() | mme.CmAttenCharInd():
            assert owners.get(sent.run_id) == dst, f"{sent} to {dst.hex()}, owners {owners}"
        case mme.CmValidateCnf():
            assert dst in owners.values()
        case mme.CmSlacMatchCnf():
            assert owners.get(sent.run_id) == dst, f"the NMK to {dst.hex()}, owners {owners}"
            assert isinstance(step, Receive) and step.src == dst
            assert isinstance(step.message, mme.CmSlacMatchReq)
            assert step.message.run_id == sent.run_id
            assert played.key_confirmed_before, "the NMK went out before the modem held it"
        case _:
            assert dst == mme.LOCAL_MODEM, f"{sent} to {dst.hex()}"


def _check_event(played: Played, owners: dict[bytes, bytes], ev: fsm.Event) -> None:
    step = played.step
    from_modem = isinstance(step, Receive) and step.src == MODEM
    match ev:
        case fsm.Matched():
            assert owners.get(ev.run_id) == ev.pev_mac
        case fsm.KeySet():
            assert from_modem and isinstance(step, Receive)
            assert isinstance(step.message, mme.CmSetKeyCnf) and step.message.result == 1
        case fsm.LinkEstablished():
            assert from_modem and isinstance(step, Receive)
            assert step.message == mme.VsPlLnkStatusCnf(0, 1)
        case fsm.ModemInfo():
            assert from_modem and ev.mac == MODEM
