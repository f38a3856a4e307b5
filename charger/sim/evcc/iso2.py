"""The EVCC's ISO 15118-2 core: AC and DC charging with external identification means.

The sequence is `core`'s; this module writes it in -2's message types: PaymentService-
Selection and Authorization (EIM), the SAScheduleList's first tuple chosen with a
charging profile within it, ChargingStatus (AC) with MeteringReceipt when the SECC asks
for one, and SessionStop Pause to pause (resumed with the session ID).
"""

from __future__ import annotations

from typing import Any, ClassVar

from charger.protocols.exi import iso2 as m
from charger.protocols.iso15118.core import value_of
from charger.protocols.iso15118.sap import V2gProtocol
from charger.sim.evcc.core import (
    PRECHARGE_CURRENT_A,
    EvccCore,
    EvccFail,
    Step,
    physical,
)

CHARGE_SERVICE_ID = 1

REQUESTS = {
    Step.SESSION_SETUP: "SessionSetupReq",
    Step.SERVICE_DISCOVERY: "ServiceDiscoveryReq",
    Step.PAYMENT_SELECTION: "PaymentServiceSelectionReq",
    Step.AUTHORIZATION: "AuthorizationReq",
    Step.CHARGE_PARAMETERS: "ChargeParameterDiscoveryReq",
    Step.CABLE_CHECK: "CableCheckReq",
    Step.PRECHARGE: "PreChargeReq",
    Step.POWER_DELIVERY_START: "PowerDeliveryReq",
    Step.CHARGING_STATUS: "ChargingStatusReq",
    Step.CURRENT_DEMAND: "CurrentDemandReq",
    Step.METERING_RECEIPT: "MeteringReceiptReq",
    Step.POWER_DELIVERY_STOP: "PowerDeliveryReq",
    Step.WELDING_DETECTION: "WeldingDetectionReq",
    Step.SESSION_STOP: "SessionStopReq",
    Step.OUT_OF_SEQUENCE: "ServiceDiscoveryReq",
}

# V2G_EVCC_Msg_Timeout by request, ISO 15118-2 (the iso15118 package's table agrees);
# the others take core.DEFAULT_MSG_TIMEOUT_S (2 s).
MSG_TIMEOUT_S = {
    "ServiceDetailReq": 5.0,
    "PaymentDetailsReq": 5.0,
    "CertificateInstallationReq": 5.0,
    "CertificateUpdateReq": 5.0,
    "PowerDeliveryReq": 5.0,
    "CurrentDemandReq": 0.25,
}

_DC_MODES = ("DC_extended", "DC_combo_core", "DC_core", "DC_unique")


