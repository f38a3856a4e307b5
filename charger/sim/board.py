"""Simulated board: a physical model of the EVSE hardware plus an EV on each connector.

The EV follows IEC 61851-1 Annex A as a real car does: it closes S2 (state C, or D when
it asks for ventilation) once the duty cycle offers >= 6 A, draws min(own max, offered)
after a reaction delay, follows a lower duty after the same delay, and returns to B when
the PWM goes away, when it is asked to stop, or when its battery is full. At 5 % a car
with HLC does SLAC, then ISO 15118 with its EVCC (charger/sim/evcc), which sets its S2
and current while it runs (`hlc_drive`). The meter integrates energy from the current the
EV draws through the closed contactor. Faults can be injected at run time, from Python
or as JSON commands.

On a socket outlet (`socket_outlet = true`) the car comes with a cable whose coding
resistor (IEC 61851-1 Table B.2) the board's PP input reads; `unplug` pulls it at the car
(it stays in the socket) or at the station (PP breaks first, then CP).

On a DC EVSE (`kind = "dc"`) the EV is a CCS car: it closes S2 (state C) when it sees
5 %, as it would at CableCheck, and draws what the simulated power module delivers into
its battery (`charger/sim/dc.py`); its own DC contactor is driven by its EVCC (or
`ev_contactor`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from charger.cs.pwm import current_for_duty
from charger.cs.settings import EvseConfig
from charger.hal.interfaces import (
    PP_OPEN_OHM,
    EvseHardware,
    MeterReading,
    PilotReading,
    ProximityReading,
    SteadyLevel,
)
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner
from charger.sim.clock import LoopClock, SimClock
from charger.sim.dc import DC_FAULTS, SimDcOutput, SimIsolationMonitor, SimPowerModule
from charger.sim.evcc.options import HlcCar
from charger.sim.plc import SimPlcLink, SimPowerline
from charger.sim.settings import SimConfig

log = logging.getLogger(__name__)

# CP plateau voltages set by the EV's resistors, IEC 61851-1 Table A.3 (nominal values).
_EV_LEVEL_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0}
# A cable's coding resistor Rc per current capacity, IEC 61851-1 Table B.2 (nominal).
CABLE_RC_OHM = {13: 1500.0, 20: 680.0, 32: 220.0, 63: 100.0}
_NOMINAL_FREQUENCY_HZ = 50.0
_POWER_FACTOR = 0.99

FAULTS = (
    "diode_short",  # EV's CP diode shorted: the negative PWM level disappears
    "cp_short",  # CP shorted to PE: 0 V
    "rcd_trip",  # residual current: the RCD trips and stays tripped until reset
    "contactor_welded",  # the contactor stays closed whatever it is told
    "ev_ignore_reduction",  # the EV keeps drawing its old current after a duty decrease
    "lock_jam",  # the connector lock does not move
    "pp_fault",  # the PP contact is shorted to PE: 0 ohm, no valid cable coding
    "rcd_self_test_fail",  # the RCD does not trip on its test current
    *DC_FAULTS,  # DC EVSEs only, see charger/sim/dc.py
)


@dataclass(slots=True)
class SimEv:
    capacity_wh: float
    soc_percent: float
    max_current_a: float
    phases: int
    reaction_s: float
    plugged: bool = False
    wants_charge: bool = True
    ventilation: bool = False
    s2_state: str = "B"  # what the EV presents while plugged: B, C or D
    current_a: float = 0.0  # what the EV is set to draw when power is present
    ignore_reduction: bool = False
    diode_short: bool = False
    hlc: bool = False  # does SLAC (and, later, ISO 15118) at 5 %
    cable_a: int = 32  # a socket outlet: the rating of the car's cable (Table B.2)
    cable_in_socket: bool = False  # a socket outlet: the cable's plug is in the station
    evcc: HlcCar = field(default_factory=HlcCar)  # its ISO 15118 stack (charger/sim/evcc)


@dataclass(slots=True)
class _Outputs:
    pwm_duty: float | None = None  # None: steady level below
    steady: SteadyLevel = SteadyLevel.PLUS_12
    contactor_cmd: bool = False
    lock_cmd: bool = False


class SimEvse:
    """One simulated connector with its EV; implements every EvseHardware interface."""

    def __init__(self, config: EvseConfig, sim: SimConfig) -> None:
        self.config = config
        self.ev = SimEv(
            capacity_wh=sim.ev_capacity_wh,
            soc_percent=sim.ev_soc_percent,
            max_current_a=sim.ev_max_current_a,
            phases=sim.ev_phases,
            reaction_s=sim.ev_reaction_s,
            hlc=sim.ev_hlc,
            cable_a=int(sim.ev_cable_a),
            evcc=HlcCar.configured(sim),
        )
        self.powerline = SimPowerline(config.id)
        self.clock: SimClock = LoopClock()  # the car's own waits (a test's may be virtual)
        self.plug_ins = 0
        self._time_scale = sim.time_scale
        self.out = _Outputs()
        self.faults: set[str] = set()
        self.rcd_tripped = False
        self.contactor_closed = False
        self.lock_locked = False
        self.energy_import_wh = 0.0
        self._pilot_callbacks: list[Callable[[PilotReading], None]] = []
        self._rcd_callbacks: list[Callable[[bool], None]] = []
        self._token_callbacks: list[Callable[[str, str], None]] = []
        self._pp_callbacks: list[Callable[[ProximityReading], None]] = []
        self._last_pp = self.pp_reading()
        self.dc = (
            SimDcOutput(
                config, sim, contactor_closed=lambda: self.contactor_closed, faults=self.faults
            )
            if config.kind == "dc"
            else None
        )
        self._last_reading = self._reading()
        self._reaction: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ physics

    def _reading(self) -> PilotReading:
        out, ev = self.out, self.ev
        if "cp_short" in self.faults or (out.pwm_duty is None and out.steady is SteadyLevel.ZERO):
            return PilotReading(0.0, 0.0, 0.0)
        if out.pwm_duty is None and out.steady is SteadyLevel.MINUS_12:
            return PilotReading(-12.0, -12.0, 0.0)
        level = _EV_LEVEL_V[ev.s2_state if ev.plugged else "A"]
        if out.pwm_duty is None:
            return PilotReading(level, level, 100.0)
        # The EV's diode blocks the negative half-wave; shorted, the EV load pulls it in.
        negative = -level if (ev.plugged and ev.diode_short) else -12.0
        return PilotReading(level, negative, out.pwm_duty)

    def pp_reading(self) -> ProximityReading:
        """What the board's PP input reads: the cable's Rc with its plug in the socket."""
        if not self.ev.cable_in_socket:
            return ProximityReading(PP_OPEN_OHM)
        if "pp_fault" in self.faults:
            return ProximityReading(0.0)
        return ProximityReading(CABLE_RC_OHM[self.ev.cable_a])

    def _pp_changed(self) -> None:
        reading = self.pp_reading()
        if reading != self._last_pp:
            self._last_pp = reading
            loop = asyncio.get_running_loop()
            for callback in tuple(self._pp_callbacks):
                loop.call_soon(callback, reading)

    def _pilot_changed(self) -> None:
        reading = self._reading()
        if reading != self._last_reading:
            self._last_reading = reading
            # Like an ADC interrupt on a board, the report arrives from the loop, never
            # from inside the setter that caused it.
            loop = asyncio.get_running_loop()
            for callback in tuple(self._pilot_callbacks):
                loop.call_soon(callback, reading)

    def _offered_current_a(self) -> float:
        return 0.0 if self.out.pwm_duty is None else current_for_duty(self.out.pwm_duty)

    def _ev_target(self) -> tuple[str, float]:
        ev = self.ev
        hlc = ev.evcc
        if hlc.attached and ev.hlc and self._at_5_percent():  # its EVCC sets S2 (ISO 15118)
            return hlc.pilot, (0.0 if self.dc is not None else hlc.ac_current_a)
        wants = ev.plugged and ev.wants_charge and ev.soc_percent < 100.0
        if self.dc is not None:  # a CCS car: S2 closed for HLC DC charging at 5 %
            return ("C" if wants and self._at_5_percent() else "B"), 0.0
        offered = self._offered_current_a()
        if not (wants and offered > 0):
            return "B", 0.0
        return ("D" if ev.ventilation else "C"), min(ev.max_current_a, offered)

    def _at_5_percent(self) -> bool:
        return self.out.pwm_duty is not None and abs(self.out.pwm_duty - 5.0) < 0.5

    def _ev_react(self) -> None:
        """Schedules the EV's response to what it now sees (IEC 61851-1 Table A.6)."""
        if self._reaction is not None:
            self._reaction.cancel()
            self._reaction = None
        state, current = self._ev_target()
        if (state, current) == (self.ev.s2_state, self.ev.current_a):
            return
        delay = self.ev.reaction_s / self._time_scale
        self._reaction = asyncio.get_running_loop().call_later(delay, self._ev_apply)

    def _ev_apply(self) -> None:
        self._reaction = None
        ev = self.ev
        if not ev.plugged:
            return
        state, current = self._ev_target()
        reducing_while_charging = state in "CD" and ev.s2_state in "CD" and current < ev.current_a
        if not (reducing_while_charging and ev.ignore_reduction):
            ev.current_a = current
        if state != ev.s2_state:
            event(
                log,
                logging.INFO,
                "sim_ev_state",
                evse=self.config.id,
                state=state,
                current_a=ev.current_a,
            )
            ev.s2_state = state
            self._pilot_changed()

    def drawn_current_a(self) -> float:
        """AC current the EV draws (a DC EVSE's is in `dc`)."""
        ev = self.ev
        if self.dc is not None:
            return 0.0
        powered = self.contactor_closed and not self.rcd_tripped
        if powered and ev.plugged and ev.s2_state in ("C", "D"):
            return ev.current_a
        return 0.0

    def step(self, dt_s: float) -> None:
        """Advances energy and state of charge by `dt_s` of simulated time."""
        ev = self.ev
        if self.dc is not None:
            stored_wh = self.dc.step(dt_s, plugged=ev.plugged, soc_percent=ev.soc_percent)
            self.energy_import_wh = self.dc.energy_wh
            if stored_wh > 0:
                ev.soc_percent = min(100.0, ev.soc_percent + stored_wh / ev.capacity_wh * 100.0)
                if ev.soc_percent >= 100.0:
                    self._ev_react()
            return
        current = self.drawn_current_a()
        if current <= 0.0:
            return
        energy_wh = self._power_w(current) * dt_s / 3600.0
        self.energy_import_wh += energy_wh
        ev.soc_percent = min(100.0, ev.soc_percent + energy_wh / ev.capacity_wh * 100.0)
        if ev.soc_percent >= 100.0:
            self._ev_react()

    def _phases(self) -> int:
        return min(self.ev.phases, self.config.phases)

    def _power_w(self, current_a: float) -> float:
        return self.config.nominal_voltage_v * current_a * self._phases() * _POWER_FACTOR

    # ------------------------------------------------------------------ ControlPilot

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 < duty_percent < 100.0:
            raise ValueError(f"PWM duty {duty_percent} % is outside 0-100 %")
        self.out.pwm_duty = duty_percent
        self._pilot_output_changed()

    def set_steady(self, level: SteadyLevel) -> None:
        self.out.pwm_duty = None
        self.out.steady = level
        self._pilot_output_changed()

    def _pilot_output_changed(self) -> None:
        self._pilot_changed()
        if self.ev.plugged:
            self._ev_react()
            self._ev_slac()

    def _ev_slac(self) -> None:
        pev = self.powerline.pev
        if self.ev.hlc and self._at_5_percent():
            pev.start()
        elif pev.active or pev.matched:
            pev.stop()

    def read(self) -> PilotReading:
        return self._last_reading

    def on_change(self, callback: Callable[[PilotReading], None]) -> None:
        self._pilot_callbacks.append(callback)

    # ------------------------------------------------------------------ Contactor, lock

    def set_closed(self, closed: bool) -> None:
        self.out.contactor_cmd = closed
        if closed or "contactor_welded" not in self.faults:
            self.contactor_closed = closed

    def feedback_closed(self) -> bool | None:
        return self.contactor_closed

    # ------------------------------------------------------------------ RCD

    def tripped(self) -> bool:
        return self.rcd_tripped

    async def self_test(self) -> bool:
        return not self.rcd_tripped and "rcd_self_test_fail" not in self.faults

    def reset(self) -> bool:
        if "rcd_trip" not in self.faults and self.rcd_tripped:
            self._set_rcd(False)
        return not self.rcd_tripped

    def _set_rcd(self, tripped: bool) -> None:
        self.rcd_tripped = tripped
        for callback in tuple(self._rcd_callbacks):
            callback(tripped)

    # ------------------------------------------------------------------ meter

    async def read_meter(self) -> MeterReading:
        if self.dc is not None:  # a DC meter on the output
            dc = self.dc
            return MeterReading(
                voltage_v=(0.0, 0.0, 0.0),
                current_a=(0.0, 0.0, 0.0),
                power_w=round(dc.voltage_v * dc.current_a, 1),
                frequency_hz=0.0,
                power_factor=1.0,
                energy_import_wh=round(dc.energy_wh, 3),
                energy_export_wh=0.0,
                reactive_import_varh=0.0,
                reactive_export_varh=0.0,
                dc_voltage_v=round(dc.voltage_v, 2),
                dc_current_a=round(dc.current_a, 2),
            )
        current = self.drawn_current_a()
        phases = self._phases()
        currents = tuple(current if i < phases else 0.0 for i in range(3))
        volts = self.config.nominal_voltage_v
        return MeterReading(
            voltage_v=(
                volts,
                volts if self.config.phases > 1 else 0.0,
                volts if self.config.phases > 2 else 0.0,
            ),
            current_a=(currents[0], currents[1], currents[2]),
            power_w=round(self._power_w(current), 1),
            frequency_hz=_NOMINAL_FREQUENCY_HZ,
            power_factor=_POWER_FACTOR if current > 0 else 1.0,
            energy_import_wh=round(self.energy_import_wh, 3),
            energy_export_wh=0.0,
            reactive_import_varh=0.0,
            reactive_export_varh=0.0,
        )

    # ------------------------------------------------------------------ driving the EV

    def plug_in(self, cable_a: int | None = None) -> None:
        if cable_a is not None:
            self.set_cable(cable_a)
        if self.ev.plugged:
            return
        if self.config.socket_outlet:  # the cable goes into the socket first
            self.ev.cable_in_socket = True
            self._pp_changed()
        self.ev.plugged = True
        self.plug_ins += 1
        self.ev.s2_state = "B"
        self.ev.current_a = 0.0
        self.powerline.plug(True)
        self._pilot_changed()
        self._ev_react()
        self._ev_slac()

    def set_cable(self, cable_a: int) -> None:
        """The car's cable for a socket outlet: 13, 20, 32 or 63 A (its Rc, Table B.2)."""
        if cable_a not in CABLE_RC_OHM:
            raise ValueError(
                f"a cable of {cable_a} A has no coding in IEC 61851-1 Table B.2 "
                f"(expected one of {', '.join(map(str, CABLE_RC_OHM))})"
            )
        self.ev.cable_a = cable_a
        self._pp_changed()

    def unplug(self, at: str = "ev") -> None:
        """Pulls the plug: no reaction delay, even under load. `at` "ev": at the car (a
        socket outlet's cable stays in the socket); "station": the cable leaves the
        socket, PP breaking before CP as with a real plug."""
        if at not in ("ev", "station"):
            raise ValueError(f'unplug \'at\' must be "ev" or "station", got {at!r}')
        if at == "station" and self.ev.cable_in_socket:
            self.ev.cable_in_socket = False
            self._pp_changed()
        if self._reaction is not None:
            self._reaction.cancel()
            self._reaction = None
        self.ev.plugged = False
        self.ev.s2_state = "B"
        self.ev.current_a = 0.0
        if self.dc is not None:
            self.dc.unplugged()
        self.powerline.plug(False)
        self._pilot_changed()

    def request_charging(self, wanted: bool) -> None:
        self.ev.wants_charge = wanted
        self._ev_react()

    def request_ventilation(self, wanted: bool) -> None:
        self.ev.ventilation = wanted
        self._ev_react()

    def hlc_drive(self, pilot: str, ac_current_a: float = 0.0) -> None:
        """The car's EVCC: S2 ("B" or "C") and, AC, the current it draws per phase; at
        once (the car decided it, no PWM to react to)."""
        self.ev.evcc.pilot, self.ev.evcc.ac_current_a = pilot, ac_current_a
        if self._reaction is not None:
            self._reaction.cancel()
            self._reaction = None
        self._ev_apply()

    def dlink_error(self) -> None:
        """The car's EVCC reports D-LINK_ERROR (ISO 15118-3) after a failed V2G session:
        its modem leaves the logical network and, while it sees 5 %, matches anew."""
        self.powerline.pev.stop()
        if self.ev.plugged:
            self._ev_slac()

    def set_ev_contactor(self, closed: bool) -> None:
        """DC: the car closes or opens its own contactor (PowerDelivery start / stop)."""
        if self.dc is None:
            raise ValueError(f"EVSE {self.config.id} is AC: the car has no DC contactor here")
        if closed and not self.ev.plugged:
            raise ValueError("the car is not plugged in")
        self.dc.ev_contactor_closed = closed

    def present_token(self, token: str, token_type: str = "ISO14443") -> None:
        for callback in tuple(self._token_callbacks):
            callback(token, token_type)

    def set_fault(self, fault: str, active: bool) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (expected one of {', '.join(FAULTS)})")
        if fault in DC_FAULTS and self.dc is None:
            raise ValueError(f"fault {fault!r} needs a DC EVSE; EVSE {self.config.id} is AC")
        (self.faults.add if active else self.faults.discard)(fault)
        self.ev.diode_short = "diode_short" in self.faults
        self.ev.ignore_reduction = "ev_ignore_reduction" in self.faults
        if fault == "rcd_trip" and active:
            self._set_rcd(True)
        if fault == "contactor_welded" and not active:
            self.contactor_closed = self.out.contactor_cmd
        if fault == "lock_jam" and not active:
            self.lock_locked = self.out.lock_cmd
        self._pilot_changed()
        self._pp_changed()

    def snapshot(self) -> dict[str, Any]:
        ev, reading = self.ev, self._last_reading
        return {
            "evse": self.config.id,
            "ev": {
                "plugged": ev.plugged,
                "state": ev.s2_state if ev.plugged else "A",
                "wants_charge": ev.wants_charge,
                "ventilation": ev.ventilation,
                "soc_percent": round(ev.soc_percent, 3),
                "current_a": self.drawn_current_a(),
                "max_current_a": ev.max_current_a,
                "phases": ev.phases,
            },
            "pilot": {
                "positive_v": reading.positive_v,
                "negative_v": reading.negative_v,
                "duty_percent": reading.duty_percent,
            },
            **(
                {
                    "cable": {
                        "current_a": ev.cable_a,
                        "in_socket": ev.cable_in_socket,
                        "pp_ohm": self._last_pp.resistance_ohm
                        if self._last_pp.resistance_ohm != PP_OPEN_OHM
                        else None,
                    }
                }
                if self.config.socket_outlet
                else {}
            ),
            "contactor_closed": self.contactor_closed,
            "lock_locked": self.lock_locked,
            "rcd_tripped": self.rcd_tripped,
            "energy_import_wh": round(self.energy_import_wh, 3),
            "faults": sorted(self.faults),
            "slac": {
                "hlc": ev.hlc,
                "matched": self.powerline.pev.matched,
                "attenuation_db": self.powerline.pev.attenuation_db,
            },
            **({"evcc": ev.evcc.snapshot()} if self.config.hlc else {}),
            **({"dc": self.dc.snapshot(ev.soc_percent)} if self.dc is not None else {}),
        }


