"""IEC 61851-1 control-pilot state machine of one EVSE: pure, no I/O, time passed in.

Inputs are method calls (a CP reading, authorization, a current limit, feedback, a tick)
with a monotonic `now` in seconds. After each call `outputs` holds what the hardware
must be set to and `drain_events()` returns what happened. The controller applies the
outputs in the same loop iteration, so the CP -> contactor path never waits on I/O.

CP classification (positive plateau, nominal values from IEC 61851-1:2017 Table A.3,
accepted within the nominal ±1 V of Table A.4, the gaps between bands split at the
midpoint so every voltage maps to exactly one state):

    A  >= 10.5 V (12 V)   B  7.5-10.5 V (9 V)   C  4.5-7.5 V (6 V)   D  1.5-4.5 V (3 V)
    E  -1.5-1.5 V (0 V)   anything below -1.5 V while we drive +12 V: invalid -> F
    negative plateau with PWM on must be below -10.5 V (-12 V ±1 V, Table A.4); a higher
    one means the EV's diode is missing or shorted -> diode fault, state F.

Proximity pilot of a socket outlet (Annex B, Table B.2): the cable's coding resistor Rc
between PP and PE gives its current capacity; the EVSE never offers more, refuses a
reading outside the table, and opens the contactor at once when the plug leaves the
socket (PP breaks first, before CP). See `cable_capacity_a`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from charger.cs.pwm import HLC_DUTY_PERCENT, MIN_CURRENT_A, DutyError, duty_for_current

# --- timing, IEC 61851-1:2017 Annex A, Table A.6 (sequence timing) ----------------------
CONTACTOR_OPEN_MAX_S = 0.1  # C/D -> B or A: supply off within 100 ms (we do it at once)
CONTACTOR_CLOSE_MAX_S = 3.0  # C2/D2 with authorization: supply on within 3 s (at once)
EV_FOLLOW_DUTY_S = 5.0  # the EV follows a lower duty within 5 s; then the EVSE stops
DUTY_CHANGE_INTERVAL_S = 5.0  # Annex A.2.2: at most one duty change per 5 s while charging
EV_STOP_ON_X1_S = 6.0  # PWM off (x1) in C/D: the EV opens S2 within 6 s, else EVSE opens
# --- overcurrent: tolerance of the brief; IEC 61851-1 Annex A.2.3 leaves it open -
OVERCURRENT_MARGIN_A = 0.5
OVERCURRENT_FACTOR = 1.1
OVERCURRENT_SUSTAIN_S = 7.0
# --- implementation choices (not fixed by the standard) -------------------------------
FEEDBACK_TIMEOUT_S = 0.5  # the lock must report the commanded position by then
CONTACTOR_FEEDBACK_S = 0.25  # the contactor's auxiliary contact must follow by then
FAULT_RETRY_S = 3.0  # how long a pilot fault (diode) holds state F before a retry
PP_OPEN_FAULT_S = 1.0  # PP open with the EV still on CP this long: a fault, not an unplug

# Proximity pilot, IEC 61851-1 Table B.2: nominal Rc 100 / 220 / 680 / 1500 ohm for
# 63 / 32 / 20 / 13 A cables, interpreted over these ranges (lower bound inclusive; a
# value on a boundary takes the lower current). Below 75 ohm: a short, invalid; above
# 2.2 kohm: no plug (the open contact). Ranges as IEC 61851-1 controllers apply them
# (e.g. Phoenix Contact's EV Charge Control manual, table 5-1).
PP_SHORT_OHM = 75.0
PP_OPEN_OHM = 2200.0
PP_BANDS = ((75.0, 63.0), (150.0, 32.0), (330.0, 20.0), (1000.0, 13.0))

# Positive plateau band edges (V), see module docstring.
_BAND_A, _BAND_B, _BAND_C, _BAND_D, _BAND_E = 10.5, 7.5, 4.5, 1.5, -1.5
_NEGATIVE_MAX_V = -10.5


class CpState(enum.StrEnum):
    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"
    C1 = "C1"
    C2 = "C2"
    D1 = "D1"
    D2 = "D2"
    E = "E"
    F = "F"


class Fault(enum.StrEnum):
    DIODE = "diode_fault"
    CP_SHORT = "cp_short_to_ground"
    RCD = "rcd_tripped"
    CONTACTOR_WELDED = "contactor_welded"
    CONTACTOR_NOT_CLOSING = "contactor_not_closing"
    OVERCURRENT = "ev_overcurrent"
    EV_IGNORED_REDUCTION = "ev_ignored_current_reduction"
    LOCK_FAILURE = "connector_lock_failure"
    VENTILATION_UNAVAILABLE = "ventilation_not_available"
    CONTACTOR_DROPPED = "contactor_dropped"
    RCD_SELF_TEST = "rcd_self_test_failed"
    PP_INVALID = "proximity_invalid"
    METER = "meter_not_responding"
    # DC EVSEs (IEC 61851-23), raised by the DC power path (charger/cs/dc.py)
    ISOLATION = "isolation_fault"
    DC_OVERVOLTAGE = "dc_overvoltage"
    DC_OVERCURRENT = "dc_overcurrent"
    PRECHARGE_TIMEOUT = "precharge_timeout"
    CABLE_CHECK_FAILED = "cable_check_failed"
    DC_WELDED = "dc_contactor_welded"


# Faults that take the whole EVSE out of service until they clear (state F).
_HARD_FAULTS = frozenset(
    {Fault.DIODE, Fault.RCD, Fault.CONTACTOR_WELDED, Fault.DC_WELDED, Fault.RCD_SELF_TEST}
)
# Faults that keep the connector locked: the contactor may still be live.
_WELDS = frozenset({Fault.CONTACTOR_WELDED, Fault.DC_WELDED})
# DC faults that last until the EV leaves (the DC power path raises them).
_DC_SESSION_FAULTS = (
    Fault.ISOLATION,
    Fault.DC_OVERVOLTAGE,
    Fault.DC_OVERCURRENT,
    Fault.PRECHARGE_TIMEOUT,
    Fault.CABLE_CHECK_FAILED,
)


class Level(enum.Enum):
    """The CP plateau the EV presents."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    INVALID = "invalid"


