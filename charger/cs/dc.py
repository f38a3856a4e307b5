"""DC power path of one DC EVSE (IEC 61851-23): pure, no I/O, time passed in.

The SECC drives it over the bus (docs/iec61851.md, "DC EVSE: the bus sequence"); this
class turns those requests and the hardware's measurements into what the power module
and the insulation monitoring device (IMD) must do, and into faults that the control-pilot
machine (`iec61851.py`) turns into an open contactor:

- cable check (`cable_check start`): with the DC contactors closed, the module raises the
  output to the test voltage at no more than 2 A; once there, the IMD measures; the
  result is graded against the EVSE's maximum voltage (> 500 ohm/V valid, 100-500 ohm/V
  warning, < 100 ohm/V fault); then the output is discharged below 60 V and the check
  reports `finished`. The IMD keeps monitoring while the contactors stay closed.
- precharge (`power_electronics_setpoint`, `is_precharge`): the module brings the output
  to the EV's battery voltage at no more than 2 A, within 7 s, or the session fails.
- charging (`power_electronics_setpoint`): the module follows the EV's voltage and current,
  clamped to the EVSE's limits, the EV's maximum voltage and the power limit.
- protection, on every measurement whatever the session does: over-voltage and
  over-current cut off; after the contactors open, the output must fall below 60 V
  within 1 s, else a welded contactor holds the EV's battery on it.

Inputs are method calls with a monotonic `now`; after each, `outputs` says what the module
and the IMD must be set to and `drain_events()` what happened. Faults are `Fault`s of the
control-pilot machine, reported as `FaultChanged` events for the controller to hand over.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from charger.cs.iec61851 import Fault

# --- DIN SPEC 70121 / ISO 15118-2 ------------------------------------------------------
PRECHARGE_MAX_A = 2.0  # EVTargetCurrent in PreCharge is at most 2 A
PRECHARGE_TIMEOUT_S = 7.0  # ISO 15118-2 V2G_EVCC_PreCharge_Timeout: the EV gives up then
# --- IEC 61851-23 ------------------------------------------------------------------------
ISOLATION_WARNING_OHM_PER_V = 500.0  # below: warning; per volt of the EVSE's max voltage
ISOLATION_FAULT_OHM_PER_V = 100.0  # below: fault, no energy transfer
SAFE_VOLTAGE_V = 60.0  # the DC output counts as discharged below this
# --- implementation choices ----------------------------------------------------------
CABLE_CHECK_MAX_A = 2.0  # the insulation test needs no load current
CABLE_CHECK_TOLERANCE_V = 10.0  # the test voltage counts as reached within this
CABLE_CHECK_TIMEOUT_S = 30.0  # whole check; ISO 15118-2 gives the SECC 38 s, the EV 40 s
PRECHARGE_TOLERANCE_V = 20.0  # precharged within +-20 V of the EV's target
OVERVOLTAGE_MARGIN_V = 10.0  # cut-off above the voltage limit in force plus this
OVERCURRENT_FACTOR = 1.1  # cut-off above the current limit in force x this + tolerance
WELD_CHECK_S = 1.0  # after opening, the output must be below SAFE_VOLTAGE_V by then


class Isolation(enum.StrEnum):
    """The isolation level, as cs_status_and_limits and cable_check report it."""

    INVALID = "invalid"  # not measured (yet) since the contactors closed
    VALID = "valid"
    WARNING = "warning"
    FAULT = "fault"
    NO_IMD = "no_imd"


_ENERGY_OK = frozenset({Isolation.VALID, Isolation.WARNING, Isolation.NO_IMD})


class CableCheck(enum.Enum):
    NONE = "none"  # not asked for since the contactors last opened
    WAITING = "waiting"  # asked for; the contactors are not closed yet
    RAMP = "ramp"  # raising the output to the test voltage
    MEASURE = "measure"  # at the test voltage, the IMD measuring
    DISCHARGE = "discharge"  # measured; bringing the output below SAFE_VOLTAGE_V
    DONE = "done"


class Mode(enum.Enum):
    OFF = "off"
    PRECHARGE = "precharge"
    CHARGE = "charge"


@dataclass(frozen=True, slots=True)
class DcLimits:
    """The EVSE's DC ratings (`[[evse]]` dc_* settings)."""

    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    min_current_a: float
    max_power_w: float
    current_tolerance_a: float


