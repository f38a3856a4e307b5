"""DC charging as DIN SPEC 70121 and ISO 15118-2 share it, in neutral values: the
EVSE's limits, the cable check, pre-charge, the current demand and what goes to the CS
on the bus (cable_check, power_electronics_setpoint, display_params). Each protocol core
writes the results in its own message types; `DcRequests` answers the DC requests whose
messages both protocols name and fill alike (CableCheck, PreCharge, WeldingDetection, the
common part of CurrentDemandRes, DC_EVSEStatus) in the core's own message module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

from charger.bus import messages
from charger.bus.api import Message
from charger.protocols.iso15118.core import Context, Fail, Timers, to_physical, value_of
from charger.protocols.iso15118.evse import EvseView

PRECHARGE_CURRENT_MAX_A = 2.0  # ISO 15118-2 / DIN: the EV asks for at most 2 A in PreCharge

# cs_status_and_limits status_code -> DC_EVSEStatusCode (same literals in DIN and -2)
STATUS_CODES = {
    "evse_not_ready": "EVSE_NotReady",
    "evse_ready": "EVSE_Ready",
    "evse_shutdown": "EVSE_Shutdown",
    "evse_utility_interrupt_event": "EVSE_UtilityInterruptEvent",
    "evse_isolation_monitoring_active": "EVSE_IsolationMonitoringActive",
    "evse_emergency_shutdown": "EVSE_EmergencyShutdown",
    "evse_malfunction": "EVSE_Malfunction",
}
# cable_check / cs_status_and_limits isolation -> isolationLevelType (-2 literals)
ISOLATION = {
    "valid": "Valid",
    "invalid": "Invalid",
    "warning": "Warning",
    "fault": "Fault",
    "no_imd": "No_IMD",
}
ISOLATION_OK = frozenset({"valid", "warning", "no_imd"})


@dataclass(frozen=True, slots=True)
class DcLimits:
    max_voltage_v: float
    max_current_a: float
    max_power_w: float
    min_voltage_v: float
    min_current_a: float
    peak_ripple_a: float
    regulation_tolerance_a: float | None
    energy_to_deliver_wh: float | None


def limits(view: EvseView) -> DcLimits | None:
    dc = view.dc
    if dc is None:
        return None
    return DcLimits(
        max_voltage_v=dc["max_voltage"],
        max_current_a=dc["max_current"],
        max_power_w=dc["max_power"],
        min_voltage_v=dc["min_voltage"],
        min_current_a=dc["min_current"],
        peak_ripple_a=dc["peak_current_ripple"],
        regulation_tolerance_a=dc.get("current_reg_tolerance"),
        energy_to_deliver_wh=dc.get("energy_to_be_delivered"),
    )


@dataclass(frozen=True, slots=True)
class Demand:
    voltage_v: float
    current_a: float  # what the EVSE delivers: the EV's target within the EVSE's limits
    current_limit_achieved: bool
    voltage_limit_achieved: bool
    power_limit_achieved: bool


def demand(lim: DcLimits, target_v: float, target_a: float) -> Demand:
    voltage = min(max(target_v, 0.0), lim.max_voltage_v)
    current = min(max(target_a, 0.0), lim.max_current_a)
    power_cap_a = lim.max_power_w / voltage if voltage > 0 else current
    power_limited = current > power_cap_a
    if power_limited:
        current = power_cap_a
    return Demand(
        voltage_v=voltage,
        current_a=current,
        current_limit_achieved=target_a >= lim.max_current_a,
        voltage_limit_achieved=target_v >= lim.max_voltage_v,
        power_limit_achieved=power_limited,
    )


def status_code(view: EvseView) -> str:
    return STATUS_CODES.get(view.status_code, "EVSE_NotReady")


def isolation(view: EvseView) -> str | None:
    """The isolation level to report: the latest cable check's, else the CS's."""
    dc = view.dc
    level = dc.get("isolation_status") if dc is not None else None
    if level is None and view.cable_check is not None:
        level = view.cable_check.isolation
    return level


class Setpoints:
    """power_electronics_setpoint requests, sent only when the setpoint changes."""

    def __init__(self, evse_id: str) -> None:
        self._evse_id = evse_id
        self._last: tuple[float, float, bool] | None = None
        self.ev_max_voltage_v = 0.0

    def make(self, voltage_v: float, current_a: float, *, precharge: bool) -> Message[Any] | None:
        key = (round(voltage_v, 1), round(current_a, 1), precharge)
        if key == self._last:
            return None
        self._last = key
        data: messages.PowerElectronicsSetpointRequest = {
            "evse_id": self._evse_id,
            "ev_limits": {"maximum_voltage": self.ev_max_voltage_v or voltage_v},
            "is_precharge": precharge,
            "dc": {"voltage": key[0], "charge_current": key[1]},
        }
        return messages.POWER_ELECTRONICS_SETPOINT_REQUEST.make(data)

    def off(self) -> Message[Any] | None:
        """No output: current 0 at 0 V (PowerDelivery stop, the end of a session)."""
        return self.make(0.0, 0.0, precharge=False)


class DisplayParams:
    """display_params updates from the EV's DC messages, only when something changed."""

    def __init__(self, evse_id: str) -> None:
        self._data: messages.DisplayParamsUpdate = {"evse_id": evse_id}
        self._sent: dict[str, Any] | None = None

    def set(self, key: str, value: float | bool | None) -> None:
        if value is not None:
            self._data[key] = value  # type: ignore[literal-required]

    def message(self) -> Message[Any] | None:
        current = dict(self._data)
        if current == self._sent or len(current) == 1:
            return None
        self._sent = current
        return messages.DISPLAY_PARAMS_UPDATE.make(self._data.copy())