class _LockAdapter:
    def __init__(self, evse: SimEvse) -> None:
        self._evse = evse

    def set_locked(self, locked: bool) -> None:
        self._evse.out.lock_cmd = locked
        if "lock_jam" not in self._evse.faults:
            self._evse.lock_locked = locked

    def feedback_locked(self) -> bool | None:
        return self._evse.lock_locked


class _RcdAdapter:
    def __init__(self, evse: SimEvse) -> None:
        self._evse = evse

    def tripped(self) -> bool:
        return self._evse.tripped()

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._evse._rcd_callbacks.append(callback)

    async def self_test(self) -> bool:
        return await self._evse.self_test()

    def reset(self) -> bool:
        return self._evse.reset()


class _PpAdapter:
    def __init__(self, evse: SimEvse) -> None:
        self._evse = evse

    def read(self) -> ProximityReading:
        return self._evse._last_pp

    def on_change(self, callback: Callable[[ProximityReading], None]) -> None:
        self._evse._pp_callbacks.append(callback)


class _MeterAdapter:
    def __init__(self, evse: SimEvse) -> None:
        self._evse = evse

    async def read(self) -> MeterReading:
        return await self._evse.read_meter()


class _IdReaderAdapter:
    def __init__(self, evse: SimEvse) -> None:
        self._evse = evse

    def on_token(self, callback: Callable[[str, str], None]) -> None:
        self._evse._token_callbacks.append(callback)