@dataclass(frozen=True, slots=True)
class DcOutputs:
    enabled: bool
    voltage_v: float  # target voltage
    current_a: float  # current limit
    imd_on: bool


@dataclass(frozen=True, slots=True)
class FaultChanged:
    fault: Fault
    active: bool
    info: str = ""


@dataclass(frozen=True, slots=True)
class CableCheckFinished:
    isolation: Isolation
    resistance_ohm: float | None
    test_voltage_v: float


@dataclass(frozen=True, slots=True)
class SetpointClamped:
    """A setpoint was applied within the limits rather than as asked."""

    requested: str
    applied: str


@dataclass(frozen=True, slots=True)
class Precharged:
    voltage_v: float


DcEvent = FaultChanged | CableCheckFinished | SetpointClamped | Precharged

_OFF = DcOutputs(False, 0.0, 0.0, False)


def cable_check_voltage(ev_max_v: float | None, evse_max_v: float) -> float:
    """Test voltage of the insulation check, IEC 61851-23:2023 CC.4.1.2 formula CC.1:
    EVs up to 500 V are tested at min(500 V, EV max + 50 V), others at 1.1 x EV max, never
    above the EVSE's maximum. Without the EV's maximum (no ev_limits sent yet): 500 V."""
    if ev_max_v is None or ev_max_v <= 500.0:
        ev_part = 500.0 if ev_max_v is None else min(500.0, ev_max_v + 50.0)
        return min(ev_part, evse_max_v)
    return min(evse_max_v, 1.1 * ev_max_v)


def grade_isolation(resistance_ohm: float, evse_max_v: float) -> Isolation:
    """IEC 61851-23: thresholds per volt of the EVSE's maximum output voltage."""
    if resistance_ohm < ISOLATION_FAULT_OHM_PER_V * evse_max_v:
        return Isolation.FAULT
    if resistance_ohm < ISOLATION_WARNING_OHM_PER_V * evse_max_v:
        return Isolation.WARNING
    return Isolation.VALID


