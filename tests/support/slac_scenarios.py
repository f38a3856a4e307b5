"""Random SLAC scenarios for property tests and fuzzing of the EVSE state machine.

A scenario is what one plug-in can throw at `SlacEvse`: valid SLAC messages and the
modem's confirmations from a few MACs (the EV, a second EV, an impostor, the modem,
ourselves, group addresses, random ones) with a few RunIDs, CP toggles, start/stop, and
time passing. `Sim` plays it the way `SlacDriver` does: every input is followed by a
tick, and while time passes the machine is ticked at each `next_deadline()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.protocols.slac.evse import SlacEvse, SlacSettings
from tests.support.slac_rig import EVSE_MAC, IMPOSTOR, MODEM, NMK, PEV_A, PEV_B, RUN_A, RUN_B

MULTICAST = bytes.fromhex("01005e0000fb")
IMPOSTORS = [IMPOSTOR, PEV_B, MODEM, mme.BROADCAST]
MACS = [PEV_A, PEV_B, IMPOSTOR, MODEM, EVSE_MAC, mme.BROADCAST, MULTICAST]
macs = st.one_of(st.sampled_from(MACS), st.binary(min_size=6, max_size=6))
run_ids = st.one_of(st.sampled_from([RUN_A, RUN_B]), st.binary(min_size=8, max_size=8))
bytes17 = st.sampled_from([bytes(17), bytes(range(17))])


@dataclass(frozen=True)
class Receive:
    src: bytes
    message: mme.Mme


@dataclass(frozen=True)
class Wait:
    seconds: float  # the driver sleeps; ticks at every deadline on the way


@dataclass(frozen=True)
class ToDeadline:
    offset_s: float  # wake at next_deadline() + offset (negative: a little early)


@dataclass(frozen=True)
class Cp:
    state: str


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Stop:
    pass


Step = Receive | Wait | ToDeadline | Cp | Start | Stop


def _set_key_cnf(result: int) -> mme.CmSetKeyCnf:
    return mme.CmSetKeyCnf(result, bytes(4), bytes(4), 4, 0, 0, 0)


def _match_req(pev: bytes, run: bytes) -> mme.CmSlacMatchReq:
    return mme.CmSlacMatchReq(0, 0, 0x3E, bytes(17), pev, bytes(17), EVSE_MAC, run)


def _atten_rsp(pev: bytes, run: bytes, result: int) -> mme.CmAttenCharRsp:
    return mme.CmAttenCharRsp(0, 0, pev, run, bytes(17), bytes(17), result)


def ev_messages(pev: st.SearchStrategy[bytes]) -> st.SearchStrategy[Receive]:
    """What EVs (or anyone pretending) send, from `pev`."""
    return st.one_of(
        st.builds(
            lambda src, app, run: Receive(src, mme.CmSlacParmReq(app, 0, run)),
            pev,
            st.sampled_from([0, 0, 0, 3]),
            run_ids,
        ),
        st.builds(
            lambda src, run: Receive(src, mme.CmStartAttenCharInd(0, 0, 10, 6, 1, src, run)),
            pev,
            run_ids,
        ),
        st.builds(
            lambda src, sender, n, run: Receive(src, mme.CmMnbcSoundInd(0, 0, sender, n, run)),
            pev,
            bytes17,
            st.integers(0, 9),
            run_ids,
        ),
        st.builds(
            lambda src, run, result: Receive(src, _atten_rsp(src, run, result)),
            pev,
            run_ids,
            st.sampled_from([0, 0, 0, 1]),
        ),
        st.builds(
            lambda src, timer: Receive(src, mme.CmValidateReq(0, timer, 1)),
            pev,
            st.one_of(st.just(0), st.integers(0, 255)),
        ),
        st.builds(lambda src, run: Receive(src, _match_req(src, run)), pev, run_ids),
    )


def modem_messages(src: st.SearchStrategy[bytes]) -> st.SearchStrategy[Receive]:
    """What a modem sends (and anyone can forge), from `src`."""
    return st.one_of(
        st.builds(lambda s, r: Receive(s, _set_key_cnf(r)), src, st.sampled_from([1, 1, 0])),
        st.builds(lambda s: Receive(s, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0")), src),
        st.builds(
            lambda s, link: Receive(s, mme.VsPlLnkStatusCnf(0, link)), src, st.integers(0, 1)
        ),
        st.builds(lambda s: Receive(s, mme.VsRsDevCnf(0)), src),
        st.builds(
            lambda s, pev, value: Receive(s, mme.CmAttenProfileInd(pev, bytes([value]) * 58)),
            src,
            st.sampled_from([PEV_A, PEV_B, IMPOSTOR]),
            st.integers(0, 90),
        ),
    )


waits = st.one_of(
    st.builds(Wait, st.floats(0.0, 0.7)),
    st.builds(Wait, st.floats(0.0, 15.0)),
    st.builds(ToDeadline, st.sampled_from([0.0, 0.0, -1e-9, 1e-9, -0.01])),
)

steps: st.SearchStrategy[Step] = st.one_of(
    ev_messages(st.sampled_from([PEV_A, PEV_A, PEV_B])),
    ev_messages(macs),
    modem_messages(st.just(MODEM)),
    modem_messages(macs),
    waits,
    waits,
    st.builds(Cp, st.sampled_from(["B2", "C2"])),
    st.just(Start()),
    st.just(Stop()),
)


KEY_SET = Receive(MODEM, _set_key_cnf(1))


def _sounding(profiles: int) -> list[Step]:
    sounds: list[Step] = []
    for n in range(10):
        sounds.append(Receive(PEV_A, mme.CmMnbcSoundInd(0, 0, bytes(17), 9 - n, RUN_A)))
        if n < profiles:  # a lost sound makes no profile either
            sounds.append(Receive(MODEM, mme.CmAttenProfileInd(PEV_A, bytes([20]) * 58)))
    return sounds


@st.composite
def happy_paths(draw: st.DrawFn) -> list[Step]:
    """One EV's whole match, the modem answering, in its variants: sounds lost, the EV
    validating (for a short or a long time, before or after its CM_ATTEN_CHAR.RSP), the
    modem's key confirmation first, late or never."""
    profiles = draw(st.sampled_from([10, 10, 10, 8, 0]))
    validation = draw(st.sampled_from(["none", "before the RSP", "after the RSP"]))
    timer = draw(st.one_of(st.integers(1, 30), st.integers(90, 255)))
    path: list[Step] = [
        Receive(PEV_A, mme.CmSlacParmReq(0, 0, RUN_A)),
        Receive(PEV_A, mme.CmStartAttenCharInd(0, 0, 10, 6, 1, PEV_A, RUN_A)),
        *_sounding(profiles),
    ]
    if profiles < 10:
        path.append(Wait(0.6))  # TT_EVSE_match_MNBC: the IND goes with what came
    validate = [
        Receive(PEV_A, mme.CmValidateReq(0, 0, 1)),
        Receive(PEV_A, mme.CmValidateReq(0, timer, 1)),
    ]
    path += validate if validation == "before the RSP" else []
    path.append(Receive(PEV_A, _atten_rsp(PEV_A, RUN_A, 0)))
    path += validate if validation == "after the RSP" else []
    path += [draw(waits), Receive(PEV_A, _match_req(PEV_A, RUN_A))]
    path += [Wait(0.6), Receive(MODEM, mme.VsPlLnkStatusCnf(0, 1))]
    key_at = draw(st.one_of(st.just(0), st.none(), st.integers(0, len(path))))
    if key_at is not None:
        path.insert(key_at, KEY_SET)
    if draw(st.booleans()):  # someone else on the line says the EV's lines first
        copied: list[Step] = []
        for step in path:
            if isinstance(step, Receive) and step.src == PEV_A and draw(st.integers(0, 2)) == 0:
                copied.append(Receive(draw(st.sampled_from(IMPOSTORS)), step.message))
            copied.append(step)
        path = copied
    return path


