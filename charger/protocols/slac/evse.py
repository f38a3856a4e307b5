"""EVSE side of SLAC (ISO 15118-3), sans-IO: frames and time in, frames and events out.

One `SlacEvse` serves one EVSE and its modem. `start()` (the CP shows B with 5 %) puts a
fresh random NMK into the local modem with CM_SET_KEY and waits for EVs. Each EV's
matching run is a `_Run` keyed by its RunID, so several EVs heard through cross-talk are
handled at once without mixing their sounds (profiles are matched by the PEV's MAC).
After CM_SLAC_MATCH.CNF the modem's link status is polled until the EV has joined the
AVLN. Everything time-dependent is driven by `tick(now)`; `next_deadline()` says when
the next tick is due.
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


@dataclass(slots=True)
class _Run:
    run_id: bytes
    pev_mac: bytes
    started: float
    phase: Phase
    deadline: float
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

    def next_deadline(self) -> float | None:
        """When `tick` next has something to do (None: only an input can change things).
        Every deadline listed here is one that `tick` acts on and clears or moves."""
        deadlines = [
            self._key_deadline,
            self._modem_back_at,
            self._join_deadline,
            None if self._linked else self._next_poll,
        ]
        if self._give_up_at is not None and not self._runs and self._matched is None:
            deadlines.append(self._give_up_at)
        for run in self._runs.values():
            if run.phase is Phase.MATCHED:
                continue
            deadlines += [run.deadline, run.started + TT_EVSE_MATCH_SESSION_S, run.validate_until]
        return min((d for d in deadlines if d is not None), default=None)

    # ------------------------------------------------------------------ inputs

    def query_modem(self) -> None:
        """Asks the local modem for its firmware version (answered with ModemInfo)."""
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
        m = frame.mme
        match m:
            case mme.CmSetKeyCnf():
                self._on_set_key_cnf(now, m)
            case mme.VsSwVerCnf():
                self._events.append(ModemInfo(m.version))
            case mme.VsRsDevCnf():
                self._modem_back_at = now + MODEM_RESET_WAIT_S
            case mme.VsPlLnkStatusCnf():
                self._on_link_status(now, m)
            case _ if not self._active:
                self._events.append(Ignored(f"{type(m).__name__} while SLAC is not active"))
            case mme.CmSlacParmReq():
                self._on_parm_req(now, frame.src, m)
            case mme.CmStartAttenCharInd():
                self._on_start_atten(now, m)
            case mme.CmMnbcSoundInd():
                self._on_sound(now, m)
            case mme.CmAttenProfileInd():
                self._on_profile(now, m)
            case mme.CmAttenCharRsp():
                self._on_atten_rsp(now, m)
            case mme.CmValidateReq():
                self._on_validate(now, frame.src, m)
            case mme.CmSlacMatchReq():
                self._on_match_req(now, frame.src, m)
            case _:
                self._events.append(Ignored(f"{type(m).__name__} is not for the EVSE"))

    def tick(self, now: float) -> None:
        if self._key_deadline is not None and now >= self._key_deadline:
            self._key_deadline = None
            if self._key_attempts < SET_KEY_ATTEMPTS:
                self._send_set_key(now)
            else:
                self._reset_modem(now, f"no CM_SET_KEY.CNF after {SET_KEY_ATTEMPTS} attempts")
        if self._modem_back_at is not None and now >= self._modem_back_at:
            self._modem_back_at = None
            self._key_attempts = 0
            self._send_set_key(now)
        for run in list(self._runs.values()):
            self._tick_run(now, run)
        # The EV gets TT_EVSE_SLAC_init; a run still in progress then may finish.
        give_up = self._give_up_at is not None and now >= self._give_up_at
        if give_up and not self._runs and self._matched is None:
            if self._failed_runs:
                self._fail(
                    f"no match within TT_EVSE_SLAC_init ({self._s.slac_init_s:g} s), "
                    f"{self._failed_runs} matching run(s) failed"
                )
            else:
                self._fail(
                    f"no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init ({self._s.slac_init_s:g} s)"
                )
        if self._next_poll is not None and now >= self._next_poll and not self._linked:
            self._sends.append((mme.LOCAL_MODEM, mme.VsPlLnkStatusReq()))
            self._next_poll = now + LINK_POLL_INTERVAL_S
        if self._join_deadline is not None and now >= self._join_deadline and not self._linked:
            self._join_deadline = None
            self._next_poll = None
            self._fail(f"the EV did not join the AVLN within TT_match_join ({TT_MATCH_JOIN_S:g} s)")

    # ------------------------------------------------------------------ modem

    def _send_set_key(self, now: float) -> None:
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
        self._events.append(ModemReset(reason))
        self._sends.append((mme.LOCAL_MODEM, mme.VsRsDevReq()))
        self._modem_back_at = now + MODEM_RESET_WAIT_S

    def _on_link_status(self, now: float, cnf: mme.VsPlLnkStatusCnf) -> None:
        if self._matched is None or self._linked or cnf.link != 1:
            return
        self._linked = True
        self._join_deadline = None
        self._next_poll = None
        self._events.append(LinkEstablished(self._matched.run_id))

    # ------------------------------------------------------------------ matching

    def _on_parm_req(self, now: float, pev_mac: bytes, req: mme.CmSlacParmReq) -> None:
        if req.application_type != mme.APPLICATION_TYPE_PEV_EVSE:
            self._events.append(
                Ignored(f"CM_SLAC_PARM.REQ application type {req.application_type}")
            )
            return
        if req.security_type != mme.SECURITY_NONE:
            self._events.append(
                Ignored(
                    "CM_SLAC_PARM.REQ asks for public-key security, which this EVSE does not offer"
                )
            )
            return
        if self._matched is not None:
            self._events.append(Ignored("CM_SLAC_PARM.REQ after a match"))
            return
        run = self._runs.get(req.run_id)
        if run is None:
            run = _Run(
                req.run_id,
                pev_mac,
                now,
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
                    pev_mac,
                    mme.CmSlacParmCnf(
                        msound_target=mme.BROADCAST,
                        num_sounds=self._s.num_sounds,
                        time_out=self._s.time_out_100ms,
                        resp_type=self._s.resp_type,
                        forwarding_sta=pev_mac,
                        application_type=req.application_type,
                        security_type=req.security_type,
                        run_id=req.run_id,
                    ),
                )
            )

    def _start_sounding(self, now: float, run: _Run) -> None:
        run.phase = Phase.SOUNDING
        run.deadline = now + self._s.time_out_100ms / 10.0

    def _on_start_atten(self, now: float, ind: mme.CmStartAttenCharInd) -> None:
        run = self._runs.get(ind.run_id)
        if run is not None and run.phase is Phase.WAIT_START_ATTEN:
            self._start_sounding(now, run)

    def _on_sound(self, now: float, ind: mme.CmMnbcSoundInd) -> None:
        run = self._runs.get(ind.run_id)
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
        self._events.append(
            Ignored(f"CM_ATTEN_PROFILE.IND for {mme.mac_str(ind.pev_mac)}, which is not sounding")
        )

    def _send_atten_char(self, now: float, run: _Run) -> None:
        count = run.profiles
        aag = bytes(round(total / count) if count else 0 for total in run.aag_sums)
        run.phase = Phase.WAIT_ATTEN_RSP
        run.atten_sends += 1
        run.deadline = now + TT_MATCH_RESPONSE_S
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

    def _on_atten_rsp(self, now: float, rsp: mme.CmAttenCharRsp) -> None:
        run = self._runs.get(rsp.run_id)
        if run is None or run.phase is not Phase.WAIT_ATTEN_RSP:
            return
        if rsp.result != 0:
            self._end_run(run, f"the EV answered CM_ATTEN_CHAR.RSP with result {rsp.result}")
            return
        run.phase = Phase.WAIT_MATCH
        run.deadline = now + TT_MATCH_SEQUENCE_S

    def _on_validate(self, now: float, pev_mac: bytes, req: mme.CmValidateReq) -> None:
        run = next((r for r in self._runs.values() if r.pev_mac == pev_mac), None)
        if run is None:
            self._events.append(Ignored("CM_VALIDATE.REQ from an EV without a run"))
            return
        if req.timer == 0:  # "are you ready to validate?"
            run.deadline = now + TT_MATCH_SEQUENCE_S
            self._sends.append((pev_mac, mme.CmValidateCnf(req.signal_type, 0, VALIDATE_READY)))
            return
        run.toggles = 0
        run.validate_until = now + req.timer / 10.0 + TP_VALIDATE_MARGIN_S
        run.deadline = run.validate_until + TT_MATCH_SEQUENCE_S

    def _on_match_req(self, now: float, pev_mac: bytes, req: mme.CmSlacMatchReq) -> None:
        run = self._runs.get(req.run_id)
        if run is None or run.phase not in (Phase.WAIT_MATCH, Phase.WAIT_ATTEN_RSP):
            self._events.append(Ignored("CM_SLAC_MATCH.REQ for an unknown or early run"))
            return
        run.phase = Phase.MATCHED
        self._matched = run
        for other in [r for r in self._runs.values() if r is not run]:
            self._end_run(other, "another EV matched this EVSE")
        self._sends.append(
            (
                pev_mac,
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
        self._events.append(Matched(run.run_id, pev_mac, self.nmk, self.nid))
        self._join_deadline = now + TT_MATCH_JOIN_S
        self._next_poll = now + LINK_POLL_INTERVAL_S

    def _tick_run(self, now: float, run: _Run) -> None:
        if run.phase is Phase.MATCHED:
            return
        if now - run.started >= TT_EVSE_MATCH_SESSION_S:
            self._end_run(
                run, f"no match within TT_EVSE_match_session ({TT_EVSE_MATCH_SESSION_S:g} s)"
            )
            return
        if run.validate_until is not None and now >= run.validate_until:
            run.validate_until = None
            result = VALIDATE_SUCCESS if run.toggles else VALIDATE_FAILURE
            self._sends.append((run.pev_mac, mme.CmValidateCnf(0, run.toggles, result)))
            return
        if now < run.deadline:
            return
        if run.phase is Phase.SOUNDING:
            self._send_atten_char(now, run)  # with the profiles that did arrive
        elif run.phase is Phase.WAIT_ATTEN_RSP and run.atten_sends <= C_EV_MATCH_RETRY:
            self._send_atten_char(now, run)
        elif run.phase is Phase.WAIT_ATTEN_RSP:
            self._end_run(run, f"no CM_ATTEN_CHAR.RSP after {run.atten_sends} CM_ATTEN_CHAR.IND")
        elif run.phase is Phase.WAIT_START_ATTEN:
            self._end_run(run, "no CM_START_ATTEN_CHAR.IND or sound within TT_match_sequence")
        elif run.phase is Phase.WAIT_MATCH and run.validate_until is None:
            self._end_run(run, "no CM_SLAC_MATCH.REQ within TT_match_sequence")

    def _end_run(self, run: _Run, reason: str) -> None:
        self._runs.pop(run.run_id, None)
        self._failed_runs += 1
        self._events.append(RunFailed(run.run_id, reason))

    def _fail(self, reason: str) -> None:
        self._events.append(Failed(reason))
        self.stop(0.0)