class DcPowerPath:
    """The DC output of one EVSE: cable check, precharge, charging and protection."""

    def __init__(self, limits: DcLimits, *, has_imd: bool, now: float) -> None:
        self.limits = limits
        self._has_imd = has_imd
        # what the controller says of the contactor and the control pilot
        self._closed = False
        self._allowed = False  # closed and the pilot offers energy (5 % PWM)
        # the session
        self._ev_max_v: float | None = None
        self._ev_min_v: float | None = None
        self._cable_check = CableCheck.NONE
        self._cc_since = now
        self._cc_reached_at: float | None = None
        self._cc_voltage_v = 0.0
        self._cc_resistance: float | None = None
        self._isolation = Isolation.NO_IMD if not has_imd else Isolation.INVALID
        self._mode = Mode.OFF
        self._target_v = 0.0
        self._limit_a = 0.0
        self._precharge_since: float | None = None
        self._precharged = False
        # measurements
        self._voltage_v = 0.0
        self._current_a = 0.0
        # protection
        self._opened_at: float | None = None  # the weld check after an opening runs
        self._faults: dict[Fault, str] = {}
        self._events: list[DcEvent] = []

    # ------------------------------------------------------------------ queries

    @property
    def outputs(self) -> DcOutputs:
        imd_on = (
            self._has_imd
            and self._closed
            and self._cable_check in (CableCheck.MEASURE, CableCheck.DISCHARGE, CableCheck.DONE)
            and self._isolation is not Isolation.FAULT
        )
        if self._faults:
            return DcOutputs(False, 0.0, 0.0, imd_on)
        if self._cable_check in (CableCheck.RAMP, CableCheck.MEASURE) and self._allowed:
            return DcOutputs(True, self._cc_voltage_v, CABLE_CHECK_MAX_A, imd_on)
        if self._mode is not Mode.OFF and self._allowed:
            return DcOutputs(True, self._target_v, self._limit_a, imd_on)
        return DcOutputs(False, 0.0, 0.0, imd_on)

    @property
    def isolation(self) -> Isolation:
        return self._isolation

    @property
    def checking(self) -> bool:
        """A cable check is under way (EVSE status: isolation monitoring active)."""
        return self._cable_check not in (CableCheck.NONE, CableCheck.DONE)

    @property
    def faults(self) -> frozenset[Fault]:
        return frozenset(self._faults)

    @property
    def present(self) -> tuple[float, float]:
        """The last measured output voltage and current."""
        return self._voltage_v, self._current_a

    @property
    def ev_max_voltage_v(self) -> float | None:
        return self._ev_max_v

    def cable_check_state(self) -> tuple[str, Isolation | None]:
        """(`cable_check_status`, `isolation_level` once finished) for the response.
        Asked before any check since the contactors closed: finished, not measured."""
        if self._cable_check is CableCheck.DONE:
            return "finished", self._isolation
        if self._cable_check is CableCheck.NONE:
            if self._isolation is Isolation.NO_IMD:
                return "finished", Isolation.NO_IMD
            return "finished", Isolation.INVALID
        return "ongoing", None

    def drain_events(self) -> list[DcEvent]:
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ inputs

    def power_path(self, now: float, *, closed: bool, allowed: bool) -> None:
        """What the control-pilot machine has done with the contactor: `closed` as
        commanded, `allowed` when it also offers energy (PWM on, no stop)."""
        was_closed = self._closed
        self._closed, self._allowed = closed, closed and allowed
        if was_closed and not closed:
            self._opened(now)
        elif closed and not was_closed:
            self._closed_again()
        if self._cable_check is CableCheck.WAITING and self._allowed:
            self._begin_cable_check(now)
        if not self._allowed:
            if self._cable_check in (CableCheck.RAMP, CableCheck.MEASURE) and closed:
                self._finish_cable_check(Isolation.INVALID)
            self._mode = Mode.OFF

    def ev_limits(self, now: float, max_voltage_v: float, min_voltage_v: float | None) -> None:
        """The EV's limits from a setpoint; a maximum of 0 (or less) says nothing and
        leaves the one known before."""
        if max_voltage_v > 0:
            self._ev_max_v = max_voltage_v
            self._ev_min_v = min_voltage_v

    def start_cable_check(self, now: float) -> None:
        """`cable_check start`: begins the check unless one ran or runs since the
        contactors closed (the SECC repeats its request until PowerDelivery)."""
        if self._faults or (self._closed and self._cable_check is not CableCheck.NONE):
            return
        if self._cable_check in (CableCheck.WAITING, CableCheck.RAMP, CableCheck.MEASURE):
            return
        if not self._has_imd:
            self._cable_check = CableCheck.DONE
            self._isolation = Isolation.NO_IMD
            self._events.append(CableCheckFinished(Isolation.NO_IMD, None, 0.0))
            return
        self._cable_check = CableCheck.WAITING
        self._cc_since = now
        if self._allowed:
            self._begin_cable_check(now)

    def setpoint(
        self,
        now: float,
        *,
        precharge: bool,
        voltage_v: float | None,
        current_a: float | None,
        power_w: float | None,
    ) -> str | None:
        """A power_electronics_setpoint (after `ev_limits`); None when accepted, else why
        it is refused. `voltage_v` None: the EV's limits only; 0: output off."""
        if voltage_v is None:
            return None
        if self._faults:
            return "a DC fault is active: " + ",".join(sorted(f.value for f in self._faults))
        if voltage_v == 0:
            self._mode = Mode.OFF
            return None
        if not self._allowed:
            return "the DC contactors are not closed (or energy transfer is stopped)"
        if self._cable_check is not CableCheck.DONE or self._isolation not in _ENERGY_OK:
            return f"no passed cable check (isolation {self._isolation.value})"
        if precharge and self._mode is Mode.CHARGE:
            return "precharge asked for while charging"
        target = self._clamp_voltage(voltage_v)
        if precharge:
            wanted_a = PRECHARGE_MAX_A if current_a is None else current_a
            limit = min(wanted_a, PRECHARGE_MAX_A)
            if self._mode is not Mode.PRECHARGE:
                self._precharge_since, self._precharged = now, False
            self._mode = Mode.PRECHARGE
        else:
            wanted_a = self.limits.max_current_a if current_a is None else current_a
            limit = self._clamp_current(wanted_a, target, power_w)
            self._mode = Mode.CHARGE
        if (target, limit) != (voltage_v, wanted_a):
            self._events.append(
                SetpointClamped(
                    f"{voltage_v:g} V {wanted_a:g} A", f"{target:g} V {round(limit, 3):g} A"
                )
            )
        self._target_v, self._limit_a = target, limit
        self._check_precharged()
        return None

    def reading(self, now: float, voltage_v: float, current_a: float) -> None:
        """A power module measurement: protection first, then the sequence moves on."""
        self._voltage_v, self._current_a = voltage_v, current_a
        self._protect(now)
        cc = self._cable_check
        if cc is CableCheck.RAMP and abs(voltage_v - self._cc_voltage_v) <= (
            CABLE_CHECK_TOLERANCE_V
        ):
            self._cable_check, self._cc_reached_at = CableCheck.MEASURE, now
        elif cc is CableCheck.DISCHARGE and voltage_v < SAFE_VOLTAGE_V:
            self._finish_cable_check(self._isolation)
        self._check_precharged()
        self._check_weld(now)

    def isolation_reading(self, now: float, resistance_ohm: float | None) -> None:
        """An IMD result; during the check only one taken at the test voltage counts."""
        if resistance_ohm is None or not self._closed:
            return
        level = grade_isolation(resistance_ohm, self.limits.max_voltage_v)
        cc = self._cable_check
        if cc is CableCheck.MEASURE:
            self._cc_resistance = resistance_ohm
            if level is Isolation.FAULT:
                self._finish_cable_check(level)
            else:
                self._isolation = level
                self._cable_check = CableCheck.DISCHARGE
        elif cc in (CableCheck.DISCHARGE, CableCheck.DONE) and self._isolation in (
            Isolation.VALID,
            Isolation.WARNING,
        ):
            self._isolation = level  # monitoring while the contactors stay closed
        if level is Isolation.FAULT and cc in (
            CableCheck.MEASURE,
            CableCheck.DISCHARGE,
            CableCheck.DONE,
        ):
            self._raise(
                Fault.ISOLATION,
                f"isolation {resistance_ohm / 1000:g} kohm, below "
                f"{ISOLATION_FAULT_OHM_PER_V:g} ohm/V of {self.limits.max_voltage_v:g} V",
            )

    def tick(self, now: float) -> None:
        cc = self._cable_check
        if self.checking and now - self._cc_since >= CABLE_CHECK_TIMEOUT_S:
            self._raise(
                Fault.CABLE_CHECK_FAILED,
                f"cable check not done after {CABLE_CHECK_TIMEOUT_S:g} s ({cc.value})",
            )
        if (
            self._mode is Mode.PRECHARGE
            and not self._precharged
            and self._precharge_since is not None
            and now - self._precharge_since >= PRECHARGE_TIMEOUT_S
        ):
            self._raise(
                Fault.PRECHARGE_TIMEOUT,
                f"output at {self._voltage_v:.1f} V, not within {PRECHARGE_TOLERANCE_V:g} V "
                f"of {self._target_v:g} V after {PRECHARGE_TIMEOUT_S:g} s",
            )
        self._check_weld(now)

    def unplugged(self) -> None:
        """The EV left: its limits and the session's faults go (the control-pilot machine
        clears those itself); a weld holds until the output is discharged."""
        self._ev_max_v = self._ev_min_v = None
        for fault in list(self._faults):
            if fault is not Fault.DC_WELDED:
                del self._faults[fault]

    # ------------------------------------------------------------------ internals

    def _opened(self, now: float) -> None:
        """The contactors opened: a check under way fails; a finished one is reported as
        it ended (a fault stays visible) until they close again."""
        # weld check: only an output still live can show a weld (an empty one passes now)
        self._opened_at = now if self._voltage_v >= SAFE_VOLTAGE_V else None
        self._mode = Mode.OFF
        self._precharge_since, self._precharged = None, False
        if self._cable_check in (CableCheck.RAMP, CableCheck.MEASURE, CableCheck.DISCHARGE):
            self._finish_cable_check(Isolation.INVALID)

    def _closed_again(self) -> None:
        """A new closing: the isolation must be checked again (a check asked for while
        they were open is the one that runs now)."""
        self._opened_at = None  # closing ends a weld check
        if self._cable_check is CableCheck.DONE:
            self._cable_check = CableCheck.NONE
            self._cc_reached_at = self._cc_resistance = None
            if self._isolation is not Isolation.NO_IMD:
                self._isolation = Isolation.INVALID

    def _begin_cable_check(self, now: float) -> None:
        self._cable_check = CableCheck.RAMP
        self._cc_voltage_v = cable_check_voltage(self._ev_max_v, self.limits.max_voltage_v)
        self._cc_reached_at = None
        self._isolation = Isolation.INVALID

    def _finish_cable_check(self, level: Isolation) -> None:
        self._cable_check = CableCheck.DONE
        self._isolation = level
        self._events.append(CableCheckFinished(level, self._cc_resistance, self._cc_voltage_v))

    def _clamp_voltage(self, voltage_v: float) -> float:
        high = self.limits.max_voltage_v
        if self._ev_max_v is not None:
            high = min(high, self._ev_max_v)
        return min(max(voltage_v, self.limits.min_voltage_v), high)

    def _clamp_current(self, current_a: float, voltage_v: float, power_w: float | None) -> float:
        limit = min(current_a, self.limits.max_current_a)
        power = (
            self.limits.max_power_w if power_w is None else min(power_w, self.limits.max_power_w)
        )
        if voltage_v > 0:
            limit = min(limit, power / voltage_v)
        if 0 < limit < self.limits.min_current_a:
            limit = self.limits.min_current_a  # the module regulates no lower
        return max(limit, 0.0)

    def _voltage_limit_v(self) -> float:
        """The highest output voltage allowed now (the cut-off adds a margin)."""
        if self._cable_check in (CableCheck.RAMP, CableCheck.MEASURE, CableCheck.DISCHARGE):
            return self._cc_voltage_v  # the cable check may test above the EV's maximum
        limit = self.limits.max_voltage_v
        if self._ev_max_v is not None:
            limit = min(limit, self._ev_max_v)
        return limit

    def _current_limit_a(self) -> float:
        if self._cable_check in (CableCheck.RAMP, CableCheck.MEASURE):
            return CABLE_CHECK_MAX_A
        if self._mode is Mode.PRECHARGE:
            return PRECHARGE_MAX_A
        return self.limits.max_current_a

    def _protect(self, now: float) -> None:
        v, i = self._voltage_v, self._current_a
        v_limit = self._voltage_limit_v()
        if v > v_limit + OVERVOLTAGE_MARGIN_V:
            self._raise(
                Fault.DC_OVERVOLTAGE,
                f"output at {v:.1f} V, limit {v_limit:g} V (+{OVERVOLTAGE_MARGIN_V:g} V)",
            )
        i_limit = self._current_limit_a()
        i_cut = i_limit * OVERCURRENT_FACTOR + self.limits.current_tolerance_a
        if i > i_cut:
            self._raise(
                Fault.DC_OVERCURRENT, f"output at {i:.1f} A, limit {i_limit:g} A (cut {i_cut:g} A)"
            )

    def _check_precharged(self) -> None:
        if (
            self._mode is Mode.PRECHARGE
            and not self._precharged
            and abs(self._voltage_v - self._target_v) <= PRECHARGE_TOLERANCE_V
        ):
            self._precharged = True
            self._events.append(Precharged(self._voltage_v))

    def _check_weld(self, now: float) -> None:
        v = self._voltage_v
        if Fault.DC_WELDED in self._faults and v < SAFE_VOLTAGE_V and not self._closed:
            del self._faults[Fault.DC_WELDED]
            self._events.append(FaultChanged(Fault.DC_WELDED, False))
        if self._opened_at is None:
            return
        if v < SAFE_VOLTAGE_V:
            self._opened_at = None  # the output emptied: nothing holds it
        elif now - self._opened_at >= WELD_CHECK_S:
            self._raise(
                Fault.DC_WELDED,
                f"output still at {v:.1f} V {now - self._opened_at:.1f} s after the DC "
                "contactors opened: welded, with the EV's battery behind them",
            )
            self._opened_at = None

    def _raise(self, fault: Fault, info: str) -> None:
        if fault in self._faults:
            return
        self._faults[fault] = info
        self._mode = Mode.OFF
        if self._cable_check not in (CableCheck.NONE, CableCheck.DONE):
            level = Isolation.FAULT if fault is Fault.ISOLATION else Isolation.INVALID
            self._finish_cable_check(level)
        self._events.append(FaultChanged(fault, True, info))


def finite(*values: float | None) -> bool:
    """Every given number is finite (the bus refuses NaN, a Python caller might not)."""
    return all(v is None or math.isfinite(v) for v in values)


__all__ = [
    "CABLE_CHECK_MAX_A",
    "PRECHARGE_MAX_A",
    "PRECHARGE_TIMEOUT_S",
    "SAFE_VOLTAGE_V",
    "WELD_CHECK_S",
    "CableCheckFinished",
    "DcEvent",
    "DcLimits",
    "DcOutputs",
    "DcPowerPath",
    "FaultChanged",
    "Isolation",
    "Precharged",
    "SetpointClamped",
    "cable_check_voltage",
    "grade_isolation",
]
