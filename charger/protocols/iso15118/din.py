"""DIN SPEC 70121:2014 session core: DC charging with external identification means.

The message sequence of DIN SPEC 70121 as the table `ALLOWED`:

    SessionSetup -> ServiceDiscovery -> ServicePaymentSelection
    -> ContractAuthentication (Ongoing while the driver authorizes)
    -> ChargeParameterDiscovery -> CableCheck* -> PreCharge* -> PowerDelivery(ready)
    -> CurrentDemand* -> PowerDelivery(not ready) -> WeldingDetection* -> SessionStop

DIN has no pause, no AC, no TLS and no Plug & Charge in practice; the EVSE side of DC
(limits, cable check, setpoints, display values) is shared with ISO 15118-2 in `dc`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

from charger.bus import messages
from charger.protocols.exi import din as m
from charger.protocols.iso15118 import dc
from charger.protocols.iso15118.core import Context, Core, Fail, Outcome, to_physical, value_of
from charger.protocols.iso15118.evse import Authorization
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.schedules import Schedule, ScheduleRequest

CHARGE_SERVICE_ID = 1
RC = m.ResponseCode
PMAX_LIMIT = 32767  # PMaxType is a short


class S(enum.Enum):
    SETUP = "SessionSetupReq"
    DISCOVERY = "ServiceDiscoveryReq"
    PAYMENT = "ServicePaymentSelectionReq"
    AUTHORIZATION = "ContractAuthenticationReq"
    AUTHORIZING = "ContractAuthenticationReq (Ongoing)"
    PARAMETERS = "ChargeParameterDiscoveryReq"
    PARAMETERS_ONGOING = "ChargeParameterDiscoveryReq (Ongoing)"
    DC_READY = "CableCheckReq"
    CABLE_CHECK = "CableCheckReq (Ongoing)"
    CABLE_CHECKED = "PreChargeReq"
    PRECHARGE = "PreChargeReq or PowerDeliveryReq"
    CHARGING = "CurrentDemandReq"
    STOPPED = "WeldingDetectionReq or SessionStopReq"
    FINISHED = "nothing (SessionStopRes sent)"


_STOP: type = m.SessionStop
ALLOWED: dict[S, frozenset[type]] = {
    S.SETUP: frozenset[type]({m.SessionSetupReq}),
    S.DISCOVERY: frozenset[type]({m.ServiceDiscoveryReq, _STOP}),
    S.PAYMENT: frozenset[type]({m.ServicePaymentSelectionReq, _STOP}),
    S.AUTHORIZATION: frozenset[type]({m.ContractAuthenticationReq, _STOP}),
    S.AUTHORIZING: frozenset[type]({m.ContractAuthenticationReq, _STOP}),
    S.PARAMETERS: frozenset[type]({m.ChargeParameterDiscoveryReq, _STOP}),
    S.PARAMETERS_ONGOING: frozenset[type]({m.ChargeParameterDiscoveryReq, _STOP}),
    S.DC_READY: frozenset[type]({m.CableCheckReq, _STOP}),
    S.CABLE_CHECK: frozenset[type]({m.CableCheckReq}),
    S.CABLE_CHECKED: frozenset[type]({m.PreChargeReq}),
    S.PRECHARGE: frozenset[type]({m.PreChargeReq, m.PowerDeliveryReq}),
    S.CHARGING: frozenset[type]({m.CurrentDemandReq, m.PowerDeliveryReq}),
    S.STOPPED: frozenset[type]({m.WeldingDetectionReq, _STOP}),
    S.FINISHED: frozenset[type](),
}

# V2G_SECC_Msg_Performance_Time (DIN SPEC 70121 Table 75), by response.
PERFORMANCE_S = {
    "SupportedAppProtocolRes": 1.5,
    "SessionSetupRes": 1.5,
    "ServiceDiscoveryRes": 1.5,
    "ServicePaymentSelectionRes": 1.5,
    "ContractAuthenticationRes": 1.5,
    "ChargeParameterDiscoveryRes": 1.5,
    "CableCheckRes": 1.5,
    "PreChargeRes": 1.5,
    "PowerDeliveryRes": 1.5,
    "CurrentDemandRes": 0.025,
    "WeldingDetectionRes": 1.5,
    "SessionStopRes": 1.5,
}
# DIN's isolationLevelType has no No_IMD: a station without an IMD reports Valid.
_ISOLATION = {**dc.ISOLATION, "no_imd": "Valid"}


def din_evse_id(evse_id: str) -> bytes:
    """DIN SPEC 70121's EVSEID: a DIN SPEC 91286 ID (digits and "*") packed in nibbles,
    "*" as 0xA ("49*89*6360" is 49 A8 9A 63 60); an ID that is no such ID (an eMI3 one
    with letters) is sent as 00, as DIN SPEC 70121 says for an SECC without one."""
    if not evse_id or any(c not in "0123456789*" for c in evse_id) or len(evse_id) > 64:
        return b"\x00"
    digits = evse_id.replace("*", "A")
    return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)


def physical(value: float, unit: m.UnitSymbol) -> m.PhysicalValue:
    number, multiplier = to_physical(value)
    return m.PhysicalValue(value=number, multiplier=multiplier, unit=unit)


_V, _A, _W, _WH = m.UnitSymbol.V, m.UnitSymbol.A, m.UnitSymbol.W, m.UnitSymbol.Wh


class DinCore(dc.DcRequests, Core):
    protocol: ClassVar[V2gProtocol] = V2gProtocol.DIN_SPEC_70121
    MESSAGES: ClassVar[Any] = m
    STOP_REQUEST: ClassVar[type] = m.SessionStop
    ISOLATION_LEVELS: ClassVar[Mapping[str, str]] = _ISOLATION
    DC_STATES: ClassVar[dc.DcStates] = dc.DcStates(S.CABLE_CHECK, S.CABLE_CHECKED, S.PRECHARGE)
    ALLOWED = ALLOWED
    PERFORMANCE_S = PERFORMANCE_S
    HANDLERS: ClassVar[dict[type, str]] = {
        m.SessionSetupReq: "_session_setup",
        m.ServiceDiscoveryReq: "_service_discovery",
        m.ServicePaymentSelectionReq: "_service_payment_selection",
        m.ContractAuthenticationReq: "_contract_authentication",
        m.ChargeParameterDiscoveryReq: "_charge_parameter_discovery",
        m.CableCheckReq: "_cable_check",
        m.PreChargeReq: "_pre_charge",
        m.PowerDeliveryReq: "_power_delivery",
        m.CurrentDemandReq: "_current_demand",
        m.WeldingDetectionReq: "_welding_detection",
        m.SessionStop: "_session_stop",
    }

    def __init__(self, ctx: Context, setup_deadline: float | None) -> None:
        super().__init__(ctx, S.SETUP, setup_deadline)
        self.state: S = S.SETUP
        self._dc = dc.DcSession(
            ctx.setup.evse_id, ctx.view, ctx.settings.timers, self.request_bus, self.publish_bus
        )
        self._evse_id_bytes = din_evse_id(ctx.setup.evse_id)

    # ------------------------------------------------------------------ Core hooks

    def failed_response(self, kind: type, code: str) -> object:
        rc = RC(code)
        status = m.DC_EVSEStatus(
            evse_status_code=m.DC_EVSEStatusCode.EVSE_NotReady,
            notification_max_delay=0,
            evse_notification=m.EVSENotification.None_,
        )
        builders: dict[type, Any] = {
            m.SessionSetupReq: lambda: m.SessionSetupRes(
                response_code=rc, evseid=self._evse_id_bytes
            ),
            m.ServiceDiscoveryReq: lambda: m.ServiceDiscoveryRes(
                response_code=rc,
                payment_options=m.PaymentOptions(payment_option=[m.PaymentOption.ExternalPayment]),
                charge_service=self._charge_service(),
            ),
            m.ServicePaymentSelectionReq: lambda: m.ServicePaymentSelectionRes(response_code=rc),
            m.ContractAuthenticationReq: lambda: m.ContractAuthenticationRes(
                response_code=rc, evse_processing=m.EVSEProcessing.Finished
            ),
            m.ChargeParameterDiscoveryReq: lambda: m.ChargeParameterDiscoveryRes(
                response_code=rc,
                evse_processing=m.EVSEProcessing.Finished,
                sa_schedules=self._schedule_list([]),
                evse_charge_parameter=self._evse_charge_parameter(status),
            ),
            m.PowerDeliveryReq: lambda: m.PowerDeliveryRes(response_code=rc, evse_status=status),
            m.SessionStop: lambda: m.SessionStopRes(response_code=rc),
            **self._dc_failed(rc, {}),
        }
        return builders[kind]()

    # ------------------------------------------------------------------ status

    def _charge_service(self) -> m.ServiceCharge:
        return m.ServiceCharge(
            service_tag=m.ServiceTag(
                service_id=CHARGE_SERVICE_ID, service_category=m.ServiceCategory.EVCharging
            ),
            free_service=self.ctx.settings.free_service,
            energy_transfer_type=m.EVSESupportedEnergyTransfer.DC_extended,
        )

    def _schedule_list(self, schedules: list[Schedule]) -> m.SAScheduleList:
        tuples = []
        for schedule in schedules or [Schedule(1, ())]:
            entries = []
            for i, period in enumerate(schedule.periods):
                last = i == len(schedule.periods) - 1
                entries.append(
                    m.PMaxScheduleEntry(
                        time_interval=m.RelativeTimeInterval(
                            start=period.start_s,
                            duration=schedule.duration_s - period.start_s if last else None,
                        ),
                        p_max=min(PMAX_LIMIT, max(0, round(period.max_power_w))),
                    )
                )
            if not entries:
                entries.append(
                    m.PMaxScheduleEntry(
                        time_interval=m.RelativeTimeInterval(start=0, duration=schedule.duration_s),
                        p_max=0,
                    )
                )
            tuples.append(
                m.SAScheduleTuple(
                    sa_schedule_tuple_id=schedule.tuple_id,
                    p_max_schedule=m.PMaxSchedule(
                        p_max_schedule_id=schedule.tuple_id, p_max_schedule_entry=entries
                    ),
                )
            )
        return m.SAScheduleList(sa_schedule_tuple=tuples)

    def _evse_charge_parameter(self, status: m.DC_EVSEStatus) -> m.DC_EVSEChargeParameter:
        lim = self._dc.limits()
        return m.DC_EVSEChargeParameter(
            dc_evse_status=status,
            evse_maximum_current_limit=physical(lim.max_current_a, _A),
            evse_maximum_voltage_limit=physical(lim.max_voltage_v, _V),
            evse_minimum_current_limit=physical(lim.min_current_a, _A),
            evse_minimum_voltage_limit=physical(lim.min_voltage_v, _V),
            evse_peak_current_ripple=physical(lim.peak_ripple_a, _A),
            evse_maximum_power_limit=physical(lim.max_power_w, _W),
            evse_current_regulation_tolerance=None
            if lim.regulation_tolerance_a is None
            else physical(lim.regulation_tolerance_a, _A),
            evse_energy_to_be_delivered=None
            if lim.energy_to_deliver_wh is None
            else physical(lim.energy_to_deliver_wh, _WH),
        )

    # ------------------------------------------------------------------ handlers

    def _session_setup(self, req: m.SessionSetupReq, now: float) -> m.SessionSetupRes:
        self.ctx.paused = None  # DIN has no pause: nothing to resume
        self.session_id = self.ctx.new_session_id()
        while self.session_id == bytes(8):
            self.session_id = self.ctx.new_session_id()
        self.evcc_id = req.evccid
        self.session_started()
        self.state = S.DISCOVERY
        self.hlc_charging(True)
        return m.SessionSetupRes(
            response_code=RC.OK_NewSessionEstablished,
            evseid=self._evse_id_bytes,
            date_time_now=int(self.ctx.wall_clock()),
        )

    def _service_discovery(self, req: m.ServiceDiscoveryReq, now: float) -> m.ServiceDiscoveryRes:
        if not self.ctx.setup.dc:
            raise Fail("FAILED", "this EVSE has no DC output, DIN SPEC 70121 is DC only")
        self.state = S.PAYMENT
        return m.ServiceDiscoveryRes(
            response_code=RC.OK,
            payment_options=m.PaymentOptions(payment_option=[m.PaymentOption.ExternalPayment]),
            charge_service=self._charge_service(),
        )

    def _service_payment_selection(
        self, req: m.ServicePaymentSelectionReq, now: float
    ) -> m.ServicePaymentSelectionRes:
        if req.selected_payment_option is not m.PaymentOption.ExternalPayment:
            raise Fail(
                "FAILED_PaymentSelectionInvalid",
                f"payment option {req.selected_payment_option} was not offered",
            )
        ids = [s.service_id for s in req.selected_service_list.selected_service]
        if ids != [CHARGE_SERVICE_ID]:
            raise Fail("FAILED_ServiceSelectionInvalid", f"selected services {ids}")
        self.payment_option = "ExternalPayment"
        self.state = S.AUTHORIZATION
        return m.ServicePaymentSelectionRes(response_code=RC.OK)

    def _contract_authentication(
        self, req: m.ContractAuthenticationReq, now: float
    ) -> m.ContractAuthenticationRes:
        status = self.ctx.view.authorization
        if status is Authorization.ACCEPTED:
            self.finished()
            self.state = S.PARAMETERS
            processing = m.EVSEProcessing.Finished
        elif status is Authorization.REJECTED:
            raise Fail("FAILED", "the driver's authorization was rejected")
        else:
            self.ongoing(now, "authorization")
            self.state = S.AUTHORIZING
            processing = m.EVSEProcessing.Ongoing
        return m.ContractAuthenticationRes(response_code=RC.OK, evse_processing=processing)

    def _charge_parameter_discovery(
        self, req: m.ChargeParameterDiscoveryReq, now: float
    ) -> m.ChargeParameterDiscoveryRes:
        mode = str(req.ev_requested_energy_transfer_type)
        if not mode.startswith("DC") or not self.ctx.setup.dc:
            raise Fail("FAILED_WrongEnergyTransferType", f"{mode} is not offered")
        param = req.ev_charge_parameter
        if not isinstance(param, m.DC_EVChargeParameter):
            raise Fail("FAILED_WrongChargeParameter", f"{type(param).__name__} for {mode}")
        self.energy_mode = mode
        self._dc.parameters(
            soc=param.dc_ev_status.evresssoc,
            ev_max_voltage_v=value_of(param.ev_maximum_voltage_limit),
            full_soc=param.full_soc,
            bulk_soc=param.bulk_soc,
            capacity_wh=value_of(param.ev_energy_capacity),
        )
        view = self.ctx.view
        schedules = None
        if view.limits is not None:
            schedules = self.ctx.schedules.schedules(
                ScheduleRequest(
                    evse_id=self.evse_id,
                    limits=view.limits,
                    energy_mode="DC_extended",
                    ac_phases=0,
                    departure_time_s=None,
                    max_schedules=None,
                    ev_max_power_w=value_of(param.ev_maximum_power_limit),
                )
            )
        else:
            self.request_bus(messages.CS_STATUS_AND_LIMITS_REQUEST.make({}))
        status = self._dc_status(now)
        if schedules is None:
            self.ongoing(now, "the station's limits")
            self.state = S.PARAMETERS_ONGOING
            return m.ChargeParameterDiscoveryRes(
                response_code=RC.OK,
                evse_processing=m.EVSEProcessing.Ongoing,
                sa_schedules=self._schedule_list([]),
                evse_charge_parameter=self._evse_charge_parameter(status),
            )
        self.finished()
        self.state = S.DC_READY
        self.ev_state = "C"  # the EV closes S2 before CableCheckReq
        self._dc.publish_display()
        return m.ChargeParameterDiscoveryRes(
            response_code=RC.OK,
            evse_processing=m.EVSEProcessing.Finished,
            sa_schedules=self._schedule_list(schedules),
            evse_charge_parameter=self._evse_charge_parameter(status),
        )

    def _power_delivery(self, req: m.PowerDeliveryReq, now: float) -> m.PowerDeliveryRes:
        view = self.ctx.view
        if req.ready_to_charge_state:
            if self.state is not S.PRECHARGE:
                raise Fail("FAILED_SequenceError", "PowerDeliveryReq(ready) while charging")
            if view.authorization is not Authorization.ACCEPTED:
                raise Fail("FAILED_PowerDeliveryNotApplied", "the session is not authorized")
            if view.status_code != "evse_ready" or view.stop_reason is not None:
                raise Fail(
                    "FAILED_PowerDeliveryNotApplied",
                    f"the EVSE is {view.status_code}, stop: {view.stop_reason}",
                )
            self.state = S.CHARGING
            self.ev_power = True
            self.request_bus(messages.CS_CONTACTOR_STATUS_REQUEST.make({"evse_id": self.evse_id}))
            pwm: messages.CpPwmRequest = {
                "evse_id": self.evse_id,
                "hlc": True,
                "error_state": False,
                "fault_state": False,
            }
            self.request_bus(messages.CP_PWM_REQUEST.make(pwm))
        else:
            self.stopping()
            self.state = S.STOPPED
            self.ev_state, self.ev_power = "B", False
            self._dc.power_off()
        parameter = req.ev_power_delivery_parameter
        if isinstance(parameter, m.DC_EVPowerDeliveryParameter):
            self._dc.display.set("present_soc", parameter.dc_ev_status.evresssoc)
            self._dc.display.set("charging_complete", parameter.charging_complete)
            self._dc.publish_display()
        return m.PowerDeliveryRes(response_code=RC.OK, evse_status=self._dc_status(now))

    def _current_demand(self, req: m.CurrentDemandReq, now: float) -> m.CurrentDemandRes:
        return m.CurrentDemandRes(**self._current_demand_fields(req, now))

    def _session_stop(self, req: m.SessionStop, now: float) -> m.SessionStopRes:
        self.state = S.FINISHED
        self._dc.power_off()
        self.end(Outcome.COMPLETED, "the EV stopped the session", self.ctx.settings.timers.linger_s)
        return m.SessionStopRes(response_code=RC.OK)
