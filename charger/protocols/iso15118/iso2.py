"""ISO 15118-2:2014 session core, AC and DC with external identification means (EIM).

The message sequence of ISO 15118-2 as a table: `ALLOWED` names the
requests each state accepts. The EVSE's answers come from the `EvseView`; what the CS
has to do goes out as bus messages after each response (see `core`).

    SessionSetup -> ServiceDiscovery -> [ServiceDetail]* -> PaymentServiceSelection
    -> Authorization (Ongoing while the driver authorizes) -> ChargeParameterDiscovery
    AC: -> PowerDelivery(Start) -> ChargingStatus* [MeteringReceipt] -> PowerDelivery(Stop)
    DC: -> CableCheck* -> PreCharge* -> PowerDelivery(Start) -> CurrentDemand*
        [MeteringReceipt] -> PowerDelivery(Stop) -> WeldingDetection*
    -> SessionStop(Terminate | Pause)

PowerDelivery(Renegotiate) during charging leads back to ChargeParameterDiscovery. A
paused session is resumed by a SessionSetupReq carrying its session ID.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

from charger.bus import messages
from charger.protocols.exi import iso2 as m
from charger.protocols.iso15118 import dc
from charger.protocols.iso15118.core import (
    Context,
    Core,
    Fail,
    Outcome,
    PausedSession,
    from_physical,
    to_physical,
    value_of,
)
from charger.protocols.iso15118.evse import Authorization
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.schedules import Schedule, ScheduleRequest, phase_current_a

CHARGE_SERVICE_ID = 1
RC = m.ResponseCode


class S(enum.Enum):
    """States, named after what the session waits for next."""

    SETUP = "SessionSetupReq"
    DISCOVERY = "ServiceDiscoveryReq"
    SERVICES = "ServiceDetailReq or PaymentServiceSelectionReq"
    AUTHORIZATION = "AuthorizationReq"
    AUTHORIZING = "AuthorizationReq (Ongoing)"
    PARAMETERS = "ChargeParameterDiscoveryReq"
    PARAMETERS_ONGOING = "ChargeParameterDiscoveryReq (Ongoing)"
    AC_READY = "PowerDeliveryReq (AC)"
    DC_READY = "CableCheckReq"
    CABLE_CHECK = "CableCheckReq (Ongoing)"
    CABLE_CHECKED = "PreChargeReq"
    PRECHARGE = "PreChargeReq or PowerDeliveryReq"
    RENEGOTIATED = "PowerDeliveryReq (after renegotiation)"
    AC_CHARGING = "ChargingStatusReq"
    DC_CHARGING = "CurrentDemandReq"
    AC_STOPPED = "SessionStopReq (AC)"
    DC_STOPPED = "WeldingDetectionReq or SessionStopReq"
    STOPPED = "nothing (SessionStopRes sent)"


_STOP: type = m.SessionStopReq
ALLOWED: dict[S, frozenset[type]] = {
    S.SETUP: frozenset[type]({m.SessionSetupReq}),
    S.DISCOVERY: frozenset[type]({m.ServiceDiscoveryReq, _STOP}),
    S.SERVICES: frozenset[type]({m.ServiceDetailReq, m.PaymentServiceSelectionReq, _STOP}),
    S.AUTHORIZATION: frozenset[type]({m.AuthorizationReq, _STOP}),
    S.AUTHORIZING: frozenset[type]({m.AuthorizationReq, _STOP}),
    S.PARAMETERS: frozenset[type]({m.ChargeParameterDiscoveryReq, _STOP}),
    S.PARAMETERS_ONGOING: frozenset[type]({m.ChargeParameterDiscoveryReq, _STOP}),
    S.AC_READY: frozenset[type]({m.PowerDeliveryReq, _STOP}),
    S.DC_READY: frozenset[type]({m.CableCheckReq, _STOP}),
    S.CABLE_CHECK: frozenset[type]({m.CableCheckReq}),
    S.CABLE_CHECKED: frozenset[type]({m.PreChargeReq}),
    S.PRECHARGE: frozenset[type]({m.PreChargeReq, m.PowerDeliveryReq}),
    S.RENEGOTIATED: frozenset[type]({m.PowerDeliveryReq}),
    S.AC_CHARGING: frozenset[type]({m.ChargingStatusReq, m.PowerDeliveryReq, m.MeteringReceiptReq}),
    S.DC_CHARGING: frozenset[type]({m.CurrentDemandReq, m.PowerDeliveryReq, m.MeteringReceiptReq}),
    S.AC_STOPPED: frozenset[type]({_STOP}),
    S.DC_STOPPED: frozenset[type]({m.WeldingDetectionReq, _STOP}),
    S.STOPPED: frozenset[type](),
}

# V2G_SECC_Msg_Performance_Time by response: the EVCC's message timeout less 0.5 s.
PERFORMANCE_S = {
    "SupportedAppProtocolRes": 1.5,
    "SessionSetupRes": 1.5,
    "ServiceDiscoveryRes": 1.5,
    "ServiceDetailRes": 4.5,
    "PaymentServiceSelectionRes": 1.5,
    "PaymentDetailsRes": 4.5,
    "AuthorizationRes": 1.5,
    "ChargeParameterDiscoveryRes": 1.5,
    "PowerDeliveryRes": 4.5,
    "ChargingStatusRes": 1.5,
    "MeteringReceiptRes": 1.5,
    "CableCheckRes": 1.5,
    "PreChargeRes": 1.5,
    "CurrentDemandRes": 0.025,
    "WeldingDetectionRes": 1.5,
    "SessionStopRes": 1.5,
}


def physical(value: float, unit: m.UnitSymbol) -> m.PhysicalValue:
    number, multiplier = to_physical(value)
    return m.PhysicalValue(value=number, multiplier=multiplier, unit=unit)


_V, _A, _W, _WH = m.UnitSymbol.V, m.UnitSymbol.A, m.UnitSymbol.W, m.UnitSymbol.Wh


class Iso2Core(dc.DcRequests, Core):
    protocol: ClassVar[V2gProtocol] = V2gProtocol.ISO_15118_2
    MESSAGES: ClassVar[Any] = m
    STOP_REQUEST: ClassVar[type] = m.SessionStopReq
    ISOLATION_LEVELS: ClassVar[Mapping[str, str]] = dc.ISOLATION
    DC_STATES: ClassVar[dc.DcStates] = dc.DcStates(S.CABLE_CHECK, S.CABLE_CHECKED, S.PRECHARGE)
    ALLOWED = ALLOWED
    PERFORMANCE_S = PERFORMANCE_S
    HANDLERS: ClassVar[dict[type, str]] = {
        m.SessionSetupReq: "_session_setup",
        m.ServiceDiscoveryReq: "_service_discovery",
        m.ServiceDetailReq: "_service_detail",
        m.PaymentServiceSelectionReq: "_payment_service_selection",
        m.PaymentDetailsReq: "_unsupported",
        m.CertificateInstallationReq: "_unsupported",
        m.CertificateUpdateReq: "_unsupported",
        m.AuthorizationReq: "_authorization",
        m.ChargeParameterDiscoveryReq: "_charge_parameter_discovery",
        m.PowerDeliveryReq: "_power_delivery",
        m.ChargingStatusReq: "_charging_status",
        m.MeteringReceiptReq: "_metering_receipt",
        m.CableCheckReq: "_cable_check",
        m.PreChargeReq: "_pre_charge",
        m.CurrentDemandReq: "_current_demand",
        m.WeldingDetectionReq: "_welding_detection",
        m.SessionStopReq: "_session_stop",
    }

    def __init__(self, ctx: Context, setup_deadline: float | None) -> None:
        super().__init__(ctx, S.SETUP, setup_deadline)
        self.state: S = S.SETUP
        self._offered_payment: tuple[m.PaymentOption, ...] = ()
        self._resumed: PausedSession | None = None
        self._schedules: dict[int, Schedule] = {}
        self._tuple_id = 1
        self._receipt_pending = False
        self._renegotiating = False
        self._dc = dc.DcSession(
            ctx.setup.evse_id, ctx.view, ctx.settings.timers, self.request_bus, self.publish_bus
        )

    # ------------------------------------------------------------------ Core hooks

    def failed_response(self, kind: type, code: str) -> object:
        rc = RC(code)
        ac = self.energy_mode is None or self.energy_mode.startswith("AC")
        zero_v, zero_a, zero_w = physical(0, _V), physical(0, _A), physical(0, _W)
        dc_status = m.DC_EVSEStatus(
            notification_max_delay=0,
            evse_notification=m.EVSENotification.None_,
            evse_status_code=m.DC_EVSEStatusCode.EVSE_NotReady,
        )
        ac_status = m.AC_EVSEStatus(
            notification_max_delay=0, evse_notification=m.EVSENotification.None_, rcd=False
        )
        chain = m.CertificateChain(certificate=b"\x00")
        builders: dict[type, Any] = {
            m.SessionSetupReq: lambda: m.SessionSetupRes(response_code=rc, evseid=self.evse_id),
            m.ServiceDiscoveryReq: lambda: m.ServiceDiscoveryRes(
                response_code=rc,
                payment_option_list=m.PaymentOptionList(
                    payment_option=[m.PaymentOption.ExternalPayment]
                ),
                charge_service=self._charge_service(),
            ),
            m.ServiceDetailReq: lambda: m.ServiceDetailRes(response_code=rc, service_id=0),
            m.PaymentServiceSelectionReq: lambda: m.PaymentServiceSelectionRes(response_code=rc),
            m.PaymentDetailsReq: lambda: m.PaymentDetailsRes(
                response_code=rc, gen_challenge=bytes(16), evse_time_stamp=0
            ),
            m.CertificateInstallationReq: lambda: m.CertificateInstallationRes(
                response_code=rc,
                sa_provisioning_certificate_chain=chain,
                contract_signature_cert_chain=chain,
                contract_signature_encrypted_private_key=m.ContractSignatureEncryptedPrivateKey(
                    id="id1", value=bytes(48)
                ),
                dh_public_key=m.DiffieHellmanPublickey(id="id2", value=bytes(65)),
                e_maid=m.EMAID(id="id3", value="00000000000000"),
            ),
            m.CertificateUpdateReq: lambda: m.CertificateUpdateRes(
                response_code=rc,
                sa_provisioning_certificate_chain=chain,
                contract_signature_cert_chain=chain,
                contract_signature_encrypted_private_key=m.ContractSignatureEncryptedPrivateKey(
                    id="id1", value=bytes(48)
                ),
                dh_public_key=m.DiffieHellmanPublickey(id="id2", value=bytes(65)),
                e_maid=m.EMAID(id="id3", value="00000000000000"),
            ),
            m.AuthorizationReq: lambda: m.AuthorizationRes(
                response_code=rc, evse_processing=m.EVSEProcessing.Finished
            ),
            m.ChargeParameterDiscoveryReq: lambda: m.ChargeParameterDiscoveryRes(
                response_code=rc,
                evse_processing=m.EVSEProcessing.Finished,
                evse_charge_parameter=(
                    m.AC_EVSEChargeParameter(
                        ac_evse_status=ac_status,
                        evse_nominal_voltage=zero_v,
                        evse_max_current=zero_a,
                    )
                    if ac
                    else m.DC_EVSEChargeParameter(
                        dc_evse_status=dc_status,
                        evse_maximum_current_limit=zero_a,
                        evse_maximum_power_limit=zero_w,
                        evse_maximum_voltage_limit=zero_v,
                        evse_minimum_current_limit=zero_a,
                        evse_minimum_voltage_limit=zero_v,
                        evse_peak_current_ripple=zero_a,
                    )
                ),
            ),
            m.PowerDeliveryReq: lambda: m.PowerDeliveryRes(
                response_code=rc, evse_status=ac_status if ac else dc_status
            ),
            m.ChargingStatusReq: lambda: m.ChargingStatusRes(
                response_code=rc,
                evseid=self.evse_id,
                sa_schedule_tuple_id=self._tuple_id,
                ac_evse_status=ac_status,
            ),
            m.MeteringReceiptReq: lambda: m.MeteringReceiptRes(
                response_code=rc, evse_status=ac_status if ac else dc_status
            ),
            m.SessionStopReq: lambda: m.SessionStopRes(response_code=rc),
            **self._dc_failed(rc, {"evseid": self.evse_id, "sa_schedule_tuple_id": self._tuple_id}),
        }
        return builders[kind]()

    # ------------------------------------------------------------------ status

    def _notification(self, now: float) -> m.EVSENotification:
        if self.must_stop(now):
            return m.EVSENotification.StopCharging
        return m.EVSENotification.None_

    def _ac_status(self, now: float, charging: bool = False) -> m.AC_EVSEStatus:
        ac = self.ctx.view.ac
        return m.AC_EVSEStatus(
            notification_max_delay=self.ctx.settings.notification_max_delay_s,
            evse_notification=self._notification(now) if charging else m.EVSENotification.None_,
            rcd=bool(ac is not None and ac["rcd_error"]),
        )

    def _status(self, now: float, charging: bool = False) -> m.AC_EVSEStatus | m.DC_EVSEStatus:
        if self._is_dc:
            status: m.DC_EVSEStatus = self._dc_status(now, charging=charging)
            return status
        return self._ac_status(now, charging)

    @property
    def _is_dc(self) -> bool:
        return (self.energy_mode or "").startswith("DC")

    def _charge_service(self) -> m.ChargeService:
        return m.ChargeService(
            service_id=CHARGE_SERVICE_ID,
            service_name="AC_DC_Charging",
            service_category=m.ServiceCategory.EVCharging,
            free_service=self.ctx.settings.free_service,
            supported_energy_transfer_mode=m.SupportedEnergyTransferMode(
                energy_transfer_mode=[m.EnergyTransferMode(x) for x in self.ctx.setup.energy_modes]
            ),
        )

    def _meter_info(self) -> m.MeterInfo | None:
        view = self.ctx.view
        if view.meter_wh is None:
            return None
        return m.MeterInfo(
            meter_id=self.evse_id[:32],
            meter_reading=max(0, int(view.meter_wh)),
            t_meter=int(self.ctx.wall_clock()),
        )

    # ------------------------------------------------------------------ handlers

    def _unsupported(self, req: object, now: float) -> object:
        raise Fail("FAILED_SequenceError", f"{type(req).__name__}: Plug & Charge is not offered")

    def _session_setup(self, req: m.SessionSetupReq, now: float) -> m.SessionSetupRes:
        requested = self.header.session_id
        paused = self.ctx.paused
        self.ctx.paused = None  # a paused session is offered to the next setup only
        if (
            paused is not None
            and paused.protocol is self.protocol
            and (requested == paused.session_id)
        ):
            code = RC.OK_OldSessionJoined
            self.session_id = paused.session_id
            self._resumed = paused
            self.payment_option = paused.payment_option
        else:
            code = RC.OK_NewSessionEstablished
            old = paused.session_id if paused is not None else None
            self.session_id = self.ctx.new_session_id()
            while self.session_id in (old, bytes(8)):
                self.session_id = self.ctx.new_session_id()
        self.evcc_id = req.evccid
        self.session_started()
        self.state = S.DISCOVERY
        self.hlc_charging(True, "resume" if self._resumed is not None else None)
        return m.SessionSetupRes(
            response_code=code,
            evseid=self.evse_id,
            evse_time_stamp=int(self.ctx.wall_clock()),
        )

    def _service_discovery(self, req: m.ServiceDiscoveryReq, now: float) -> m.ServiceDiscoveryRes:
        if self._resumed is not None:  # a resumed session: the option chosen before
            self._offered_payment = (m.PaymentOption(self._resumed.payment_option),)
        else:
            self._offered_payment = (m.PaymentOption.ExternalPayment,)
        self.state = S.SERVICES
        return m.ServiceDiscoveryRes(
            response_code=RC.OK,
            payment_option_list=m.PaymentOptionList(payment_option=list(self._offered_payment)),
            charge_service=self._charge_service(),
        )

    def _service_detail(self, req: m.ServiceDetailReq, now: float) -> m.ServiceDetailRes:
        if req.service_id != CHARGE_SERVICE_ID:
            raise Fail("FAILED_ServiceIDInvalid", f"ServiceDetailReq for service {req.service_id}")
        return m.ServiceDetailRes(response_code=RC.OK, service_id=req.service_id)

    def _payment_service_selection(
        self, req: m.PaymentServiceSelectionReq, now: float
    ) -> m.PaymentServiceSelectionRes:
        if req.selected_payment_option not in self._offered_payment:
            raise Fail(
                "FAILED_PaymentSelectionInvalid",
                f"payment option {req.selected_payment_option} was not offered",
            )
        ids = [s.service_id for s in req.selected_service_list.selected_service]
        if CHARGE_SERVICE_ID not in ids:
            raise Fail("FAILED_NoChargeServiceSelected", f"selected services {ids}")
        if any(i != CHARGE_SERVICE_ID for i in ids):
            raise Fail("FAILED_ServiceSelectionInvalid", f"selected services {ids}")
        self.payment_option = str(req.selected_payment_option)
        self.state = S.AUTHORIZATION
        return m.PaymentServiceSelectionRes(response_code=RC.OK)

    def _authorization(self, req: m.AuthorizationReq, now: float) -> m.AuthorizationRes:
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
            processing = (
                m.EVSEProcessing.Ongoing
                if status is Authorization.PENDING
                else m.EVSEProcessing.Ongoing_WaitingForCustomerInteraction
            )
        return m.AuthorizationRes(response_code=RC.OK, evse_processing=processing)

    def _charge_parameter_discovery(
        self, req: m.ChargeParameterDiscoveryReq, now: float
    ) -> m.ChargeParameterDiscoveryRes:
        mode = str(req.requested_energy_transfer_mode)
        if mode not in self.ctx.setup.energy_modes:
            raise Fail("FAILED_WrongEnergyTransferMode", f"{mode} is not offered")
        param = req.ev_charge_parameter
        is_dc = mode.startswith("DC")
        if is_dc != isinstance(param, m.DC_EVChargeParameter):
            raise Fail("FAILED_WrongChargeParameter", f"{type(param).__name__} for {mode}")
        if self._renegotiating and self.energy_mode is not None and mode != self.energy_mode:
            raise Fail("FAILED_WrongEnergyTransferMode", f"{mode} after {self.energy_mode}")
        self.energy_mode = mode
        view = self.ctx.view
        ev_power_w: float | None = None
        if isinstance(param, m.DC_EVChargeParameter):
            ev_power_w = value_of(param.ev_maximum_power_limit)
            self._dc.parameters(
                soc=param.dc_ev_status.evresssoc,
                ev_max_voltage_v=value_of(param.ev_maximum_voltage_limit),
                full_soc=param.full_soc,
                bulk_soc=param.bulk_soc,
                capacity_wh=value_of(param.ev_energy_capacity),
            )
        else:
            max_v, max_a = value_of(param.ev_max_voltage), value_of(param.ev_max_current)
            if max_v is not None and max_a is not None:
                ev_power_w = max_v * max_a
        schedules = None
        if view.limits is not None:
            schedules = self.ctx.schedules.schedules(
                ScheduleRequest(
                    evse_id=self.evse_id,
                    limits=view.limits,
                    energy_mode=mode,
                    ac_phases=self.ctx.setup.ac_phases,
                    departure_time_s=param.departure_time,
                    max_schedules=req.max_entries_sa_schedule_tuple,
                    ev_max_power_w=ev_power_w,
                )
            )
        if view.limits is None:
            self.request_bus(messages.CS_STATUS_AND_LIMITS_REQUEST.make({}))
        if schedules is None:
            self.ongoing(now, "the station's limits")
            self.state = S.PARAMETERS_ONGOING
            return m.ChargeParameterDiscoveryRes(
                response_code=RC.OK,
                evse_processing=m.EVSEProcessing.Ongoing,
                evse_charge_parameter=self._evse_charge_parameter(now),
            )
        self.finished()
        if req.max_entries_sa_schedule_tuple:
            schedules = schedules[: req.max_entries_sa_schedule_tuple]
        self._schedules = {s.tuple_id: s for s in schedules}
        if self._renegotiating:
            self.state = S.RENEGOTIATED
        else:
            self.state = S.DC_READY if is_dc else S.AC_READY
            if is_dc:
                self.ev_state = "C"  # the EV closes S2 before CableCheckReq
        if is_dc:
            self._dc.publish_display()
        return m.ChargeParameterDiscoveryRes(
            response_code=RC.OK,
            evse_processing=m.EVSEProcessing.Finished,
            sa_schedules=m.SAScheduleList(
                sa_schedule_tuple=[self._schedule_tuple(s) for s in schedules]
            ),
            evse_charge_parameter=self._evse_charge_parameter(now),
        )

    def _schedule_tuple(self, schedule: Schedule) -> m.SAScheduleTuple:
        entries = []
        for i, period in enumerate(schedule.periods):
            last = i == len(schedule.periods) - 1
            entries.append(
                m.PMaxScheduleEntry(
                    time_interval=m.RelativeTimeInterval(
                        start=period.start_s,
                        duration=schedule.duration_s - period.start_s if last else None,
                    ),
                    p_max=physical(period.max_power_w, _W),
                )
            )
        return m.SAScheduleTuple(
            sa_schedule_tuple_id=schedule.tuple_id,
            p_max_schedule=m.PMaxSchedule(p_max_schedule_entry=entries),
        )

    def _evse_charge_parameter(
        self, now: float
    ) -> m.AC_EVSEChargeParameter | m.DC_EVSEChargeParameter:
        view = self.ctx.view
        if self._is_dc:
            lim = self._dc.limits()
            return m.DC_EVSEChargeParameter(
                dc_evse_status=self._dc_status(now),
                evse_maximum_current_limit=physical(lim.max_current_a, _A),
                evse_maximum_power_limit=physical(lim.max_power_w, _W),
                evse_maximum_voltage_limit=physical(lim.max_voltage_v, _V),
                evse_minimum_current_limit=physical(lim.min_current_a, _A),
                evse_minimum_voltage_limit=physical(lim.min_voltage_v, _V),
                evse_peak_current_ripple=physical(lim.peak_ripple_a, _A),
                evse_current_regulation_tolerance=None
                if lim.regulation_tolerance_a is None
                else physical(lim.regulation_tolerance_a, _A),
                evse_energy_to_be_delivered=None
                if lim.energy_to_deliver_wh is None
                else physical(lim.energy_to_deliver_wh, _WH),
            )
        ac = view.ac
        nominal = ac["nominal_voltage"] if ac is not None else self.ctx.setup.nominal_voltage_v
        return m.AC_EVSEChargeParameter(
            ac_evse_status=self._ac_status(now),
            evse_nominal_voltage=physical(nominal, _V),
            evse_max_current=physical(self._ac_max_current(), _A),
        )

    def _ac_max_current(self) -> float:
        ac = self.ctx.view.ac
        if ac is None:
            return 0.0
        phases = 1 if self.energy_mode == "AC_single_phase_core" else self.ctx.setup.ac_phases
        return phase_current_a(ac["max_current"], phases)

    def _power_delivery(self, req: m.PowerDeliveryReq, now: float) -> m.PowerDeliveryRes:
        progress = req.charge_progress
        view = self.ctx.view
        if progress is m.ChargeProgress.Start:
            if self.state in (S.AC_CHARGING, S.DC_CHARGING):
                raise Fail("FAILED_SequenceError", "PowerDeliveryReq(Start) while charging")
            schedule = self._schedules.get(req.sa_schedule_tuple_id)
            if schedule is None:
                raise Fail(
                    "FAILED_TariffSelectionInvalid",
                    f"SAScheduleTupleID {req.sa_schedule_tuple_id} was not offered",
                )
            self._check_profile(req.charging_profile, schedule)
            if view.authorization is not Authorization.ACCEPTED:
                raise Fail("FAILED_PowerDeliveryNotApplied", "the session is not authorized")
            if view.status_code != "evse_ready" or view.stop_reason is not None:
                raise Fail(
                    "FAILED_PowerDeliveryNotApplied",
                    f"the EVSE is {view.status_code}, stop: {view.stop_reason}",
                )
            if view.contactor == "error":
                raise Fail("FAILED_ContactorError", "the CS reports a contactor error")
            self._tuple_id = req.sa_schedule_tuple_id
            self._renegotiating = False
            self.state = S.DC_CHARGING if self._is_dc else S.AC_CHARGING
            self.ev_state, self.ev_power = "C", True
            self.request_bus(messages.CS_CONTACTOR_STATUS_REQUEST.make({"evse_id": self.evse_id}))
            pwm: messages.CpPwmRequest = {
                "evse_id": self.evse_id,
                "hlc": True,
                "error_state": False,
                "fault_state": False,
            }
            self.request_bus(messages.CP_PWM_REQUEST.make(pwm))
        elif progress is m.ChargeProgress.Stop:
            self.stopping()
            self.state = S.DC_STOPPED if self._is_dc else S.AC_STOPPED
            self.ev_state, self.ev_power = "B", False
            if self._is_dc:
                self._dc.power_off()
        else:  # Renegotiate
            if self.state not in (S.AC_CHARGING, S.DC_CHARGING):
                raise Fail(
                    "FAILED_SequenceError", "PowerDeliveryReq(Renegotiate) while not charging"
                )
            self._renegotiating = True
            self.state = S.PARAMETERS
        if req.ev_power_delivery_parameter is not None:
            p = req.ev_power_delivery_parameter
            self._dc.display.set("present_soc", p.dc_ev_status.evresssoc)
            self._dc.display.set("charging_complete", p.charging_complete)
            self._dc.publish_display()
        return m.PowerDeliveryRes(response_code=RC.OK, evse_status=self._status(now))

    def _check_profile(self, profile: m.ChargingProfile | None, schedule: Schedule) -> None:
        if profile is None:
            return
        limit = max(p.max_power_w for p in schedule.periods)
        for entry in profile.profile_entry:
            power = from_physical(
                entry.charging_profile_entry_max_power.value,
                entry.charging_profile_entry_max_power.multiplier,
            )
            if power > limit * 1.001 + 1.0:
                raise Fail(
                    "FAILED_ChargingProfileInvalid",
                    f"profile entry at {entry.charging_profile_entry_start} s asks "
                    f"{power:g} W, the schedule allows {limit:g} W",
                )

    def _receipt(self) -> bool:
        self._receipt_pending = self.ctx.settings.receipt_required
        return self._receipt_pending

    def _charging_status(self, req: m.ChargingStatusReq, now: float) -> m.ChargingStatusRes:
        receipt = self._receipt()
        return m.ChargingStatusRes(
            response_code=RC.OK,
            evseid=self.evse_id,
            sa_schedule_tuple_id=self._tuple_id,
            ac_evse_status=self._ac_status(now, charging=True),
            evse_max_current=physical(self._ac_max_current(), _A),
            meter_info=self._meter_info()
            if receipt or self.ctx.view.meter_wh is not None
            else None,
            receipt_required=receipt,
        )

    def _metering_receipt(self, req: m.MeteringReceiptReq, now: float) -> m.MeteringReceiptRes:
        if not self._receipt_pending:
            raise Fail("FAILED_SequenceError", "MeteringReceiptReq without ReceiptRequired")
        if req.session_id != self.session_id:
            raise Fail("FAILED_UnknownSession", "MeteringReceiptReq for another session")
        self._receipt_pending = False
        return m.MeteringReceiptRes(response_code=RC.OK, evse_status=self._status(now, True))

    # ------------------------------------------------------------------ DC

    def _current_demand(self, req: m.CurrentDemandReq, now: float) -> m.CurrentDemandRes:
        fields = self._current_demand_fields(req, now)
        receipt = self._receipt()
        return m.CurrentDemandRes(
            **fields,
            evseid=self.evse_id,
            sa_schedule_tuple_id=self._tuple_id,
            meter_info=self._meter_info() if receipt else None,
            receipt_required=receipt,
        )

    def _session_stop(self, req: m.SessionStopReq, now: float) -> m.SessionStopRes:
        self.state = S.STOPPED
        if self._is_dc:
            self._dc.power_off()
        linger = self.ctx.settings.timers.linger_s
        if req.charging_session is m.ChargingSession.Pause:
            self.ctx.paused = PausedSession(
                self.session_id, self.protocol, self.payment_option or "", self.energy_mode
            )
            self.end(Outcome.PAUSED, "the EV paused the session", linger)
        else:
            self.end(Outcome.COMPLETED, "the EV terminated the session", linger)
        return m.SessionStopRes(response_code=RC.OK)