def cable_check_request(evse_id: str, action: str) -> Message[Any]:
    data: messages.CableCheckRequest = {"evse_id": evse_id, "cable_check_action": action}
    return messages.CABLE_CHECK_REQUEST.make(data)


NO_LIMITS = DcLimits(0, 0, 0, 0, 0, 0, None, None)


class DcSession:
    """The DC part of one session, the same in DIN SPEC 70121 and ISO 15118-2: the cable
    check and pre-charge with their time limits, the setpoints and display values. Its
    bus messages go to `request` / `publish` (the core's, after its response)."""

    def __init__(
        self,
        evse_id: str,
        view: EvseView,
        timers: Timers,
        request: Callable[[Message[Any]], None],
        publish: Callable[[Message[Any]], None],
    ) -> None:
        self._evse_id = evse_id
        self._view = view
        self._timers = timers
        self._request = request
        self._publish = publish
        self.setpoints = Setpoints(evse_id)
        self.display = DisplayParams(evse_id)
        self._cable_check_started: float | None = None
        self._precharge_started: float | None = None

    def limits(self) -> DcLimits:
        return limits(self._view) or NO_LIMITS

    def parameters(
        self,
        *,
        soc: int,
        ev_max_voltage_v: float | None,
        full_soc: int | None,
        bulk_soc: int | None,
        capacity_wh: float | None,
    ) -> None:
        """ChargeParameterDiscovery: what the EV said of itself."""
        self.setpoints.ev_max_voltage_v = ev_max_voltage_v or 0.0
        self.display.set("present_soc", soc)
        self.display.set("max_soc", full_soc)
        self.display.set("target_soc", bulk_soc)
        self.display.set("battery_energy_capacity", capacity_wh)

    def cable_check(self, now: float, soc: int) -> bool:
        """True once the CS reports the cable check finished with a usable isolation;
        the first request starts it (and asks for the contactors), later ones poll."""
        self.display.set("present_soc", soc)
        if self._cable_check_started is None:
            self._cable_check_started = now
            self._request(cable_check_request(self._evse_id, "start"))
            self._request(messages.CS_CONTACTOR_STATUS_REQUEST.make({"evse_id": self._evse_id}))
        result = self._view.cable_check
        fresh = result is not None and result.at >= self._cable_check_started
        if fresh and result is not None and result.status == "finished":
            if result.isolation not in ISOLATION_OK:
                raise Fail("FAILED", f"cable check: isolation {result.isolation}")
            return True
        if now - self._cable_check_started >= self._timers.cable_check_s:
            raise Fail(
                "FAILED",
                f"cable check not finished within {self._timers.cable_check_s:g} s "
                "(V2G_SECC_CableCheck_Performance_Time)",
            )
        if fresh:
            self._request(cable_check_request(self._evse_id, "status"))
        return False

    def pre_charge(self, now: float, target_v: float, target_a: float, soc: int) -> None:
        """The output towards the EV's voltage at <= 2 A, within the pre-charge limit."""
        if self._precharge_started is None:
            self._precharge_started = now
        elif now - self._precharge_started >= self._timers.precharge_s:
            raise Fail(
                "FAILED",
                f"pre-charge took longer than {self._timers.precharge_s:g} s "
                "(V2G_EVCC_PreCharge_Timeout)",
            )
        lim = limits(self._view)
        voltage = target_v if lim is None else min(target_v, lim.max_voltage_v)
        current = min(target_a, PRECHARGE_CURRENT_MAX_A)
        self._setpoint(self.setpoints.make(voltage, current, precharge=True))
        self.display.set("present_soc", soc)

    def current_demand(
        self,
        *,
        target_v: float,
        target_a: float,
        ev_max_voltage_v: float | None,
        soc: int,
        complete: bool,
        to_full_s: float | None,
        to_bulk_s: float | None,
    ) -> tuple[DcLimits, Demand]:
        lim = self.limits()
        wanted = demand(lim, target_v, target_a)
        if ev_max_voltage_v is not None:
            self.setpoints.ev_max_voltage_v = ev_max_voltage_v
        self._setpoint(self.setpoints.make(wanted.voltage_v, wanted.current_a, precharge=False))
        self.display.set("present_soc", soc)
        self.display.set("charging_complete", complete)
        self.display.set("remaining_time_to_max_soc", to_full_s)
        self.display.set("remaining_time_to_target_soc", to_bulk_s)
        self.publish_display()
        return lim, wanted

    def power_off(self) -> None:
        self._setpoint(self.setpoints.off())

    def publish_display(self) -> None:
        message = self.display.message()
        if message is not None:
            self._publish(message)

    def _setpoint(self, message: Message[Any] | None) -> None:
        if message is not None:
            self._request(message)