@dataclass(slots=True)
class SimBoard:
    """The Board the `sim` backend provides."""

    sims: dict[int, SimEvse]
    physics_period_s: float
    time_scale: float
    _hardware: dict[int, EvseHardware] = field(default_factory=dict)
    _tasks: TaskOwner = field(default_factory=lambda: TaskOwner("sim board"))

    def __post_init__(self) -> None:
        for evse_id, sim in self.sims.items():
            self._hardware[evse_id] = EvseHardware(
                pilot=sim,
                contactor=sim,
                rcd=_RcdAdapter(sim),
                meter=_MeterAdapter(sim),
                lock=_LockAdapter(sim) if sim.config.has_lock else None,
                id_reader=_IdReaderAdapter(sim),
                proximity=_PpAdapter(sim) if sim.config.socket_outlet else None,
                power_module=SimPowerModule(sim.dc) if sim.dc is not None else None,
                isolation_monitor=SimIsolationMonitor(sim.dc) if sim.dc is not None else None,
                plc=SimPlcLink(sim.powerline),
            )

    @property
    def evses(self) -> Mapping[int, EvseHardware]:
        return self._hardware

    def evse(self, evse_id: int = 1) -> SimEvse:
        try:
            return self.sims[evse_id]
        except KeyError:
            raise ValueError(f"no simulated EVSE {evse_id} (have {sorted(self.sims)})") from None

    async def start(self) -> None:
        self._tasks.spawn(self._physics(), "sim physics")  # a failure gets logged

    async def stop(self) -> None:
        await self._tasks.close()

    def drive_safe(self) -> None:
        for sim in self.sims.values():
            sim.set_closed(False)
            sim.set_steady(SteadyLevel.MINUS_12)
            if sim.dc is not None:
                sim.dc.disable()

    async def _physics(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.physics_period_s)
            now = loop.time()
            for sim in self.sims.values():
                sim.step((now - last) * self.time_scale)
            last = now

    def command(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Runs one JSON command (see README, "Simulated board"); returns the reply."""
        name = payload.get("cmd")
        handler = _COMMANDS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ValueError(f"unknown command {name!r} (expected one of {', '.join(_COMMANDS)})")
        evse_id = payload.get("evse", 1)
        if not isinstance(evse_id, int) or isinstance(evse_id, bool):
            raise ValueError(f"'evse' must be an integer EVSE id, got {evse_id!r}")
        sim = self.evse(evse_id)
        handler(sim, payload)
        return sim.snapshot()


def _arg(payload: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(
            f"command {payload.get('cmd')!r} needs '{key}' of type "
            f"{getattr(kind, '__name__', kind)}, got {value!r}"
        )
    return value


def _set_ev(sim: SimEvse, payload: Mapping[str, Any]) -> None:
    limits = {
        "soc_percent": (0, 100),
        "max_current_a": (0, 80),
        "phases": (1, 3),
        "capacity_wh": (100, 1_000_000),
        "reaction_s": (0, 10),
    }
    for key, (lo, hi) in limits.items():
        if key in payload:
            value = _arg(payload, key, (int, float))
            if not lo <= value <= hi:
                raise ValueError(f"set_ev: '{key}' must be within {lo}-{hi}, got {value}")
            setattr(sim.ev, key, int(value) if key == "phases" else float(value))
    if "hlc" in payload:
        sim.ev.hlc = _arg(payload, "hlc", bool)
    dc_limits: dict[str, tuple[float, float]] = {
        "battery_voltage_v": (50, 1000),
        "battery_resistance_ohm": (0.001, 10),
        "dc_max_voltage_v": (50, 1500),
        "dc_max_current_a": (1, 1000),
    }
    for key, (low, high) in dc_limits.items():
        if key not in payload:
            continue
        if sim.dc is None:
            raise ValueError(f"set_ev: '{key}' needs a DC EVSE; EVSE {sim.config.id} is AC")
        value = _arg(payload, key, (int, float))
        if not low <= value <= high:
            raise ValueError(f"set_ev: '{key}' must be within {low:g}-{high:g}, got {value}")
        attr = {"dc_max_voltage_v": "ev_max_voltage_v", "dc_max_current_a": "ev_max_current_a"}
        setattr(sim.dc, attr.get(key, key), float(value))
    sim.ev.evcc.update(payload)  # protocol, energy, target_soc_percent, ... (its EVCC)
    pev = sim.powerline.pev
    if "attenuation_db" in payload:
        pev.attenuation_db = _bounded_int(payload, "attenuation_db", 0, 255)
    if "lose_sounds" in payload:
        pev.lose_sounds = _bounded_int(payload, "lose_sounds", 0, 100)
    if sim.ev.plugged:
        sim._ev_react()
        sim._ev_slac()


def _bounded_int(payload: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value: int = _arg(payload, key, int)
    if not lo <= value <= hi:
        raise ValueError(f"set_ev: '{key}' must be within {lo}-{hi}, got {value}")
    return value


def _rcd_reset(sim: SimEvse) -> None:
    sim.reset()


_COMMANDS: dict[str, Callable[[SimEvse, Mapping[str, Any]], None]] = {
    "plug_in": lambda sim, p: sim.plug_in(_arg(p, "cable_a", int) if "cable_a" in p else None),
    "unplug": lambda sim, p: sim.unplug(_arg(p, "at", str) if "at" in p else "ev"),
    "set_cable": lambda sim, p: sim.set_cable(_arg(p, "cable_a", int)),
    "start_charging": lambda sim, _: sim.request_charging(True),
    "stop_charging": lambda sim, _: sim.request_charging(False),
    "ventilation": lambda sim, p: sim.request_ventilation(_arg(p, "on", bool)),
    "present_token": lambda sim, p: sim.present_token(
        _arg(p, "token", str), p.get("token_type", "ISO14443")
    ),
    "fault": lambda sim, p: sim.set_fault(_arg(p, "fault", str), p.get("on", True) is not False),
    "rcd_reset": lambda sim, _: _rcd_reset(sim),
    "ev_contactor": lambda sim, p: sim.set_ev_contactor(_arg(p, "on", bool)),
    "set_ev": _set_ev,
    "state": lambda sim, _: None,
}


def create_board(evses: Sequence[EvseConfig], sim: SimConfig) -> SimBoard:
    """The simulated board: one simulated EVSE, with its car, per configured EVSE."""
    return SimBoard(
        sims={e.id: SimEvse(e, sim) for e in evses},
        physics_period_s=sim.physics_period_s,
        time_scale=sim.time_scale,
    )