HAPPY_PATH: list[Step] = [
    KEY_SET,
    Receive(PEV_A, mme.CmSlacParmReq(0, 0, RUN_A)),
    Receive(PEV_A, mme.CmStartAttenCharInd(0, 0, 10, 6, 1, PEV_A, RUN_A)),
    *_sounding(10),
    Receive(PEV_A, _atten_rsp(PEV_A, RUN_A, 0)),
    Receive(PEV_A, mme.CmValidateReq(0, 0, 1)),
    Receive(PEV_A, mme.CmValidateReq(0, 10, 1)),
    Wait(0.5),
    Receive(PEV_A, _match_req(PEV_A, RUN_A)),
    Wait(0.6),
    Receive(MODEM, mme.VsPlLnkStatusCnf(0, 1)),
]


@st.composite
def scenarios(draw: st.DrawFn, max_steps: int = 40) -> list[Step]:
    """A good match, often cut short (so that deep states are reached), and random
    steps, some of them slipped into it."""
    path = draw(happy_paths())
    length = draw(st.one_of(st.just(len(path)), st.integers(0, len(path))))
    rest = draw(st.lists(steps, max_size=max_steps))
    mixed: list[Step] = []
    for step in path[:length]:
        if rest and draw(st.integers(0, 11)) == 0:
            mixed.append(rest.pop(0))
        mixed.append(step)
    return mixed + rest