# ------------------------------------------------------------------ the requests


class DcStates(NamedTuple):
    """A core's states for the DC requests `DcRequests` answers."""

    cable_check: Any  # CableCheckReq answered Ongoing
    cable_checked: Any  # the cable check finished: PreChargeReq next
    precharge: Any


class _DcCore(Protocol):
    """What `DcRequests` needs of the protocol core it is mixed into."""

    MESSAGES: ClassVar[Any]
    ISOLATION_LEVELS: ClassVar[Mapping[str, str]]
    DC_STATES: ClassVar[DcStates]
    ctx: Context
    state: Any
    _dc: DcSession

    def must_stop(self, now: float) -> bool: ...


def _physical(messages: Any, value: float, unit: str) -> Any:
    number, multiplier = to_physical(value)
    return messages.PhysicalValue(
        value=number, multiplier=multiplier, unit=getattr(messages.UnitSymbol, unit)
    )


def dc_evse_status(
    core: _DcCore, now: float, *, charging: bool = False, code: str | None = None
) -> Any:
    """The core's DC_EVSEStatus: StopCharging while charging when the EV must stop."""
    m, view = core.MESSAGES, core.ctx.view
    notification = m.EVSENotification.None_
    if charging and core.must_stop(now):
        notification = m.EVSENotification.StopCharging
    level = isolation(view)
    return m.DC_EVSEStatus(
        evse_status_code=m.DC_EVSEStatusCode(code or status_code(view)),
        notification_max_delay=core.ctx.settings.notification_max_delay_s,
        evse_notification=notification,
        evse_isolation_status=None
        if level is None
        else m.IsolationLevel(core.ISOLATION_LEVELS[level]),
    )