def cable_capacity_a(resistance_ohm: float) -> float | None:
    """The current capacity of the cable whose PP-PE resistance this is (Table B.2), or
    None for a short (< 75 ohm) or no plug (> 2.2 kohm)."""
    if not PP_SHORT_OHM <= resistance_ohm <= PP_OPEN_OHM:
        return None
    capacity = PP_BANDS[0][1]
    for lower_ohm, current_a in PP_BANDS:
        if resistance_ohm >= lower_ohm:
            capacity = current_a
    return capacity


def classify(positive_v: float) -> Level:
    if positive_v >= _BAND_A:
        return Level.A
    if positive_v >= _BAND_B:
        return Level.B
    if positive_v >= _BAND_C:
        return Level.C
    if positive_v >= _BAND_D:
        return Level.D
    if positive_v >= _BAND_E:
        return Level.E
    return Level.INVALID


class PilotMode(enum.Enum):
    PWM = "pwm"
    PLUS_12 = "+12V"  # no PWM: x1
    ZERO = "0V"  # state E forced
    MINUS_12 = "-12V"  # state F


@dataclass(frozen=True, slots=True)
class Outputs:
    pilot: PilotMode
    duty_percent: float | None  # set when pilot is PWM
    contactor_closed: bool
    lock_locked: bool


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: CpState
    positive_v: float
    negative_v: float
    duty_percent: float


@dataclass(frozen=True, slots=True)
class ContactorChanged:
    closed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class FaultRaised:
    fault: Fault
    info: str


@dataclass(frozen=True, slots=True)
class FaultCleared:
    fault: Fault


@dataclass(frozen=True, slots=True)
class ChargingStopped:
    """The EVSE ended energy transfer by itself (overcurrent, EV not following, ...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The EV was unplugged (state A). With a socket outlet's PP the EVSE knows where:
    "ev" (the cable stays in the socket), "station" (the plug left the socket first);
    "unknown" without PP."""

    unplugged_at: str = "unknown"


Event = (
    StateChanged | ContactorChanged | FaultRaised | FaultCleared | ChargingStopped | SessionEnded
)