class Iso2Evcc(EvccCore):
    protocol: ClassVar[V2gProtocol] = V2gProtocol.ISO_15118_2
    module: ClassVar[Any] = m
    REQUESTS = REQUESTS
    MSG_TIMEOUT_S = MSG_TIMEOUT_S
    can_pause: ClassVar[bool] = True

    # ------------------------------------------------------------------ readings

    def choose_energy_mode(self, body: m.ServiceDiscoveryRes) -> str:
        if m.PaymentOption.ExternalPayment not in body.payment_option_list.payment_option:
            raise EvccFail("the SECC offers no ExternalPayment (EIM)")
        offered = [
            str(x) for x in body.charge_service.supported_energy_transfer_mode.energy_transfer_mode
        ]
        if self.settings.dc:
            wanted = [x for x in _DC_MODES if x in offered]
        else:
            three = "AC_three_phase_core"
            single = "AC_single_phase_core"
            order = (three, single) if self.settings.ac_phases >= 3 else (single, three)
            wanted = [x for x in order if x in offered]
        if not wanted:
            kind = "DC" if self.settings.dc else "AC"
            raise EvccFail(f"the EVSE offers no {kind} charging ({', '.join(offered)})")
        return wanted[0]

    def charge_parameters(self, body: m.ChargeParameterDiscoveryRes) -> None:
        evse = self.evse
        parameter = body.evse_charge_parameter
        if isinstance(parameter, m.DC_EVSEChargeParameter):
            evse.max_current_a = value_of(parameter.evse_maximum_current_limit)
            evse.max_voltage_v = value_of(parameter.evse_maximum_voltage_limit)
            evse.max_power_w = value_of(parameter.evse_maximum_power_limit)
        else:
            evse.max_current_a = value_of(parameter.evse_max_current)
            evse.nominal_voltage_v = value_of(parameter.evse_nominal_voltage) or 230.0
        tuples = body.sa_schedules.sa_schedule_tuple if body.sa_schedules is not None else []
        if not tuples:
            raise EvccFail("ChargeParameterDiscoveryRes Finished without an SAScheduleTuple")
        chosen = tuples[0]
        evse.tuple_id = chosen.sa_schedule_tuple_id
        entries = chosen.p_max_schedule.p_max_schedule_entry
        evse.pmax_w = value_of(entries[0].p_max) if entries else None

    def ac_loop(self, body: m.ChargingStatusRes) -> str | None:
        maximum = value_of(body.evse_max_current)
        if maximum is not None:
            self.evse.max_current_a = maximum
            self._draw(self.ac_current_a())
        if body.ac_evse_status.evse_notification is m.EVSENotification.StopCharging:
            return "the EVSE asked to stop (EVSENotification StopCharging)"
        return None

    # ------------------------------------------------------------------ requests

    def build(self, step: Step, now: float) -> object:
        s = self.settings
        if step is Step.SESSION_SETUP:
            return m.SessionSetupReq(evccid=s.evcc_id)
        if step in (Step.SERVICE_DISCOVERY, Step.OUT_OF_SEQUENCE):
            return m.ServiceDiscoveryReq()
        if step is Step.PAYMENT_SELECTION:
            return m.PaymentServiceSelectionReq(
                selected_payment_option=m.PaymentOption.ExternalPayment,
                selected_service_list=m.SelectedServiceList(
                    selected_service=[m.SelectedService(service_id=CHARGE_SERVICE_ID)]
                ),
            )
        if step is Step.AUTHORIZATION:
            return m.AuthorizationReq()
        if step is Step.CHARGE_PARAMETERS:
            return m.ChargeParameterDiscoveryReq(
                requested_energy_transfer_mode=m.EnergyTransferMode(self.energy_mode),
                ev_charge_parameter=self._dc_parameter() if s.dc else self._ac_parameter(),
            )
        if step is Step.CABLE_CHECK:
            return m.CableCheckReq(dc_ev_status=self._dc_status())
        if step is Step.PRECHARGE:
            return m.PreChargeReq(
                dc_ev_status=self._dc_status(),
                ev_target_voltage=physical(m, self._precharge_target_v, "V"),
                ev_target_current=physical(m, PRECHARGE_CURRENT_A, "A"),
            )
        if step is Step.POWER_DELIVERY_START:
            return m.PowerDeliveryReq(
                charge_progress=m.ChargeProgress.Start,
                sa_schedule_tuple_id=self.evse.tuple_id,
                charging_profile=self._profile(),
                ev_power_delivery_parameter=self._power_delivery_parameter(False) if s.dc else None,
            )
        if step is Step.POWER_DELIVERY_STOP:
            complete = self.vehicle.soc_percent >= s.target_soc_percent
            return m.PowerDeliveryReq(
                charge_progress=m.ChargeProgress.Stop,
                sa_schedule_tuple_id=self.evse.tuple_id,
                ev_power_delivery_parameter=self._power_delivery_parameter(complete)
                if s.dc
                else None,
            )
        if step is Step.CHARGING_STATUS:
            return m.ChargingStatusReq()
        if step is Step.CURRENT_DEMAND:
            return self._current_demand()
        if step is Step.METERING_RECEIPT:
            return m.MeteringReceiptReq(
                session_id=self.session_id,
                meter_info=self.receipt_meter,
                sa_schedule_tuple_id=self.evse.tuple_id,
            )
        if step is Step.WELDING_DETECTION:
            return m.WeldingDetectionReq(dc_ev_status=self._dc_status())
        if step is Step.SESSION_STOP:
            how = m.ChargingSession.Pause if self.pause else m.ChargingSession.Terminate
            return m.SessionStopReq(charging_session=how)
        raise AssertionError(step)

    def _dc_status(self) -> m.DC_EVStatus:
        return m.DC_EVStatus(
            ev_ready=True, ev_error_code=m.DC_EVErrorCode.NO_ERROR, evresssoc=self.soc
        )

    def _ac_parameter(self) -> m.AC_EVChargeParameter:
        s = self.settings
        return m.AC_EVChargeParameter(
            departure_time=s.departure_time_s or None,
            e_amount=physical(m, self.energy_request_wh(), "Wh"),
            ev_max_voltage=physical(m, s.ac_max_voltage_v, "V"),
            ev_max_current=physical(m, s.ac_max_current_a, "A"),
            ev_min_current=physical(m, s.ac_min_current_a, "A"),
        )

    def _dc_parameter(self) -> m.DC_EVChargeParameter:
        s = self.settings
        return m.DC_EVChargeParameter(
            dc_ev_status=self._dc_status(),
            ev_maximum_current_limit=physical(m, s.dc_max_current_a, "A"),
            ev_maximum_voltage_limit=physical(m, s.dc_max_voltage_v, "V"),
            departure_time=s.departure_time_s or None,
            ev_maximum_power_limit=physical(m, self.dc_max_power_w(), "W"),
            ev_energy_capacity=physical(m, s.capacity_wh, "Wh"),
            ev_energy_request=physical(m, self.energy_request_wh(), "Wh"),
            full_soc=100,
            bulk_soc=int(s.target_soc_percent),
        )

    def _profile(self) -> m.ChargingProfile:
        """One entry from now on: the car's power within the chosen schedule's PMax."""
        s = self.settings
        if s.dc:
            power = self.dc_max_power_w()
        else:
            phases = 1 if self.energy_mode == "AC_single_phase_core" else s.ac_phases
            power = self.ac_current_a() * self.evse.nominal_voltage_v * phases
        if self.evse.pmax_w is not None:
            power = min(power, self.evse.pmax_w)
        return m.ChargingProfile(
            profile_entry=[
                m.ProfileEntry(
                    charging_profile_entry_start=0,
                    charging_profile_entry_max_power=physical(m, power, "W"),
                )
            ]
        )

    def _power_delivery_parameter(self, complete: bool) -> m.DC_EVPowerDeliveryParameter:
        return m.DC_EVPowerDeliveryParameter(
            dc_ev_status=self._dc_status(),
            charging_complete=complete,
            bulk_charging_complete=complete,
        )

    def _current_demand(self) -> m.CurrentDemandReq:
        s = self.settings
        voltage, current = self.dc_target()
        to_full = self.seconds_to(100.0)
        to_bulk = self.seconds_to(s.target_soc_percent)
        complete = self.vehicle.soc_percent >= s.target_soc_percent
        return m.CurrentDemandReq(
            dc_ev_status=self._dc_status(),
            ev_target_current=physical(m, current, "A"),
            charging_complete=complete,
            ev_target_voltage=physical(m, voltage, "V"),
            ev_maximum_voltage_limit=physical(m, s.dc_max_voltage_v, "V"),
            ev_maximum_current_limit=physical(m, s.dc_max_current_a, "A"),
            ev_maximum_power_limit=physical(m, self.dc_max_power_w(), "W"),
            bulk_charging_complete=complete,
            remaining_time_to_full_soc=None if to_full is None else physical(m, to_full, "s"),
            remaining_time_to_bulk_soc=None if to_bulk is None else physical(m, to_bulk, "s"),
        )
