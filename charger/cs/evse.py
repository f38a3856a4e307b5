"""One EVSE: drives its hardware from the IEC 61851 machine and reports on the bus.

The safety path is synchronous: a HAL callback runs the state machine and sets the
outputs (contactor first when opening) before anything is published or awaited. A DC EVSE
adds its DC power path (`dc.py`): a power-module or isolation reading runs it in the same
way, and a fault it finds opens the contactor in that same call, before the module is
switched off and before anything is reported.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from charger.bus import Bus, RequestTimeout, api, messages
from charger.bus.messages import Topic
from charger.cs import iec61851 as fsm_mod
from charger.cs.dc import (
    CableCheckFinished,
    DcEvent,
    DcLimits,
    DcOutputs,
    DcPowerPath,
    FaultChanged,
    Precharged,
    SetpointClamped,
    finite,
)
from charger.cs.iec61851 import Fault, Iec61851, Outputs, PilotMode
from charger.cs.pwm import DutyError, duty_for_current
from charger.cs.settings import EvseConfig
from charger.hal.interfaces import (
    DcReading,
    EvseHardware,
    IsolationReading,
    MeterError,
    MeterReading,
    PilotReading,
    ProximityReading,
    SteadyLevel,
)
from charger.runtime.log import event
from charger.runtime.tasks import OwnerClosed, TaskOwner

log = logging.getLogger(__name__)

TICK_S = 0.1  # timer resolution of the state machine (feedback, grace periods)
CURRENT_SUPERVISION_S = 1.0  # how often the meter current feeds overcurrent supervision
RCD_TEST_TIMEOUT_S = 2.0  # a self-test that has not answered by then failed
RCD_RETEST_S = 30.0  # after a failed self-test, the next try (with an EV connected)
_STEADY = {
    PilotMode.PLUS_12: SteadyLevel.PLUS_12,
    PilotMode.ZERO: SteadyLevel.ZERO,
    PilotMode.MINUS_12: SteadyLevel.MINUS_12,
}
_MALFUNCTIONS = frozenset(
    {
        Fault.DIODE,
        Fault.RCD,
        Fault.CONTACTOR_WELDED,
        Fault.CONTACTOR_NOT_CLOSING,
        Fault.CP_SHORT,
        Fault.DC_WELDED,
        Fault.CONTACTOR_DROPPED,
        Fault.RCD_SELF_TEST,
        Fault.METER,
    }
)
# DC: cut-offs for safety (status evse_emergency_shutdown) and failed sessions (shutdown).
_EMERGENCIES = frozenset({Fault.ISOLATION, Fault.DC_OVERVOLTAGE, Fault.DC_OVERCURRENT})
_SHUTDOWNS = frozenset({Fault.PRECHARGE_TIMEOUT, Fault.CABLE_CHECK_FAILED})
_CONTACTOR_FAULTS = frozenset(
    {Fault.CONTACTOR_WELDED, Fault.CONTACTOR_NOT_CLOSING, Fault.DC_WELDED, Fault.CONTACTOR_DROPPED}
)
# cs_status_and_limits updates follow the DC output in steps of this size, not every sample
REPORT_STEP_V = 1.0
REPORT_STEP_A = 1.0


@dataclass(frozen=True, slots=True)
class EvseSettings:
    free_charging: bool
    meter_interval_s: float
    connection_timeout_s: float


class EvseController:
    def __init__(
        self,
        config: EvseConfig,
        hw: EvseHardware,
        bus: Bus,
        settings: EvseSettings,
        tasks: TaskOwner,
        *,
        available: bool = True,
        clock: Callable[[], float] = time.monotonic,
        next_event_id: Callable[[], int],
    ) -> None:
        self.config = config
        self.hw = hw
        self._bus = bus
        self._settings = settings
        self._tasks = tasks
        self._clock = clock
        self._next_event_id = next_event_id
        if config.kind == "dc" and hw.power_module is None:
            raise ValueError(
                f"EVSE {config.id} ({config.evse_id}) is DC but the board has no power module "
                "for it"
            )
        if config.socket_outlet and hw.proximity is None:
            raise ValueError(
                f"EVSE {config.id} ({config.evse_id}) is a socket outlet but the board has no "
                "proximity (PP) input for it"
            )
        self.fsm = self._new_fsm(available)
        self._rcd_test: asyncio.Task[None] | None = None
        self._rcd_failed_at: float | None = None
        self.dc = self._new_dc()
        self._dc_applied: DcOutputs | None = None
        self._dc_events: list[DcEvent] = []
        self._applied: Outputs | None = None
        self._halted = False
        self._crash: BaseException | None = None
        self._session_token: str | None = None
        self._plugged = False  # an EV has been seen since the last state A
        self._authorized_at: float | None = None
        self._last_limits: dict[str, Any] | None = None
        self._cp_status: messages.CpStatusUpdate | None = None  # the last one published

    @property
    def evse_id(self) -> str:
        return self.config.evse_id

    def _new_fsm(self, available: bool) -> Iec61851:
        fsm = Iec61851(
            max_current_a=self.config.max_current_a,
            has_lock=self.hw.lock is not None,
            ventilation_available=self.config.ventilation_available,
            now=self._clock(),
            pwm_by_request=self.config.hlc,
            closing_on_request=self.config.kind == "dc",
            socket_outlet=self.config.socket_outlet,
            rcd_self_test=self.config.rcd_self_test,
            contactor_min_off_s=self.config.contactor_min_off_s,
        )
        fsm.set_available(self._clock(), available)
        return fsm

    def _new_dc(self) -> DcPowerPath | None:
        cfg = self.config
        if cfg.kind != "dc":
            return None
        limits = DcLimits(
            max_voltage_v=cfg.dc_max_voltage_v,
            min_voltage_v=cfg.dc_min_voltage_v,
            max_current_a=cfg.dc_max_current_a,
            min_current_a=cfg.dc_min_current_a,
            max_power_w=cfg.dc_max_power_w,
            current_tolerance_a=cfg.dc_current_regulation_tolerance_a,
        )
        return DcPowerPath(limits, has_imd=self.hw.isolation_monitor is not None, now=self._clock())

    # ------------------------------------------------------------------ wiring

    def start(self) -> None:
        self.hw.pilot.on_change(self._on_pilot)
        self.hw.rcd.on_change(lambda tripped: self.step(lambda now: self.fsm.rcd(now, tripped)))
        if self.hw.id_reader is not None:
            self.hw.id_reader.on_token(self._on_token)
        if self.hw.proximity is not None and self.config.socket_outlet:
            self.hw.proximity.on_change(self._on_proximity)
        if self.hw.power_module is not None and self.dc is not None:
            self.hw.power_module.on_reading(self._on_dc_reading)
        if self.hw.isolation_monitor is not None and self.dc is not None:
            self.hw.isolation_monitor.on_reading(self._on_isolation)
        self._sync_with_hardware()

    def _sync_with_hardware(self) -> None:
        reading = self.hw.pilot.read()
        tripped = self.hw.rcd.tripped()
        self.step(lambda now: self.fsm.rcd(now, tripped))
        if self.hw.proximity is not None and self.config.socket_outlet:
            self._on_proximity(self.hw.proximity.read())
        self._on_pilot(reading)
        if self.hw.power_module is not None and self.dc is not None:
            self._on_dc_reading(self.hw.power_module.read())
        self._publish_contactor()
        self._publish_limits_if_changed()

    async def run(self) -> None:
        """Timers and meter supervision; the pilot path itself is callback-driven."""
        if self._halted:  # restarted after a crash: begin again from what the board says
            event(log, logging.WARNING, "evse_restart", evse=self.evse_id)
            self.fsm = self._new_fsm(self.fsm.available)
            self.dc = self._new_dc()
            self._dc_events = []
            self._halted, self._crash, self._plugged = False, None, False
            self._sync_with_hardware()
        loop = asyncio.get_running_loop()
        next_current = next_publish = loop.time()
        while True:
            await asyncio.sleep(TICK_S)
            self.step(self._tick)
            if self._crash is not None:
                raise RuntimeError(f"EVSE {self.evse_id} controller failed") from self._crash
            self._expire_authorization()
            self._retry_rcd_test()
            now = loop.time()
            if now >= next_current or now >= next_publish:
                reading = await self.read_meter()
                if reading is None:
                    next_current = now + CURRENT_SUPERVISION_S
                    continue
                if self.dc is None:  # AC current supervision (IEC 61851-1 Annex A)
                    peak_a = max(reading.current_a)
                    self.step(functools.partial(self.fsm.measured_current, current_a=peak_a))
                next_current = now + CURRENT_SUPERVISION_S
                if now >= next_publish:
                    self._bus.publish(messages.METER_VALUES_UPDATE.make(self.meter_data(reading)))
                    next_publish = now + self._settings.meter_interval_s

    async def read_meter(self) -> MeterReading | None:
        """A reading, or None with the meter fault raised (cleared by the next answer):
        without the meter the current is not supervised, so nothing closes."""
        try:
            reading = await self.hw.meter.read()
        except MeterError as exc:
            info = str(exc)
            if Fault.METER not in self.fsm.faults:
                self.step(lambda now: self.fsm.external_fault(now, Fault.METER, True, info))
            return None
        if Fault.METER in self.fsm.faults:
            self.step(lambda now: self.fsm.external_fault(now, Fault.METER, False))
        return reading

    def halt(self) -> None:
        """Contactor open, CP in state F, and no more reactions until `run` restarts."""
        self._halted = True
        self._applied = None
        self._dc_applied = None
        self.hw.contactor.set_closed(False)
        self.hw.pilot.set_steady(SteadyLevel.MINUS_12)
        if self.hw.power_module is not None:
            self.hw.power_module.disable()

    def shut_down(self) -> None:
        """The station stops (SIGTERM): outputs safe, then logged and reported on the bus."""
        self.halt()
        event(log, logging.INFO, "contactor", evse=self.evse_id, closed=False, reason="shutdown")
        data = self.contactor_status()
        if data["status"] != "error":  # a welded contactor stays reported as such
            data = {"evse_id": self.evse_id, "status": "opened", "info": "station shutting down"}
        self._bus.publish(messages.CS_CONTACTOR_STATUS_UPDATE.make(data))

    # ------------------------------------------------------------------ safety path

    def _on_pilot(self, reading: PilotReading) -> None:
        self.step(
            lambda now: self.fsm.pilot(
                now, reading.positive_v, reading.negative_v, reading.duty_percent
            )
        )

    def _on_proximity(self, reading: ProximityReading) -> None:
        self.step(lambda now: self.fsm.proximity(now, reading.resistance_ohm))
        self._publish_limits_if_changed()  # the cable's capacity is the offer's ceiling

    def _tick(self, now: float) -> None:
        # Feedback inputs are re-read every tick: a contactor opens some ms after its
        # command, a motor lock later still, and welds or drop-outs come at any time.
        self.fsm.contactor_feedback(now, self.hw.contactor.feedback_closed())
        if self.hw.lock is not None:
            self.fsm.lock_feedback(now, self.hw.lock.feedback_locked())
        self.fsm.tick(now)
        if self.dc is not None:
            self.dc.tick(now)

    def _on_dc_reading(self, reading: DcReading) -> None:
        dc = self.dc
        if dc is not None:
            self.step(lambda now: dc.reading(now, reading.voltage_v, reading.current_a))
            self._publish_limits_if_changed()

    def _on_isolation(self, reading: IsolationReading) -> None:
        dc = self.dc
        if dc is not None:
            self.step(lambda now: dc.isolation_reading(now, reading.resistance_ohm))
            self._publish_limits_if_changed()

    def step(self, action: Callable[[float], None]) -> None:
        """Runs one input through the state machine, sets the hardware, then reports."""
        if self._halted:
            return
        try:
            action(self._clock())
            for _ in range(4):  # feedback may unlock the next step (lock -> contactor)
                self._hand_over_dc_faults()
                if not self._apply_outputs():
                    break
                now = self._clock()
                self.fsm.contactor_feedback(now, self.hw.contactor.feedback_closed())
                if self.hw.lock is not None:
                    self.fsm.lock_feedback(now, self.hw.lock.feedback_locked())
            self._settle_dc()
        except Exception as exc:
            # Safety first: outputs safe now; `run` raises so the supervisor restarts us.
            log.exception("evse_controller_failed", extra={"kv": {"evse": self.evse_id}})
            self._crash = exc
            self.halt()
            return
        self._emit(self.fsm.drain_events())
        if self.fsm.rcd_test_due and self._rcd_test is None:
            self._start_rcd_test()

    def _hand_over_dc_faults(self) -> None:
        """Faults of the DC power path go to the control-pilot machine, which opens the
        contactor (applied next, before the power module is touched)."""
        if self.dc is None:
            return
        for ev in self.dc.drain_events():
            if isinstance(ev, FaultChanged):
                self.fsm.external_fault(self._clock(), ev.fault, ev.active, ev.info)
            else:
                self._dc_events.append(ev)

    def _settle_dc(self) -> None:
        """After the contactor: tells the DC power path what it did, then sets the power
        module and the isolation monitor."""
        dc = self.dc
        if dc is None:
            return
        if not self.fsm.ev_connected:
            dc.unplugged()
        for _ in range(2):  # a fault handed over here opens the contactor first, too
            out = self.fsm.outputs
            dc.power_path(
                self._clock(), closed=out.contactor_closed, allowed=out.pilot is PilotMode.PWM
            )
            self._hand_over_dc_faults()
            if not self._apply_outputs():
                break
        new, old = dc.outputs, self._dc_applied
        if new == old:
            return
        module = self.hw.power_module
        assert module is not None  # checked in __init__
        if not new.enabled and (old is None or old.enabled):
            module.disable()
        if new.enabled and (
            old is None
            or not old.enabled
            or (new.voltage_v, new.current_a) != (old.voltage_v, old.current_a)
        ):
            module.set_limits(new.voltage_v, new.current_a)
        if new.enabled and (old is None or not old.enabled):
            module.enable()
        imd = self.hw.isolation_monitor
        if imd is not None and (old is None or new.imd_on != old.imd_on):
            if new.imd_on:
                imd.start()
            else:
                imd.stop()
        self._dc_applied = new

    def _apply_outputs(self) -> bool:
        out, old = self.fsm.outputs, self._applied
        if out == old:
            return False
        if not out.contactor_closed and (old is None or old.contactor_closed):
            self.hw.contactor.set_closed(False)  # opening always goes first
        if old is None or (out.pilot, out.duty_percent) != (old.pilot, old.duty_percent):
            if out.pilot is PilotMode.PWM and out.duty_percent is not None:
                self.hw.pilot.set_pwm(out.duty_percent)
            else:
                self.hw.pilot.set_steady(_STEADY[out.pilot])
        if self.hw.lock is not None and (old is None or out.lock_locked != old.lock_locked):
            self.hw.lock.set_locked(out.lock_locked)
        if out.contactor_closed and (old is None or not old.contactor_closed):
            self.hw.contactor.set_closed(True)
        self._applied = out
        return True

    async def _rcd_self_test(self) -> None:
        """The RCD's self-test before a session (IEC 62955 RDC-DD: test current in, trip
        and re-arm seen); the contactor closes only once it passed."""
        try:
            try:
                passed = await asyncio.wait_for(self.hw.rcd.self_test(), RCD_TEST_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                event(log, logging.ERROR, "rcd_self_test_error", evse=self.evse_id, error=str(exc))
                passed = False
            event(log, logging.INFO, "rcd_self_test", evse=self.evse_id, passed=passed)
            self._rcd_failed_at = None if passed else self._clock()
        finally:
            self._rcd_test = None
        self.step(lambda now: self.fsm.rcd_self_test_result(now, passed))

    def _start_rcd_test(self) -> None:
        try:
            asyncio.get_running_loop()
            self._rcd_test = self._tasks.spawn(self._rcd_self_test(), "RCD self-test")
        except (RuntimeError, OwnerClosed):  # no loop (a test), or shutting down
            return

    def _retry_rcd_test(self) -> None:
        failed = self._rcd_failed_at
        if (
            failed is not None
            and self._rcd_test is None
            and self.fsm.ev_connected
            and self._clock() - failed >= RCD_RETEST_S
        ):
            self._rcd_failed_at = None
            self._start_rcd_test()

    # ------------------------------------------------------------------ reporting

    def _emit(self, events: list[fsm_mod.Event]) -> None:
        for ev in events:
            match ev:
                case fsm_mod.StateChanged():
                    event(
                        log,
                        logging.INFO,
                        "cp_state",
                        evse=self.evse_id,
                        state=ev.state,
                        positive_v=ev.positive_v,
                        negative_v=ev.negative_v,
                    )
                    data: messages.CpStatusUpdate = {
                        "evse_id": self.evse_id,
                        "connector_id": self.config.connector_id,
                        "state": ev.state.value,
                        "max_voltage": ev.positive_v,
                        "min_voltage": ev.negative_v,
                        "duty_cycle": ev.duty_percent,
                    }
                    self._cp_status = data
                    self._bus.publish(messages.CP_STATUS_UPDATE.make(data))
                    if self.fsm.ev_connected and not self._plugged:
                        self._plugged = True
                        self._on_plug_in()
                case fsm_mod.ContactorChanged():
                    event(
                        log,
                        logging.INFO,
                        "contactor",
                        evse=self.evse_id,
                        closed=ev.closed,
                        reason=ev.reason,
                    )
                    self._publish_contactor(ev.reason)
                case fsm_mod.FaultRaised():
                    event(
                        log,
                        logging.WARNING,
                        "fault",
                        evse=self.evse_id,
                        fault=ev.fault,
                        info=ev.info,
                    )
                    self._notify(ev.fault.value, ev.info)
                    if ev.fault in _CONTACTOR_FAULTS:
                        self._publish_contactor(ev.info)
                case fsm_mod.FaultCleared():
                    event(log, logging.INFO, "fault_cleared", evse=self.evse_id, fault=ev.fault)
                    self._notify(ev.fault.value, "cleared")
                case fsm_mod.ChargingStopped():
                    event(
                        log, logging.INFO, "charging_stopped", evse=self.evse_id, reason=ev.reason
                    )
                case fsm_mod.SessionEnded():
                    event(
                        log,
                        logging.INFO,
                        "unplugged",
                        evse=self.evse_id,
                        at=ev.unplugged_at,
                    )
                    self._plugged = False
                    self._session_token = None
                    self._authorized_at = None
        dc_events, self._dc_events = self._dc_events, []
        for dc_ev in dc_events:
            match dc_ev:
                case CableCheckFinished():
                    event(
                        log,
                        logging.INFO,
                        "cable_check",
                        evse=self.evse_id,
                        isolation=dc_ev.isolation.value,
                        resistance_ohm=dc_ev.resistance_ohm,
                        test_voltage_v=dc_ev.test_voltage_v,
                    )
                case SetpointClamped():
                    event(
                        log,
                        logging.INFO,
                        "dc_setpoint_clamped",
                        evse=self.evse_id,
                        requested=dc_ev.requested,
                        applied=dc_ev.applied,
                    )
                case Precharged():
                    event(
                        log,
                        logging.INFO,
                        "precharged",
                        evse=self.evse_id,
                        voltage_v=dc_ev.voltage_v,
                    )
        if events or dc_events:  # status and limits follow faults and states, not every tick
            self._publish_limits_if_changed()

    def _notify(self, code: str, info: str) -> None:
        data: messages.NotifyEventUpdate = {
            "event_id": self._next_event_id(),
            "timestamp": api.timestamp(),
            "tech_code": code[:50],
            "tech_info": info[:500],
            "evse_id": self.evse_id,
        }
        self._bus.publish(messages.NOTIFY_EVENT_UPDATE.make(data, Topic.CS_JOSEV))

    def contactor_request(self) -> messages.CsContactorStatusResponse:
        """A cs_contactor_status request. On a DC EVSE it is the SECC asking for the
        contactors (CableCheck, PowerDelivery): they close now if IEC 61851 allows it."""
        if self.dc is not None:
            self.step(self.fsm.allow_closing)
        return self.contactor_status()

    def contactor_status(self) -> messages.CsContactorStatusResponse:
        faults = self.fsm.faults & _CONTACTOR_FAULTS
        if faults:
            return {
                "evse_id": self.evse_id,
                "status": "error",
                "info": ",".join(sorted(f.value for f in faults)),
            }
        closed = self.hw.contactor.feedback_closed()
        if closed is None:
            closed = self.fsm.outputs.contactor_closed
        return {"evse_id": self.evse_id, "status": "closed" if closed else "opened"}

    def publish_cp_status(self) -> None:
        """The current control-pilot state again, for a service that started after it
        was published (Josev's boot-time queries, `CsController._parameters`)."""
        if self._cp_status is not None:
            self._bus.publish(messages.CP_STATUS_UPDATE.make(self._cp_status))

    def _publish_contactor(self, info: str | None = None) -> None:
        data = self.contactor_status()
        if info and "info" not in data:
            data["info"] = info
        self._bus.publish(messages.CS_CONTACTOR_STATUS_UPDATE.make(data))

    def status_and_limits(self) -> messages.EvseStatusAndLimits:
        faults = self.fsm.faults
        if faults & _MALFUNCTIONS:
            status = "evse_malfunction"
        elif faults & _EMERGENCIES:
            status = "evse_emergency_shutdown"
        elif faults & _SHUTDOWNS:
            status = "evse_shutdown"
        elif not self.fsm.available:
            status = "evse_not_ready"
        elif self.dc is not None and self.dc.checking:
            status = "evse_isolation_monitoring_active"
        else:
            status = "evse_ready"
        if self.dc is not None:
            return {"evse_id": self.evse_id, "status_code": status, "dc": self._dc_limits()}
        phases = self.config.phases
        limit = self.fsm.max_offer_a  # a socket outlet's cable may allow less
        return {
            "evse_id": self.evse_id,
            "status_code": status,
            "ac": {
                "max_current": {
                    "l1": limit,
                    "l2": limit if phases > 1 else 0.0,
                    "l3": limit if phases > 2 else 0.0,
                },
                "nominal_voltage": self.config.nominal_voltage_v,
                "rcd_error": Fault.RCD in faults,
            },
        }

    def _dc_limits(self) -> messages.EvseStatusAndLimitsDc:
        cfg, dc = self.config, self.dc
        assert dc is not None
        voltage_v, current_a = dc.present
        limits: messages.EvseStatusAndLimitsDc = {
            "present_voltage": round(voltage_v, 1),
            "present_current": round(current_a, 1),
            "max_current": cfg.dc_max_current_a,
            "min_current": cfg.dc_min_current_a,
            "max_voltage": cfg.dc_max_voltage_v,
            "min_voltage": cfg.dc_min_voltage_v,
            "max_power": cfg.dc_max_power_w,
            "peak_current_ripple": cfg.dc_peak_current_ripple_a,
            "current_reg_tolerance": cfg.dc_current_regulation_tolerance_a,
            "isolation_status": dc.isolation.value,
        }
        if cfg.dc_energy_to_be_delivered_wh > 0:
            limits["energy_to_be_delivered"] = cfg.dc_energy_to_be_delivered_wh
        return limits

    def _publish_limits_if_changed(self) -> None:
        limits: dict[str, Any] = dict(self.status_and_limits())
        if not _limits_differ(limits, self._last_limits):
            return
        self._last_limits = limits
        data: messages.CsStatusAndLimitsUpdate = {"evses": [self.status_and_limits()]}
        self._bus.publish(messages.CS_STATUS_AND_LIMITS_UPDATE.make(data))

    def meter_data(self, reading: MeterReading) -> messages.MeterValuesUpdate:
        v, i = reading.voltage_v, reading.current_a
        data: messages.MeterValuesUpdate = {
            "evse_id": self.evse_id,
            "timestamp": api.timestamp(),
            "voltage": {"l1": v[0], "l2": v[1], "l3": v[2]},
            "current": {"l1": i[0], "l2": i[1], "l3": i[2]},
            "power_factor": reading.power_factor,
            "frequency": reading.frequency_hz,
            "total_active_energy_imported": reading.energy_import_wh,
            "total_active_energy_exported": reading.energy_export_wh,
            "total_reactive_energy_imported": reading.reactive_import_varh,
            "total_reactive_energy_exported": reading.reactive_export_varh,
        }
        if self.dc is not None:
            present_v, present_a = self.dc.present
            dc_v, dc_a = reading.dc_voltage_v, reading.dc_current_a
            data["dc_voltage"] = round(present_v if dc_v is None else dc_v, 1)
            data["dc_current"] = round(present_a if dc_a is None else dc_a, 1)
        return data

    # ------------------------------------------------------------------ authorization

    def _on_plug_in(self) -> None:
        if self._settings.free_charging and not self.fsm.authorized:
            self._tasks.spawn(self._authorize(None, "no_authorization"), "authorization request")

    def _on_token(self, token: str, token_type: str) -> None:
        event(log, logging.INFO, "token_presented", evse=self.evse_id, token_type=token_type)
        self._tasks.spawn(self._authorize(token, token_type), "authorization request")

    async def _authorize(self, token: str | None, token_type: str) -> None:
        # Decided before awaiting: the stop_charging this may trigger clears the session.
        same_session = token is not None and token == self._session_token
        data: messages.AuthorizationRequest = {"evse_id": self.evse_id, "token_type": token_type}
        if token is not None:
            data["id_token"] = token
        try:
            reply = await self._bus.request(messages.AUTHORIZATION_REQUEST.make(data))
        except RequestTimeout:
            return
        status = reply.data["status"]
        event(
            log,
            logging.INFO,
            "authorization_result",
            evse=self.evse_id,
            status=status,
            token_type=token_type,
        )
        if status == "accepted" and not same_session:
            # The same token again means "stop": Josev answers it with stop_charging.
            self.authorize(token)

    def authorize(self, token: str | None) -> None:
        self._session_token = token
        self._authorized_at = self._clock()
        self.step(lambda now: self.fsm.authorize(now, True))

    def deauthorize(self, reason: str) -> None:
        self._session_token = None
        self._authorized_at = None
        if self.fsm.authorized:
            self.step(lambda now: self.fsm.stop(now, reason))

    def _expire_authorization(self) -> None:
        # An authorization given before plug-in lapses after the connection timeout.
        since = self._authorized_at
        if since is None or self.fsm.ev_connected:
            return
        if self._clock() - since >= self._settings.connection_timeout_s:
            event(log, logging.INFO, "authorization_expired", evse=self.evse_id)
            self._authorized_at = None
            self.step(lambda now: self.fsm.authorize(now, False))

    # ------------------------------------------------------------------ requests

    def cp_pwm(self, req: messages.CpPwmRequest) -> messages.CpPwmResponse:
        current = req.get("current")
        if self.dc is not None and not req["hlc"] and current:
            return {
                "evse_id": self.evse_id,
                "status": "invalid",
                "info": "a DC EVSE offers no basic (AC) charging: hlc or current 0 only",
            }
        if not req["hlc"] and current:
            try:  # validated here: inside `step` an exception counts as a controller crash
                duty_for_current(current)
            except DutyError as exc:
                return {"evse_id": self.evse_id, "status": "invalid", "info": str(exc)}
        self.step(
            lambda now: self.fsm.set_pwm_request(
                now,
                hlc=req["hlc"],
                current_a=current,
                error=req["error_state"],
                fault=req["fault_state"],
            )
        )
        return {"evse_id": self.evse_id, "status": "valid"}

    def connector(self, action: str) -> messages.CsConnectorResponse:
        response: messages.CsConnectorResponse = {
            "evse_id": self.evse_id,
            "connector_id": self.config.connector_id,
            "status": "unknown",
        }
        lock = self.hw.lock
        if lock is None:
            response["status"], response["info"] = "error", "this connector has no lock"
            return response
        if action in ("lock", "unlock"):
            refused: list[str] = []
            self.step(
                lambda now: refused.extend(
                    filter(None, [self.fsm.request_lock(now, action == "lock")])
                )
            )
            if refused:
                response["status"], response["info"] = "error", refused[0]
                return response
        locked = lock.feedback_locked()
        if locked is None:
            return response
        wanted = {"lock": True, "unlock": False}.get(action, locked)
        response["status"] = ("locked" if locked else "unlocked") if locked == wanted else "error"
        if locked != wanted:
            response["info"] = "the lock did not move (feedback disagrees)"
        return response

    def cable_check(self, req: messages.CableCheckRequest) -> messages.CableCheckResponse:
        dc = self.dc
        if dc is None:
            event(log, logging.WARNING, "cable_check_refused", evse=self.evse_id, reason="AC EVSE")
            return {
                "evse_id": self.evse_id,
                "cable_check_status": "finished",
                "isolation_level": "invalid",
            }
        if req["cable_check_action"] == "start":

            def start(now: float) -> None:
                self.fsm.allow_closing(now)  # IEC 61851-23: closed for the insulation test
                dc.start_cable_check(now)

            self.step(start)
        status, level = dc.cable_check_state()
        response: messages.CableCheckResponse = {
            "evse_id": self.evse_id,
            "cable_check_status": status,
        }
        if level is not None:
            response["isolation_level"] = level.value
        return response

    def power_electronics_setpoint(
        self, req: messages.PowerElectronicsSetpointRequest
    ) -> messages.PowerElectronicsSetpointResponse:
        reason = self._setpoint(req)
        if reason is None:
            return {"evse_id": self.evse_id, "status": "accepted"}
        event(log, logging.WARNING, "dc_setpoint_refused", evse=self.evse_id, reason=reason)
        return {"evse_id": self.evse_id, "status": "rejected"}

    def _setpoint(self, req: messages.PowerElectronicsSetpointRequest) -> str | None:
        dc = self.dc
        if dc is None:
            return "an AC EVSE has no power electronics to set"
        if "ac" in req:
            return "AC setpoints on a DC EVSE"
        limits, target = req["ev_limits"], req.get("dc")
        ev_max, ev_min = limits["maximum_voltage"], limits.get("minimum_voltage")
        voltage = current = power = None
        if target is not None:
            voltage, current = target["voltage"], target.get("charge_current")
            power = target.get("charge_power")
            if target.get("discharge_current") or target.get("discharge_power"):
                return "discharging (bidirectional power transfer) is not supported"
        numbers = (ev_max, ev_min, voltage, current, power)
        if not finite(*numbers) or any(n is not None and n < 0 for n in numbers):
            return f"values must be finite and not negative: {numbers}"
        reasons: list[str | None] = []

        def apply(now: float) -> None:
            dc.ev_limits(now, ev_max, ev_min)
            reasons.append(
                dc.setpoint(
                    now,
                    precharge=req.get("is_precharge", False),
                    voltage_v=voltage,
                    current_a=current,
                    power_w=power,
                )
            )

        self.step(apply)
        return reasons[0] if reasons else "the EVSE controller is halted"

    def stop(self, reason: str) -> None:
        self._session_token = None
        self.step(lambda now: self.fsm.stop(now, reason))

    def set_available(self, available: bool) -> None:
        self.step(lambda now: self.fsm.set_available(now, available))
        self._publish_limits_if_changed()  # may change no CP state, but the status code


def _limits_differ(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Whether an update is due: any status or limit changed, or the DC output moved by a
    reporting step (the SECC may ask at any time for the exact values)."""
    if old is None:
        return True
    new_dc, old_dc = new.get("dc"), old.get("dc")
    if new_dc is None or old_dc is None:
        return new != old
    present = ("present_voltage", "present_current")
    if {**new, "dc": None} != {**old, "dc": None} or {
        k: v for k, v in new_dc.items() if k not in present
    } != {k: v for k, v in old_dc.items() if k not in present}:
        return True
    return bool(
        abs(new_dc["present_voltage"] - old_dc["present_voltage"]) >= REPORT_STEP_V
        or abs(new_dc["present_current"] - old_dc["present_current"]) >= REPORT_STEP_A
    )