class DcRequests:
    """The DC request handlers DIN SPEC 70121 and ISO 15118-2 share, mixed into their
    cores (before `Core`). The core sets `MESSAGES` (its EXI message module),
    `ISOLATION_LEVELS` (isolation -> its isolationLevelType literal) and `DC_STATES`, and
    keeps a `DcSession` as `_dc`. The message shapes stay the protocol's: each field is
    built in its module's types, and a core adds its own fields to CurrentDemandRes."""

    def _dc_status(
        self: _DcCore, now: float, *, charging: bool = False, code: str | None = None
    ) -> Any:
        return dc_evse_status(self, now, charging=charging, code=code)

    def _cable_check(self: _DcCore, req: Any, now: float) -> Any:
        m, states = self.MESSAGES, self.DC_STATES
        self.state = states.cable_check
        if self._dc.cable_check(now, req.dc_ev_status.evresssoc):
            self.state = states.cable_checked
            return m.CableCheckRes(
                response_code=m.ResponseCode.OK,
                dc_evse_status=dc_evse_status(self, now),
                evse_processing=m.EVSEProcessing.Finished,
            )
        return m.CableCheckRes(
            response_code=m.ResponseCode.OK,
            dc_evse_status=dc_evse_status(self, now, code="EVSE_IsolationMonitoringActive"),
            evse_processing=m.EVSEProcessing.Ongoing,
        )

    def _pre_charge(self: _DcCore, req: Any, now: float) -> Any:
        m = self.MESSAGES
        self.state = self.DC_STATES.precharge
        self._dc.pre_charge(
            now,
            value_of(req.ev_target_voltage) or 0.0,
            value_of(req.ev_target_current) or 0.0,
            req.dc_ev_status.evresssoc,
        )
        return m.PreChargeRes(
            response_code=m.ResponseCode.OK,
            dc_evse_status=dc_evse_status(self, now),
            evse_present_voltage=_physical(m, self.ctx.view.present_voltage_v(), "V"),
        )

    def _current_demand_fields(self: _DcCore, req: Any, now: float) -> dict[str, Any]:
        """The CurrentDemandRes fields both protocols have; the setpoint goes to the CS."""
        m, view = self.MESSAGES, self.ctx.view
        lim, wanted = self._dc.current_demand(
            target_v=value_of(req.ev_target_voltage) or 0.0,
            target_a=value_of(req.ev_target_current) or 0.0,
            ev_max_voltage_v=value_of(req.ev_maximum_voltage_limit),
            soc=req.dc_ev_status.evresssoc,
            complete=req.charging_complete,
            to_full_s=value_of(req.remaining_time_to_full_soc),
            to_bulk_s=value_of(req.remaining_time_to_bulk_soc),
        )
        return {
            "response_code": m.ResponseCode.OK,
            "dc_evse_status": dc_evse_status(self, now, charging=True),
            "evse_present_voltage": _physical(m, view.present_voltage_v(), "V"),
            "evse_present_current": _physical(m, view.present_current_a(), "A"),
            "evse_current_limit_achieved": wanted.current_limit_achieved,
            "evse_voltage_limit_achieved": wanted.voltage_limit_achieved,
            "evse_power_limit_achieved": wanted.power_limit_achieved,
            "evse_maximum_voltage_limit": _physical(m, lim.max_voltage_v, "V"),
            "evse_maximum_current_limit": _physical(m, lim.max_current_a, "A"),
            "evse_maximum_power_limit": _physical(m, lim.max_power_w, "W"),
        }

    def _dc_failed(
        self: _DcCore, rc: Any, current_demand_extra: Mapping[str, Any]
    ) -> dict[type, Callable[[], Any]]:
        """The FAILED answers to the DC requests (EVSE_NotReady, nothing present), with
        the core's own CurrentDemandRes fields."""
        m = self.MESSAGES
        status = m.DC_EVSEStatus(
            evse_status_code=m.DC_EVSEStatusCode.EVSE_NotReady,
            notification_max_delay=0,
            evse_notification=m.EVSENotification.None_,
        )
        zero_v, zero_a = _physical(m, 0, "V"), _physical(m, 0, "A")
        return {
            m.CableCheckReq: lambda: m.CableCheckRes(
                response_code=rc, dc_evse_status=status, evse_processing=m.EVSEProcessing.Finished
            ),
            m.PreChargeReq: lambda: m.PreChargeRes(
                response_code=rc, dc_evse_status=status, evse_present_voltage=zero_v
            ),
            m.CurrentDemandReq: lambda: m.CurrentDemandRes(
                response_code=rc,
                dc_evse_status=status,
                evse_present_voltage=zero_v,
                evse_present_current=zero_a,
                evse_current_limit_achieved=False,
                evse_voltage_limit_achieved=False,
                evse_power_limit_achieved=False,
                **current_demand_extra,
            ),
            m.WeldingDetectionReq: lambda: m.WeldingDetectionRes(
                response_code=rc, dc_evse_status=status, evse_present_voltage=zero_v
            ),
        }

    def _welding_detection(self: _DcCore, req: Any, now: float) -> Any:
        m = self.MESSAGES
        self._dc.display.set("present_soc", req.dc_ev_status.evresssoc)
        return m.WeldingDetectionRes(
            response_code=m.ResponseCode.OK,
            dc_evse_status=dc_evse_status(self, now),
            evse_present_voltage=_physical(m, self.ctx.view.present_voltage_v(), "V"),
        )
