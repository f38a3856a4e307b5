"""EVSE side of SLAC (ISO 15118-3), sans-IO: frames and time in, frames and events out.

One `SlacEvse` serves one EVSE and its modem. `start()` (the CP shows B with 5 %) puts a
fresh random NMK into the local modem with CM_SET_KEY and waits for EVs. Each EV's
matching run is a `_Run` keyed by its RunID, so several EVs heard through cross-talk are
handled at once without mixing their sounds (profiles are matched by the PEV's MAC).
After CM_SLAC_MATCH.CNF the modem's link status is polled until the EV has joined the
AVLN. Everything time-dependent is driven by `tick(now)`; `next_deadline()` says when
the next tick is due.

Who may say what (docs/slac.md, "Who may say what"):

- a frame from a group (broadcast/multicast) source address is ignored;
- the modem's address is learnt from the VS_SW_VER.CNF that answers our VS_SW_VER.REQ;
  CM_SET_KEY.CNF, VS_PL_LNK_STATUS.CNF, VS_RS_DEV.CNF and CM_ATTEN_PROFILE.IND count only
  from that address, which is never the EV of a run;
- every message of a run (CM_SLAC_PARM.REQ repeats, CM_START_ATTEN_CHAR.IND, sounds,
  CM_ATTEN_CHAR.RSP, CM_VALIDATE.REQ, CM_SLAC_MATCH.REQ) counts only from the MAC that
  opened the run with CM_SLAC_PARM.REQ, and everything of the run is sent to that MAC;
- CM_SLAC_MATCH.CNF (the NMK) goes out only while the modem holds the key: after its
  CM_SET_KEY.CNF and not since a modem reset.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from charger.protocols.slac import mme
from charger.protocols.slac.keys import new_nmk, nid_from_nmk

# --- ISO 15118-3 timers and counters (Table A.1 / A.2) -----------------------------------
TT_EVSE_SLAC_INIT_S = 50.0  # 20-50 s: from B with 5 % until CM_SLAC_PARM.REQ
TT_EVSE_MATCH_MNBC_S = 0.6  # sounding window after CM_START_ATTEN_CHAR.IND
TT_MATCH_RESPONSE_S = 0.2  # wait for CM_ATTEN_CHAR.RSP before repeating the IND
TT_MATCH_SEQUENCE_S = 0.4  # longest gap between the EV's messages of one run
TT_EVSE_MATCH_SESSION_S = 10.0  # one matching run, CM_SLAC_PARM.REQ to CM_SLAC_MATCH.CNF
TT_MATCH_JOIN_S = 12.0  # after the match the EV joins the AVLN within this
C_EV_MATCH_RETRY = 2  # repetitions of CM_ATTEN_CHAR.IND without a response
C_EV_MATCH_MNBC = 10  # sounds the EV is asked to send
TP_VALIDATE_MARGIN_S = 0.1  # extra time to count toggles after the EV's Timer
# --- modem handling (implementation choices: QCA7000 answers in milliseconds) ------------
SET_KEY_TIMEOUT_S = 0.5
SET_KEY_ATTEMPTS = 3
MODEM_RESET_WAIT_S = 3.0  # a QCA7000 needs about 1-2 s to boot after VS_RS_DEV
LINK_POLL_INTERVAL_S = 0.5
QCA_SET_KEY_SUCCESS = 0x01  # QCA firmware answers 0x01 for success (HomePlug AV 1.0)

VALIDATE_NOT_READY, VALIDATE_READY, VALIDATE_SUCCESS, VALIDATE_FAILURE = 0, 1, 2, 3


class Phase(enum.Enum):
    WAIT_START_ATTEN = "wait_start_atten_char"
    SOUNDING = "sounding"
    WAIT_ATTEN_RSP = "wait_atten_char_rsp"
    WAIT_MATCH = "wait_match"
    MATCHED = "matched"


@dataclass(frozen=True, slots=True)
class Matching:
    run_id: bytes
    pev_mac: bytes


@dataclass(frozen=True, slots=True)
class Matched:
    run_id: bytes
    pev_mac: bytes
    nmk: bytes
    nid: bytes


@dataclass(frozen=True, slots=True)
class LinkEstablished:
    run_id: bytes


@dataclass(frozen=True, slots=True)
class RunFailed:
    """One EV's run ended without a match; the EV may start another."""

    run_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """SLAC failed for this plug-in (no EV, no match in time, no AVLN join)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ModemReset:
    reason: str


@dataclass(frozen=True, slots=True)
class KeySet:
    nid: bytes


@dataclass(frozen=True, slots=True)
class ModemInfo:
    firmware: str
    mac: bytes  # the modem's address, from now on the only source of its confirmations


@dataclass(frozen=True, slots=True)
class Ignored:
    """A frame that was valid but not for us now (kept for diagnostics)."""

    what: str


Event = (
    Matching
    | Matched
    | LinkEstablished
    | RunFailed
    | Failed
    | ModemReset
    | KeySet
    | ModemInfo
    | Ignored
)


@dataclass(frozen=True, slots=True)
class SlacSettings:
    evse_mac: bytes
    evse_id: bytes = bytes(17)
    num_sounds: int = C_EV_MATCH_MNBC
    time_out_100ms: int = round(TT_EVSE_MATCH_MNBC_S * 10)
    resp_type: int = 0x01  # ISO 15118-3: "other Green PHY station"
    set_key_success: int = QCA_SET_KEY_SUCCESS
    slac_init_s: float = TT_EVSE_SLAC_INIT_S


class _Timer(enum.Enum):
    """What `tick` does when a deadline has come (see `SlacEvse._timers`)."""

    SET_KEY = "no CM_SET_KEY.CNF"
    MODEM_BACK = "the modem is back from its reset"
    SESSION = "TT_EVSE_match_session is over"
    VALIDATE = "the EV's validation timer is over"
    PHASE = "the run's current wait is over"
    GIVE_UP = "TT_EVSE_SLAC_init is over"
    POLL = "poll the link status"
    JOIN = "TT_match_join is over"


@dataclass(slots=True)
class _Run:
    run_id: bytes
    pev_mac: bytes
    session_end: float  # CM_SLAC_PARM.REQ + TT_EVSE_match_session
    phase: Phase
    deadline: float | None  # end of the phase's wait; None while the EV validates
    application_type: int
    security_type: int
    aag_sums: list[int] = field(default_factory=lambda: [0] * mme.NUM_GROUPS)
    profiles: int = 0
    atten_sends: int = 0
    pev_id: bytes = bytes(17)
    validate_until: float | None = None
    toggles: int = 0


class SlacEvse:
    def __init__(self, settings: SlacSettings, *, nmk_source: Callable[[], bytes] = new_nmk):
        self._s = settings
        self._nmk_source = nmk_source
        self.nmk = b""
        self.nid = b""
        self._modem_mac: bytes | None = None
        self._querying_modem = False
        self._key_ready = False
        self._key_attempts = 0
        self._key_deadline: float | None = None
        self._modem_back_at: float | None = None
        self._active = False
        self._give_up_at: float | None = None
        self._failed_runs = 0
        self._runs: dict[bytes, _Run] = {}
        self._matched: _Run | None = None
        self._join_deadline: float | None = None
        self._next_poll: float | None = None
        self._linked = False
        self._sends: list[tuple[bytes, mme.Mme]] = []
        self._events: list[Event] = []
        self._last_cp = ""

    # ------------------------------------------------------------------ outputs

    def drain_sends(self) -> list[tuple[bytes, mme.Mme]]:
        """(destination MAC, message) pairs to transmit, in order."""
        sends, self._sends = self._sends, []
        return sends

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    @property
    def active(self) -> bool:
        return self._active

    @property
    def matched(self) -> bool:
        return self._matched is not None

    def run_phase(self, run_id: bytes) -> Phase | None:
        run = self._runs.get(run_id)
        return None if run is None else run.phase

    @property
    def modem_mac(self) -> bytes | None:
        """The local modem's address, once its VS_SW_VER.CNF told it."""
        return self._modem_mac

    @property
    def key_ready(self) -> bool:
        """The modem confirmed CM_SET_KEY for this plug-in's NMK and has not reset since."""
        return self._key_ready

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (None: only an input can change things).
        After `tick(now)` this is always later than `now`."""
        return min((when for when, _, _ in self._timers()), default=None)

    def _timers(self) -> list[tuple[float, _Timer, _Run | None]]:
        """Every deadline, absolute, that `tick` acts on: the one list both `tick` and
        `next_deadline` read. Acting on one always clears it or moves it past `now`."""
        timers: list[tuple[float, _Timer, _Run | None]] = []
        if self._key_deadline is not None:
            timers.append((self._key_deadline, _Timer.SET_KEY, None))
        if self._modem_back_at is not None:
            timers.append((self._modem_back_at, _Timer.MODEM_BACK, None))
        for run in self._runs.values():
            if run.phase is Phase.MATCHED:
                continue
            timers.append((run.session_end, _Timer.SESSION, run))
            if run.validate_until is not None:
                timers.append((run.validate_until, _Timer.VALIDATE, run))
            if run.deadline is not None:
                timers.append((run.deadline, _Timer.PHASE, run))
        # The EV gets TT_EVSE_SLAC_init; a run still in progress then may finish.
        if self._give_up_at is not None and not self._runs and self._matched is None:
            timers.append((self._give_up_at, _Timer.GIVE_UP, None))
        if not self._linked:
            if self._next_poll is not None:
                timers.append((self._next_poll, _Timer.POLL, None))
            if self._join_deadline is not None:
                timers.append((self._join_deadline, _Timer.JOIN, None))
        return timers

    # ------------------------------------------------------------------ inputs

    def query_modem(self) -> None:
        """Asks the local modem for its firmware version (answered with ModemInfo). Its
        answer also tells the modem's address, which its confirmations must come from."""
        self._querying_modem = True
        self._sends.append((mme.LOCAL_MODEM, mme.VsSwVerReq()))

    def start(self, now: float) -> None:
        """The EV is in B with 5 %: new key, then wait for CM_SLAC_PARM.REQ."""
        self.stop(now)
        self._active = True
        self._give_up_at = now + self._s.slac_init_s
        self._failed_runs = 0
        self.nmk = self._nmk_source()
        self.nid = nid_from_nmk(self.nmk)
        self._key_ready = False
        self._key_attempts = 0
        self._send_set_key(now)

    def stop(self, now: float) -> None:
        """The EV left (or SLAC is abandoned): forget every run."""
        self._active = False
        self._give_up_at = None
        self._runs.clear()
        self._matched = None
        self._join_deadline = None
        self._next_poll = None
        self._linked = False

    def cp_state(self, now: float, state: str) -> None:
        """CP state letters from the CS: B->C->B toggles are counted for CM_VALIDATE."""
        letter = state[:1]
        if self._last_cp == "C" and letter == "B":
            for run in self._runs.values():
                if run.validate_until is not None and now <= run.validate_until:
                    run.toggles += 1
        self._last_cp = letter

    def receive(self, now: float, frame: mme.Frame) -> None:
        m, src = frame.mme, frame.src
        if mme.is_group(src):
            self._ignore(f"{_name(m)} from the group address {mme.mac_str(src)}")
            return
        if isinstance(m, mme.VsSwVerCnf):
            self._on_sw_ver(src, m)
            return
        if isinstance(m, _FROM_MODEM) and not self._from_modem(src, m):
            return
        match m:
            case mme.CmSetKeyCnf():
                self._on_set_key_cnf(now, m)
            case mme.VsRsDevCnf():
                self._on_reset_cnf(now)
            case mme.VsPlLnkStatusCnf():
                self._on_link_status(now, m)
            case _ if not self._active:
                self._ignore(f"{_name(m)} while SLAC is not active")
            case mme.CmSlacParmReq():
                self._on_parm_req(now, src, m)
            case mme.CmStartAttenCharInd():
                self._on_start_atten(now, src, m)
            case mme.CmMnbcSoundInd():
                self._on_sound(now, src, m)
            case mme.CmAttenProfileInd():
                self._on_profile(now, m)
            case mme.CmAttenCharRsp():
                self._on_atten_rsp(now, src, m)
            case mme.CmValidateReq():
                self._on_validate(now, src, m)
            case mme.CmSlacMatchReq():
                self._on_match_req(now, src, m)
            case _:
                self._ignore(f"{_name(m)} is not for the EVSE")

    def tick(self, now: float) -> None:
        """Acts on every deadline that has come, earliest first, until none is left at or
        before `now` (each action clears its deadline or moves it past `now`)."""
        budget = 8 + 4 * len(self._runs)  # per run: session, validation, phase (+ spare)
        for _ in range(budget):
            due = [timer for timer in self._timers() if timer[0] <= now]
            if not due:
                return
            _, what, run = min(due, key=lambda timer: timer[0])
            self._fire(now, what, run)
        # only a bug gets here, never an input: better a crash the supervisor sees than
        # a busy loop that starves the event loop
        raise RuntimeError(f"SLAC timers still due at {now} after {budget} actions")

    def _fire(self, now: float, what: _Timer, run: _Run | None) -> None:
        match what:
            case _Timer.SET_KEY:
                self._key_deadline = None
                if self._key_attempts < SET_KEY_ATTEMPTS:
                    self._send_set_key(now)
                else:
                    self._reset_modem(now, f"no CM_SET_KEY.CNF after {SET_KEY_ATTEMPTS} attempts")
            case _Timer.MODEM_BACK:
                self._modem_back_at = None
                self._key_attempts = 0
                self._send_set_key(now)
            case _Timer.GIVE_UP:
                if self._failed_runs:
                    self._fail(
                        f"no match within TT_EVSE_SLAC_init ({self._s.slac_init_s:g} s), "
                        f"{self._failed_runs} matching run(s) failed"
                    )
                else:
                    self._fail(
                        f"no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init ({self._s.slac_init_s:g} s)"
                    )
            case _Timer.POLL:
                self._sends.append((mme.LOCAL_MODEM, mme.VsPlLnkStatusReq()))
                self._next_poll = now + LINK_POLL_INTERVAL_S
            case _Timer.JOIN:
                self._fail(
                    f"the EV did not join the AVLN within TT_match_join ({TT_MATCH_JOIN_S:g} s)"
                )
            case _Timer.SESSION if run is not None:
                self._end_run(
                    run, f"no match within TT_EVSE_match_session ({TT_EVSE_MATCH_SESSION_S:g} s)"
                )
            case _Timer.VALIDATE if run is not None:
                run.validate_until = None
                result = VALIDATE_SUCCESS if run.toggles else VALIDATE_FAILURE
                self._sends.append((run.pev_mac, mme.CmValidateCnf(0, run.toggles, result)))
                self._wait(run, now, TT_MATCH_SEQUENCE_S)  # for the EV's next message
            case _Timer.PHASE if run is not None:
                self._phase_over(now, run)

    def _ignore(self, what: str) -> None:
        self._events.append(Ignored(what))

    # ------------------------------------------------------------------ modem

    def _on_sw_ver(self, src: bytes, cnf: mme.VsSwVerCnf) -> None:
        if self._modem_mac is None:
            if not self._querying_modem:
                self._ignore(f"VsSwVerCnf from {mme.mac_str(src)} without a VS_SW_VER.REQ")
                return
            if any(run.pev_mac == src for run in self._runs.values()):
                self._ignore(f"VsSwVerCnf from {mme.mac_str(src)}, the EV of a run: not the modem")
                return
            self._modem_mac = src
        elif src != self._modem_mac:
            self._ignore(self._not_the_modem(src, cnf))
            return
        self._querying_modem = False
        self._events.append(ModemInfo(cnf.version, src))

    def _from_modem(self, src: bytes, m: mme.Mme) -> bool:
        """Whether `m` came from our modem; says why not otherwise."""
        if src == self._modem_mac:
            return True
        self._ignore(self._not_the_modem(src, m))
        return False

    def _not_the_modem(self, src: bytes, m: mme.Mme) -> str:
        if self._modem_mac is None:
            return (
                f"{_name(m)} from {mme.mac_str(src)} before the modem's address is known "
                "(no VS_SW_VER.CNF yet)"
            )
        return (
            f"{_name(m)} from {mme.mac_str(src)}, which is not the modem "
            f"({mme.mac_str(self._modem_mac)})"
        )

    def _send_set_key(self, now: float) -> None:
        if self._modem_mac is None:  # its CNF would not count: ask who the modem is again
            self.query_modem()
        self._key_attempts += 1
        self._key_deadline = now + SET_KEY_TIMEOUT_S
        self._sends.append(
            (
                mme.LOCAL_MODEM,
                mme.CmSetKeyReq(
                    key_type=0x01,
                    my_nonce=bytes(4),
                    your_nonce=bytes(4),
                    pid=0x04,
                    prn=0,
                    pmn=0,
                    cco_capability=0,
                    nid=self.nid,
                    new_eks=0x01,
                    new_key=self.nmk,
                ),
            )
        )

    def _on_set_key_cnf(self, now: float, cnf: mme.CmSetKeyCnf) -> None:
        if self._key_deadline is None:
            self._ignore("CmSetKeyCnf without a CM_SET_KEY.REQ waiting for it")
            return
        self._key_deadline = None
        if cnf.result == self._s.set_key_success:
            self._key_ready = True
            self._events.append(KeySet(self.nid))
        elif self._key_attempts < SET_KEY_ATTEMPTS:
            self._send_set_key(now)
        else:
            self._reset_modem(now, f"the modem refused CM_SET_KEY (result 0x{cnf.result:02X})")

    def _reset_modem(self, now: float, reason: str) -> None:
        self._key_ready = False
        self._events.append(ModemReset(reason))
        self._sends.append((mme.LOCAL_MODEM, mme.VsRsDevReq()))
        self._modem_back_at = now + MODEM_RESET_WAIT_S

    def _on_reset_cnf(self, now: float) -> None:
        """The modem resets (asked by us or not): its key is gone until it is set again."""
        self._key_ready = False
        self._key_deadline = None
        if self._active:  # set this plug-in's key again once the modem is back
            self._modem_back_at = now + MODEM_RESET_WAIT_S

    def _on_link_status(self, now: float, cnf: mme.VsPlLnkStatusCnf) -> None:
        if self._matched is None or self._linked or cnf.link != 1:
            return
        self._linked = True
        self._join_deadline = None
        self._next_poll = None
        self._events.append(LinkEstablished(self._matched.run_id))

    # ------------------------------------------------------------------ matching

    def _run_from(self, run_id: bytes, src: bytes, m: mme.Mme) -> _Run | None:
        """The run `run_id` if `src` is its EV; an impostor's message is ignored."""
        run = self._runs.get(run_id)
        if run is not None and run.pev_mac != src:
            self._ignore(
                f"{_name(m)} for run {run_id.hex()} from {mme.mac_str(src)}, "
                f"which is not that run's EV ({mme.mac_str(run.pev_mac)})"
            )
            return None
        return run

    def _wait(self, run: _Run, now: float, seconds: float) -> None:
        """The run's current phase waits `seconds` for the EV, unless the EV is validating:
        then the validation timer governs and the wait starts when it is over."""
        run.deadline = None if run.validate_until is not None else now + seconds

    def _on_parm_req(self, now: float, pev_mac: bytes, req: mme.CmSlacParmReq) -> None:
        if req.application_type != mme.APPLICATION_TYPE_PEV_EVSE:
            self._ignore(f"CM_SLAC_PARM.REQ application type {req.application_type}")
            return
        if req.security_type != mme.SECURITY_NONE:
            self._ignore(
                "CM_SLAC_PARM.REQ asks for public-key security, which this EVSE does not offer"
            )
            return
        if self._matched is not None:
            self._ignore("CM_SLAC_PARM.REQ after a match")
            return
        if pev_mac in (self._modem_mac, self._s.evse_mac):
            self._ignore(f"CM_SLAC_PARM.REQ from {mme.mac_str(pev_mac)}, the modem's or ours")
            return
        if req.run_id in self._runs:
            run = self._run_from(req.run_id, pev_mac, req)
            if run is None:
                return
        else:
            run = _Run(
                req.run_id,
                pev_mac,
                now + TT_EVSE_MATCH_SESSION_S,
                Phase.WAIT_START_ATTEN,
                now + TT_MATCH_SEQUENCE_S,
                req.application_type,
                req.security_type,
            )
            self._runs[req.run_id] = run
            self._events.append(Matching(req.run_id, pev_mac))
        if run.phase is Phase.WAIT_START_ATTEN:  # a repeated REQ gets the same answer
            self._sends.append(
                (
                    run.pev_mac,
                    mme.CmSlacParmCnf(
                        msound_target=mme.BROADCAST,
                        num_sounds=self._s.num_sounds,
                        time_out=self._s.time_out_100ms,
                        resp_type=self._s.resp_type,
                        forwarding_sta=run.pev_mac,
                        application_type=req.application_type,
                        security_type=req.security_type,
                        run_id=req.run_id,
                    ),
                )
            )

    def _start_sounding(self, now: float, run: _Run) -> None:
        run.phase = Phase.SOUNDING
        self._wait(run, now, self._s.time_out_100ms / 10.0)

    def _on_start_atten(self, now: float, src: bytes, ind: mme.CmStartAttenCharInd) -> None:
        run = self._run_from(ind.run_id, src, ind)
        if run is not None and run.phase is Phase.WAIT_START_ATTEN:
            self._start_sounding(now, run)

    def _on_sound(self, now: float, src: bytes, ind: mme.CmMnbcSoundInd) -> None:
        run = self._run_from(ind.run_id, src, ind)
        if run is None:
            return
        run.pev_id = ind.sender_id
        if run.phase is Phase.WAIT_START_ATTEN:  # the START_ATTEN_CHAR.IND was lost
            self._start_sounding(now, run)

    def _on_profile(self, now: float, ind: mme.CmAttenProfileInd) -> None:
        for run in self._runs.values():
            if run.pev_mac == ind.pev_mac and run.phase in (Phase.WAIT_START_ATTEN, Phase.SOUNDING):
                if run.phase is Phase.WAIT_START_ATTEN:
                    self._start_sounding(now, run)
                for i, value in enumerate(ind.aag[: mme.NUM_GROUPS]):
                    run.aag_sums[i] += value
                run.profiles += 1
                if run.profiles >= self._s.num_sounds:
                    self._send_atten_char(now, run)
                return
        self._ignore(f"CM_ATTEN_PROFILE.IND for {mme.mac_str(ind.pev_mac)}, which is not sounding")

    def _send_atten_char(self, now: float, run: _Run) -> None:
        count = run.profiles
        aag = bytes(round(total / count) if count else 0 for total in run.aag_sums)
        run.phase = Phase.WAIT_ATTEN_RSP
        run.atten_sends += 1
        self._wait(run, now, TT_MATCH_RESPONSE_S)
        self._sends.append(
            (
                run.pev_mac,
                mme.CmAttenCharInd(
                    application_type=run.application_type,
                    security_type=run.security_type,
                    source_address=run.pev_mac,
                    run_id=run.run_id,
                    source_id=bytes(17),
                    resp_id=bytes(17),
                    num_sounds=count,
                    aag=aag,
                ),
            )
        )

    def _on_atten_rsp(self, now: float, src: bytes, rsp: mme.CmAttenCharRsp) -> None:
        run = self._run_from(rsp.run_id, src, rsp)
        if run is None or run.phase is not Phase.WAIT_ATTEN_RSP:
            return
        if rsp.result != 0:
            self._end_run(run, f"the EV answered CM_ATTEN_CHAR.RSP with result {rsp.result}")
            return
        run.phase = Phase.WAIT_MATCH
        self._wait(run, now, TT_MATCH_SEQUENCE_S)

    def _on_validate(self, now: float, pev_mac: bytes, req: mme.CmValidateReq) -> None:
        # CM_VALIDATE carries no RunID: the sender's latest unmatched run is the one
        run = next(
            (
                r
                for r in reversed(self._runs.values())
                if r.pev_mac == pev_mac and r.phase is not Phase.MATCHED
            ),
            None,
        )
        if run is None:
            self._ignore("CM_VALIDATE.REQ from an EV without a run")
            return
        if req.timer == 0:  # "are you ready to validate?"
            self._wait(run, now, TT_MATCH_SEQUENCE_S)
            self._sends.append((pev_mac, mme.CmValidateCnf(req.signal_type, 0, VALIDATE_READY)))
            return
        run.toggles = 0
        run.validate_until = now + req.timer / 10.0 + TP_VALIDATE_MARGIN_S
        run.deadline = None  # the validation timer governs until the CNF (_fire)

    def _on_match_req(self, now: float, pev_mac: bytes, req: mme.CmSlacMatchReq) -> None:
        run = self._run_from(req.run_id, pev_mac, req)
        if req.run_id in self._runs and run is None:
            return  # an impostor
        if run is None or run.phase not in (Phase.WAIT_MATCH, Phase.WAIT_ATTEN_RSP):
            self._ignore("CM_SLAC_MATCH.REQ for an unknown or early run")
            return
        if not self._key_ready:
            # the NMK is no use to the EV before our modem holds it; the EV repeats the REQ
            self._ignore("CM_SLAC_MATCH.REQ before the modem confirmed CM_SET_KEY")
            self._wait(run, now, TT_MATCH_SEQUENCE_S)
            return
        run.phase = Phase.MATCHED
        run.deadline = None
        self._matched = run
        for other in [r for r in self._runs.values() if r is not run]:
            self._end_run(other, "another EV matched this EVSE")
        self._sends.append(
            (
                run.pev_mac,
                mme.CmSlacMatchCnf(
                    application_type=req.application_type,
                    security_type=req.security_type,
                    mvf_length=mme.MVF_LENGTH_MATCH_CNF,
                    pev_id=req.pev_id,
                    pev_mac=req.pev_mac,
                    evse_id=self._s.evse_id,
                    evse_mac=self._s.evse_mac,
                    run_id=req.run_id,
                    rsvd1=bytes(8),
                    nid=self.nid,
                    rsvd2=0,
                    nmk=self.nmk,
                ),
            )
        )
        self._give_up_at = None
        self._events.append(Matched(run.run_id, run.pev_mac, self.nmk, self.nid))
        self._join_deadline = now + TT_MATCH_JOIN_S
        self._next_poll = now + LINK_POLL_INTERVAL_S

    def _phase_over(self, now: float, run: _Run) -> None:
        """The run's wait for the EV is over: go on without it, or end the run."""
        run.deadline = None
        if run.phase is Phase.SOUNDING:
            self._send_atten_char(now, run)  # with the profiles that did arrive
        elif run.phase is Phase.WAIT_ATTEN_RSP and run.atten_sends <= C_EV_MATCH_RETRY:
            self._send_atten_char(now, run)
        elif run.phase is Phase.WAIT_ATTEN_RSP:
            self._end_run(run, f"no CM_ATTEN_CHAR.RSP after {run.atten_sends} CM_ATTEN_CHAR.IND")
        elif run.phase is Phase.WAIT_START_ATTEN:
            self._end_run(run, "no CM_START_ATTEN_CHAR.IND or sound within TT_match_sequence")
        elif run.phase is Phase.WAIT_MATCH:
            self._end_run(run, "no CM_SLAC_MATCH.REQ within TT_match_sequence")

    def _end_run(self, run: _Run, reason: str) -> None:
        self._runs.pop(run.run_id, None)
        self._failed_runs += 1
        self._events.append(RunFailed(run.run_id, reason))

    def _fail(self, reason: str) -> None:
        self._events.append(Failed(reason))
        self.stop(0.0)


# Messages only the local modem sends.
_FROM_MODEM = (mme.CmSetKeyCnf, mme.VsRsDevCnf, mme.VsPlLnkStatusCnf, mme.CmAttenProfileInd)


def _name(m: mme.Mme) -> str:
    return type(m).__name__