@dataclass
class Played:
    """One input and what came of it."""

    step: Step
    now: float
    key_confirmed_before: bool
    sends: list[tuple[bytes, mme.Mme]] = field(default_factory=list)
    events: list[fsm.Event] = field(default_factory=list)


class Sim:
    """Plays a scenario like SlacDriver: setup, then inputs and time."""

    def __init__(self) -> None:
        self.slac = SlacEvse(SlacSettings(evse_mac=EVSE_MAC), nmk_source=lambda: NMK)
        self.now = 0.0
        self.wakeups = 0  # ticks at deadlines (the driver also ticks after every input)
        self.inputs = 0
        self.played: list[Played] = []
        self.key_confirmed = False  # the test's own model: see `_model`
        # the driver's start: the query, the modem's answer, then the plug-in starts
        self._input(Receive(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0")), query=True)
        self._input(Start())

    def play(self, scenario: list[Step]) -> Sim:
        for step in scenario:
            match step:
                case Wait():
                    self._sleep_until(self.now + step.seconds)
                case ToDeadline():
                    deadline = self.slac.next_deadline()
                    if deadline is not None:
                        self._sleep_until(max(self.now, deadline + step.offset_s))
                case _:
                    self._input(step)
        return self

    @property
    def duration_s(self) -> float:
        return self.now

    def _input(self, step: Step, *, query: bool = False) -> None:
        played = Played(step, self.now, self.key_confirmed)
        self.inputs += 1
        action: Callable[[float], None]
        match step:
            case Receive():
                frame = mme.decode_frame(mme.encode_frame(EVSE_MAC, step.src, step.message))
                action = lambda now: self.slac.receive(now, frame)  # noqa: E731
            case Cp():
                action = lambda now: self.slac.cp_state(now, step.state)  # noqa: E731
            case Start():
                action = self.slac.start
            case Stop():
                action = self.slac.stop
            case _:
                raise AssertionError(step)
        if query:
            self.slac.query_modem()
        action(self.now)
        self._collect(played)
        self.slac.tick(self.now)  # the driver ticks after every input
        self._after_tick()
        self._collect(played)
        self._model(played)
        self.played.append(played)

    def _sleep_until(self, target: float) -> None:
        while (deadline := self.slac.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            played = Played(Wait(0.0), self.now, self.key_confirmed)
            self.slac.tick(self.now)
            self.wakeups += 1
            self._after_tick()
            self._collect(played)
            self._model(played)
            self.played.append(played)
        self.now = max(self.now, target)

    def _after_tick(self) -> None:
        deadline = self.slac.next_deadline()
        assert deadline is None or deadline > self.now, (
            f"after tick({self.now}) the machine asks to be woken at {deadline}: "
            "a driver would spin"
        )

    def _collect(self, played: Played) -> None:
        played.sends += self.slac.drain_sends()
        played.events += self.slac.drain_events()
        for dst, message in played.sends:
            mme.encode_frame(dst, EVSE_MAC, message)  # everything sent can be encoded

    def _model(self, played: Played) -> None:
        """The key is confirmed by a KeySet and lost by start, a reset or a reset CNF."""
        step = played.step
        if isinstance(step, Start) or any(isinstance(e, fsm.ModemReset) for e in played.events):
            self.key_confirmed = False
        if (
            isinstance(step, Receive)
            and step.src == MODEM
            and isinstance(step.message, mme.VsRsDevCnf)
        ):
            self.key_confirmed = False
        if any(isinstance(e, fsm.KeySet) for e in played.events):
            self.key_confirmed = True