class Iec61851:
    """Control-pilot state machine for one EVSE."""

    def __init__(
        self,
        *,
        max_current_a: float,
        has_lock: bool,
        ventilation_available: bool,
        now: float,
        pwm_by_request: bool = False,
        closing_on_request: bool = False,
        socket_outlet: bool = False,
        rcd_self_test: bool = False,
        contactor_min_off_s: float = 0.0,
    ) -> None:
        duty_for_current(max_current_a)  # validates the hardware limit
        self._hw_max_a = max_current_a
        self._has_lock = has_lock
        self._ventilation = ventilation_available
        # socket outlet: the cable's PP resistor limits the current (Annex B)
        self._socket = socket_outlet
        self._pp_ohm = float("inf")
        self._pp_open_since: float | None = None
        self._pp_left_first = False  # the plug left the socket while the EV was on CP
        # RCD self-test before each session; passed for the session in progress
        self._rcd_test_required = rcd_self_test
        self._rcd_tested = False
        # contactor: no closing sooner than this after the last opening (wear, inrush)
        self._min_off_s = contactor_min_off_s
        self._opened_at: float | None = None
        self._contactor_confirmed = False  # the auxiliary contact reported this closing
        # measured
        self._level = Level.A
        self._positive_v = 12.0
        self._negative_v = 12.0
        self._measured_duty = 100.0
        # requested
        self._authorized = False
        self._available = True
        self._stopped = False  # charging stopped for this session (stop or EVSE decision)
        self._hlc = False
        # HLC stations: the SLAC service decides between 5 % and a basic duty (cp_pwm);
        # until it asks for basic charging the CS offers no basic PWM on its own.
        self._pwm_by_request = pwm_by_request
        self._basic_requested = False
        # DC: the contactors close only once the SECC has asked for them (cs_contactor_status
        # or cable_check), and each opening withdraws that until it asks again.
        self._closing_on_request = closing_on_request
        self._closing_allowed = False
        self._forced: PilotMode | None = None  # E or F forced by cp_pwm
        self._requested_a = max_current_a  # what services ask for (cp_pwm current)
        self._lock_request: bool | None = None  # explicit cs_connector lock/unlock
        # duty bookkeeping
        self._announced_a = max_current_a  # current the duty in force announces
        self._previous_a = max_current_a  # announced before the last reduction
        self._reduced_at: float | None = None
        self._duty_changed_at: float | None = None
        self._x1_since: float | None = None
        # supervision
        self._faults: dict[Fault, float] = {}
        self._over_since: float | None = None
        self._measured_current_a = 0.0
        self._measured_at = now
        self._contactor_cmd_at = now
        self._contactor_feedback: bool | None = None
        self._lock_cmd_at = now
        self._lock_feedback: bool | None = None
        self._events: list[Event] = []
        self._outputs = Outputs(PilotMode.PLUS_12, None, False, False)
        self._state = CpState.A1
        self._now = now
        self._evaluate(now)

    # ------------------------------------------------------------------ queries

    @property
    def outputs(self) -> Outputs:
        return self._outputs

    @property
    def state(self) -> CpState:
        return self._state

    @property
    def faults(self) -> frozenset[Fault]:
        return frozenset(self._faults)

    @property
    def authorized(self) -> bool:
        return self._authorized

    @property
    def available(self) -> bool:
        return self._available

    @property
    def announced_current_a(self) -> float:
        return self._announced_a

    @property
    def ev_connected(self) -> bool:
        return self._level in (Level.B, Level.C, Level.D)

    @property
    def cable_current_a(self) -> float | None:
        """A socket outlet's cable capacity from PP (None: no valid plug, or no socket)."""
        return cable_capacity_a(self._pp_ohm) if self._socket else None

    @property
    def rcd_test_due(self) -> bool:
        """The session needs an RCD self-test before the contactor may close."""
        return (
            self._rcd_test_required
            and not self._rcd_tested
            and self.ev_connected
            and Fault.RCD_SELF_TEST not in self._faults
        )

    @property
    def max_offer_a(self) -> float:
        """The most this EVSE can offer now: its hardware limit, and a socket outlet's
        cable capacity while a plug is in."""
        cable = self.cable_current_a
        return self._hw_max_a if cable is None else min(self._hw_max_a, cable)

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ inputs

    def pilot(self, now: float, positive_v: float, negative_v: float, duty_percent: float) -> None:
        self._positive_v, self._negative_v, self._measured_duty = (
            positive_v,
            negative_v,
            duty_percent,
        )
        if self._outputs.pilot is PilotMode.MINUS_12 or self._outputs.pilot is PilotMode.ZERO:
            # While we drive -12 V or 0 V the EV's resistors cannot be read.
            self._evaluate(now)
            return
        level = classify(positive_v)
        was_connected = self.ev_connected
        self._level = level
        if level is Level.A and was_connected:
            self._end_session()
        # CP shorted to PE reads 0 V although we drive +12 V (Table A.3, state E).
        self._set_fault(
            Fault.CP_SHORT,
            level in (Level.E, Level.INVALID),
            now,
            f"CP reads {positive_v:.1f} V while the EVSE drives +12 V",
        )
        pwm_measured = 0.0 < duty_percent < 100.0
        ev_present = level in (Level.B, Level.C, Level.D)
        if pwm_measured and ev_present and negative_v > _NEGATIVE_MAX_V:
            self._set_fault(
                Fault.DIODE, True, now, f"negative CP level {negative_v:.1f} V, expected -12 V"
            )
        self._evaluate(now)

    def tick(self, now: float) -> None:
        self._evaluate(now)

    def authorize(self, now: float, authorized: bool) -> None:
        self._authorized = authorized
        if authorized:
            self._stopped = False
        self._evaluate(now)

    def stop(self, now: float, reason: str = "stop requested") -> None:
        """Ends energy transfer for this session: PWM off, contactor opens once the EV
        leaves C/D (at the latest after EV_STOP_ON_X1_S)."""
        self._authorized = False
        self._stopped = True
        self._events.append(ChargingStopped(reason))
        self._evaluate(now)

    def set_available(self, now: float, available: bool) -> None:
        self._available = available
        self._evaluate(now)

    def set_pwm_request(
        self, now: float, *, hlc: bool, current_a: float | None, error: bool, fault: bool
    ) -> None:
        """A cp_pwm request. Raises DutyError for a current that has no duty cycle."""
        if not hlc and current_a is not None and current_a != 0:
            duty_for_current(current_a)
        self._forced = PilotMode.MINUS_12 if fault else PilotMode.ZERO if error else None
        self._hlc = hlc
        if not hlc and current_a is not None:
            self._requested_a = current_a
            self._basic_requested = current_a > 0
        self._evaluate(now)

    def set_current_limit(self, now: float, current_a: float, *, safety: bool = False) -> None:
        """A new allowed current (0 = no PWM). Raises DutyError if it cannot be encoded."""
        if current_a != 0:
            duty_for_current(current_a)
        self._requested_a = current_a
        self._evaluate(now, safety=safety)

    def contactor_feedback(self, now: float, closed: bool | None) -> None:
        self._contactor_feedback = closed
        self._evaluate(now)

    def lock_feedback(self, now: float, locked: bool | None) -> None:
        self._lock_feedback = locked
        self._evaluate(now)

    def measured_current(self, now: float, current_a: float) -> None:
        """Highest phase current measured by the meter."""
        self._measured_current_a = current_a
        self._measured_at = now
        self._evaluate(now)

    def rcd(self, now: float, tripped: bool) -> None:
        self._set_fault(Fault.RCD, tripped, now, "residual current device tripped")
        self._evaluate(now)

    def proximity(self, now: float, resistance_ohm: float) -> None:
        """The socket outlet's PP-PE resistance (inf: open, no plug in the socket)."""
        was_valid = cable_capacity_a(self._pp_ohm) is not None
        self._pp_ohm = resistance_ohm
        valid = cable_capacity_a(resistance_ohm) is not None
        if was_valid and not valid and resistance_ohm > PP_OPEN_OHM and self.ev_connected:
            self._pp_left_first = True  # PP breaks before CP: pulled out at the station
        if valid:
            self._pp_left_first = False
        self._evaluate(now, safety=True)

    def rcd_self_test_result(self, now: float, passed: bool) -> None:
        """The result of an RCD self-test (the controller runs one before each session)."""
        self._set_fault(
            Fault.RCD_SELF_TEST,
            not passed,
            now,
            "the RCD did not trip and re-arm on its test current",
        )
        self._rcd_tested = passed
        self._evaluate(now)

    def request_lock(self, now: float, locked: bool) -> str | None:
        """A cs_connector lock/unlock; returns None when done, else why it is refused."""
        if not self._has_lock:
            return "this connector has no lock"
        if not locked and (self._outputs.contactor_closed or _WELDS & self._faults.keys()):
            return "the contactor is closed; the connector unlocks only with it open"
        if not locked and self._socket and self.ev_connected and (self._authorized or self._hlc):
            return (
                "a session is in progress; the socket outlet unlocks in state A or once "
                "the session has ended"
            )
        self._lock_request = locked
        self._evaluate(now)
        return None

    def allow_closing(self, now: float) -> None:
        """DC: the SECC asks for the contactors (the other conditions still apply). It
        counts while an EV is connected, until the contactors next open or the EV leaves."""
        if self.ev_connected:
            self._closing_allowed = True
        self._evaluate(now)

    def external_fault(self, now: float, fault: Fault, active: bool, info: str = "") -> None:
        """A fault found outside the control pilot (the DC power path): raised, it opens
        the contactor and keeps it open like any other fault."""
        self._set_fault(fault, active, now, info)
        self._evaluate(now)

    def clear_stop(self, now: float) -> None:
        """Lets a stopped session charge again (after a new authorization)."""
        self._stopped = False
        self._evaluate(now)

    # ------------------------------------------------------------------ internals

    def _end_session(self) -> None:
        unplugged_at = "unknown"
        if self._socket:
            station = self._pp_left_first or cable_capacity_a(self._pp_ohm) is None
            unplugged_at = "station" if station else "ev"
        self._pp_left_first = False
        self._pp_open_since = None
        self._rcd_tested = False
        self._authorized = False
        self._stopped = False
        self._hlc = False
        self._basic_requested = False
        self._lock_request = None
        self._closing_allowed = False
        self._requested_a = self._hw_max_a
        self._over_since = None
        self._reduced_at = None
        self._duty_changed_at = None
        for fault in (
            Fault.CONTACTOR_NOT_CLOSING,
            Fault.OVERCURRENT,
            Fault.EV_IGNORED_REDUCTION,
            Fault.DIODE,
            Fault.VENTILATION_UNAVAILABLE,
            Fault.CONTACTOR_DROPPED,
            Fault.PP_INVALID,
            *_DC_SESSION_FAULTS,
        ):
            self._set_fault(fault, False, self._now, "")
        self._events.append(SessionEnded(unplugged_at))

    def _set_fault(self, fault: Fault, active: bool, now: float, info: str) -> None:
        if active and fault not in self._faults:
            self._faults[fault] = now
            self._events.append(FaultRaised(fault, info))
        elif not active and fault in self._faults:
            del self._faults[fault]
            self._events.append(FaultCleared(fault))

    def _target_current_a(self) -> float:
        return min(self._requested_a, self.max_offer_a)

    def _charging(self) -> bool:
        return self._outputs.contactor_closed

    def _update_announced(self, now: float, safety: bool) -> None:
        target = self._target_current_a()
        if target == self._announced_a:
            return
        reducing = target < self._announced_a
        # Annex A: at most one duty change per 5 s while charging, unless reducing for safety.
        recently_changed = (
            self._duty_changed_at is not None
            and now - self._duty_changed_at < DUTY_CHANGE_INTERVAL_S
        )
        if self._charging() and not (reducing and safety) and recently_changed:
            return
        if reducing and self._charging():
            if self._reduced_at is None:  # a second reduction keeps the older, higher limit
                self._previous_a = self._announced_a
            self._reduced_at = now
        self._announced_a = target
        self._duty_changed_at = now

    def _supervise_current(self, now: float) -> None:
        if not self._charging() or self._announced_a < MIN_CURRENT_A:
            self._over_since = None
            return
        measured = self._measured_current_a
        threshold = (self._announced_a + OVERCURRENT_MARGIN_A) * OVERCURRENT_FACTOR
        if self._reduced_at is not None:
            grace_end = self._reduced_at + EV_FOLLOW_DUTY_S
            if now < grace_end or self._measured_at < grace_end:
                # Within the grace period, or no measurement taken after it yet: the EV
                # is held to the limit in force before the reduction.
                threshold = (self._previous_a + OVERCURRENT_MARGIN_A) * OVERCURRENT_FACTOR
            elif measured > threshold:
                self._stop_by_evse(
                    now,
                    Fault.EV_IGNORED_REDUCTION,
                    f"EV draws {measured:.1f} A {EV_FOLLOW_DUTY_S:g} s after the duty cycle "
                    f"lowered the limit to {self._announced_a:g} A",
                )
                return
            else:
                self._reduced_at = None  # the EV followed
        if measured > threshold:
            if self._over_since is None:
                self._over_since = now
            elif now - self._over_since >= OVERCURRENT_SUSTAIN_S:
                self._stop_by_evse(
                    now,
                    Fault.OVERCURRENT,
                    f"EV draws {measured:.1f} A for {OVERCURRENT_SUSTAIN_S:g} s, "
                    f"limit {self._announced_a:g} A",
                )
        else:
            self._over_since = None

    def _stop_by_evse(self, now: float, fault: Fault, info: str) -> None:
        self._set_fault(fault, True, now, info)
        self._over_since = None
        self._authorized = False
        self._stopped = True
        self._events.append(ChargingStopped(fault.value))

    def _supervise_feedback(self, now: float) -> None:
        out = self._outputs
        fb = self._contactor_feedback
        if out.contactor_closed and fb is True:
            self._contactor_confirmed = True
        elif out.contactor_closed and fb is False and self._contactor_confirmed:
            # It had closed and opened without being told: coil supply lost, a bad
            # contact. The command is withdrawn, the session stops.
            self._contactor_confirmed = False
            self._stop_by_evse(
                now, Fault.CONTACTOR_DROPPED, "contactor opened without the open command"
            )
        if fb is not None and now - self._contactor_cmd_at >= CONTACTOR_FEEDBACK_S:
            if not out.contactor_closed and fb:
                self._set_fault(
                    Fault.CONTACTOR_WELDED,
                    True,
                    now,
                    "contactor reports closed after the open command",
                )
            elif out.contactor_closed and not fb:
                self._set_fault(
                    Fault.CONTACTOR_NOT_CLOSING,
                    True,
                    now,
                    "contactor reports open after the close command",
                )
        if fb is not None and fb == out.contactor_closed:
            # A contactor that failed to close stays failed for this session (no retry
            # loop); a weld is over once the auxiliary contact reports open.
            self._set_fault(Fault.CONTACTOR_WELDED, False, now, "")
        lock_fb = self._lock_feedback
        if self._has_lock and lock_fb is not None:
            if lock_fb != out.lock_locked and now - self._lock_cmd_at >= FEEDBACK_TIMEOUT_S:
                self._set_fault(
                    Fault.LOCK_FAILURE,
                    True,
                    now,
                    "connector lock did not reach the commanded position",
                )
            elif lock_fb == out.lock_locked:
                self._set_fault(Fault.LOCK_FAILURE, False, now, "")

    def _retry_pilot_faults(self, now: float) -> None:
        since = self._faults.get(Fault.DIODE)
        if since is not None and now - since >= FAULT_RETRY_S:
            # Leave F so the EV can be read again; a persisting short trips it again.
            self._set_fault(Fault.DIODE, False, now, "")

    def _supervise_proximity(self, now: float) -> bool:
        """A socket outlet's PP; True when it allows energy transfer now."""
        if not self._socket:
            return True
        ohm = self._pp_ohm
        valid = cable_capacity_a(ohm) is not None
        if valid or not self.ev_connected:
            self._pp_open_since = None
            self._set_fault(Fault.PP_INVALID, False, now, "")
            return valid or not self.ev_connected
        if ohm < PP_SHORT_OHM:
            self._set_fault(Fault.PP_INVALID, True, now, f"PP-PE reads {ohm:.0f} ohm: a short")
            return False
        # Open with the EV on CP: the plug is leaving the socket (PP breaks first), or the
        # PP contact is broken. No energy either way; a fault only if it lasts.
        if self._pp_open_since is None:
            self._pp_open_since = now
        if now - self._pp_open_since >= PP_OPEN_FAULT_S:
            reading = "open" if ohm == float("inf") else f"{ohm:.0f} ohm"
            self._set_fault(
                Fault.PP_INVALID,
                True,
                now,
                f"PP-PE reads {reading} while the EV is connected: no valid cable coding",
            )
        return False

    def _evaluate(self, now: float, *, safety: bool = False) -> None:
        self._now = now
        pp_ok = self._supervise_proximity(now)
        self._retry_pilot_faults(now)
        self._supervise_feedback(now)
        self._supervise_current(now)
        hard_fault = bool(_HARD_FAULTS & self._faults.keys())
        connected = self.ev_connected
        wants_energy = self._level is Level.C or self._level is Level.D

        # Pilot output.
        pilot, duty = PilotMode.PLUS_12, None
        if hard_fault:
            pilot = PilotMode.MINUS_12
        elif self._forced is not None:
            pilot = self._forced
        elif (
            connected
            and self._available
            and not self._stopped
            and pp_ok
            and Fault.CP_SHORT not in (self._faults)
        ):
            if self._hlc:
                pilot, duty = PilotMode.PWM, HLC_DUTY_PERCENT
            elif self._authorized and (self._basic_requested or not self._pwm_by_request):
                self._update_announced(now, safety)
                if self._announced_a >= MIN_CURRENT_A:
                    pilot, duty = PilotMode.PWM, duty_for_current(self._announced_a)
        if pilot is not PilotMode.PWM:
            self._announced_a = self._target_current_a()
            self._reduced_at = None

        ventilation_ok = self._level is Level.C or self._ventilation
        self._set_fault(
            Fault.VENTILATION_UNAVAILABLE,
            self._level is Level.D and not self._ventilation,
            now,
            "EV requests ventilation (state D), the EVSE has none",
        )

        # Contactor: closes only in C2/D2 with authorization, >= 6 A and a locked plug.
        lock_ok = not self._has_lock or self._lock_feedback is not False
        close = (
            pilot is PilotMode.PWM
            and wants_energy
            and ventilation_ok
            and self._authorized
            and self._target_current_a() >= MIN_CURRENT_A
            and not self._faults.keys() - {Fault.LOCK_FAILURE}
            and (not self._has_lock or (lock_ok and self._outputs.lock_locked))
            and self._lock_request is not False
            and (self._closing_allowed or not self._closing_on_request)
            and (self._rcd_tested or not self._rcd_test_required)
        )
        if close and not self._outputs.contactor_closed and self._opened_at is not None:
            close = now - self._opened_at >= self._min_off_s  # a tick closes it later
        # x1 in C/D (PWM removed by a stop): an EV still in C/D gets EV_STOP_ON_X1_S to
        # stop drawing current and open S2 before the EVSE breaks the load; no fault pending.
        in_x1_under_load = (
            self._outputs.contactor_closed
            and pp_ok  # the plug leaving the socket opens the contactor at once
            and wants_energy
            and pilot is PilotMode.PLUS_12
            and not self._faults.keys() - {Fault.LOCK_FAILURE}
        )
        if not in_x1_under_load:
            self._x1_since = None
        elif not close:
            self._x1_since = now if self._x1_since is None else self._x1_since
            close = now - self._x1_since < EV_STOP_ON_X1_S

        # Lock: before closing, released only with the contactor open (and not welded).
        welded = bool(_WELDS & self._faults.keys())
        contactor_may_be_live = close or self._contactor_feedback is True or welded
        lock = (
            self._has_lock
            and connected
            and (self._authorized or self._hlc or contactor_may_be_live)
        )
        if self._has_lock and self._lock_request is not None:
            lock = self._lock_request or contactor_may_be_live
        if self._has_lock and welded:
            lock = True

        self._apply(now, Outputs(pilot, duty, close, lock))

    def _apply(self, now: float, new: Outputs) -> None:
        old = self._outputs
        self._outputs = new
        if new.contactor_closed != old.contactor_closed:
            self._contactor_cmd_at = now
            self._contactor_confirmed = False
            if not new.contactor_closed:
                self._closing_allowed = False
                self._opened_at = now
            self._events.append(ContactorChanged(new.contactor_closed, self._reason(new)))
        if new.lock_locked != old.lock_locked:
            self._lock_cmd_at = now
        state = self._derive_state()
        if state is not self._state:
            self._state = state
            self._events.append(
                StateChanged(state, self._positive_v, self._negative_v, self._measured_duty)
            )

    def _derive_state(self) -> CpState:
        pilot = self._outputs.pilot
        if pilot is PilotMode.MINUS_12:
            return CpState.F
        if pilot is PilotMode.ZERO or Fault.CP_SHORT in self._faults:
            return CpState.E
        pwm = pilot is PilotMode.PWM
        letter = self._level.value if self._level is not Level.INVALID else "E"
        if letter == "E":
            return CpState.E
        return CpState(f"{letter}{2 if pwm else 1}")

    def _reason(self, new: Outputs) -> str:
        if new.contactor_closed:
            return f"{self._level.value}2 authorized"
        if self._faults:
            return ",".join(sorted(f.value for f in self._faults))
        if self._level not in (Level.C, Level.D):
            return f"EV left C/D ({self._level.value})"
        if self._stopped:
            return "charging stopped"
        return "conditions for closing no longer met"


__all__ = [
    "CpState",
    "DutyError",
    "Event",
    "Fault",
    "Iec61851",
    "Outputs",
    "PilotMode",
    "cable_capacity_a",
]
