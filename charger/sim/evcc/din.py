"""The EVCC's DIN SPEC 70121 core: DC charging with external identification means.

The sequence is `core`'s; this module writes it in DIN's message types:
ServicePaymentSelection and ContractAuthentication, PowerDelivery with
ReadyToChargeState, SessionStop without a pause (DIN has none: `paused` is not acted on).
"""

from __future__ import annotations

from typing import Any, ClassVar

from charger.protocols.exi import din as m
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
    Step.PAYMENT_SELECTION: "ServicePaymentSelectionReq",
    Step.AUTHORIZATION: "ContractAuthenticationReq",
    Step.CHARGE_PARAMETERS: "ChargeParameterDiscoveryReq",
    Step.CABLE_CHECK: "CableCheckReq",
    Step.PRECHARGE: "PreChargeReq",
    Step.POWER_DELIVERY_START: "PowerDeliveryReq",
    Step.CURRENT_DEMAND: "CurrentDemandReq",
    Step.POWER_DELIVERY_STOP: "PowerDeliveryReq",
    Step.WELDING_DETECTION: "WeldingDetectionReq",
    Step.SESSION_STOP: "SessionStop",  # DIN's SessionStopReq element is of SessionStopType
    Step.OUT_OF_SEQUENCE: "ServiceDiscoveryReq",
}

# V2G_EVCC_Msg_Timeout by request, DIN SPEC 70121 (the iso15118 package's table agrees);
# the others take core.DEFAULT_MSG_TIMEOUT_S (2 s).
MSG_TIMEOUT_S = {"CurrentDemandReq": 0.25}


class DinEvcc(EvccCore):
    protocol: ClassVar[V2gProtocol] = V2gProtocol.DIN_SPEC_70121
    module: ClassVar[Any] = m
    REQUESTS = REQUESTS
    MSG_TIMEOUT_S = MSG_TIMEOUT_S

    # ------------------------------------------------------------------ readings

    def evse_id_text(self, evseid: Any) -> str:
        """DIN's EVSEID: DIN SPEC 91286 digits packed in nibbles, 0xA for "*"."""
        digits = bytes(evseid).hex().upper().replace("A", "*")
        return digits.lstrip("0") or "0"

    def choose_energy_mode(self, body: m.ServiceDiscoveryRes) -> str:
        if m.PaymentOption.ExternalPayment not in body.payment_options.payment_option:
            raise EvccFail("the SECC offers no ExternalPayment (EIM)")
        offered = str(body.charge_service.energy_transfer_type)
        if "DC" not in offered:
            raise EvccFail(f"the EVSE offers no DC charging ({offered})")
        return "DC_extended"

    def charge_parameters(self, body: m.ChargeParameterDiscoveryRes) -> None:
        evse = self.evse
        parameter = body.evse_charge_parameter
        if not isinstance(parameter, m.DC_EVSEChargeParameter):
            raise EvccFail(f"{type(parameter).__name__} in a DC ChargeParameterDiscoveryRes")
        evse.max_current_a = value_of(parameter.evse_maximum_current_limit)
        evse.max_voltage_v = value_of(parameter.evse_maximum_voltage_limit)
        evse.max_power_w = value_of(parameter.evse_maximum_power_limit)
        schedules = body.sa_schedules
        tuples = schedules.sa_schedule_tuple if isinstance(schedules, m.SAScheduleList) else []
        if tuples:
            chosen = tuples[0]
            evse.tuple_id = chosen.sa_schedule_tuple_id
            entries = chosen.p_max_schedule.p_max_schedule_entry
            evse.pmax_w = float(entries[0].p_max) if entries else None

    # ------------------------------------------------------------------ requests

    def build(self, step: Step, now: float) -> object:
        s = self.settings
        if step is Step.SESSION_SETUP:
            return m.SessionSetupReq(evccid=s.evcc_id)
        if step in (Step.SERVICE_DISCOVERY, Step.OUT_OF_SEQUENCE):
            return m.ServiceDiscoveryReq()
        if step is Step.PAYMENT_SELECTION:
            return m.ServicePaymentSelectionReq(
                selected_payment_option=m.PaymentOption.ExternalPayment,
                selected_service_list=m.SelectedServiceList(
                    selected_service=[m.SelectedService(service_id=CHARGE_SERVICE_ID)]
                ),
            )
        if step is Step.AUTHORIZATION:
            return m.ContractAuthenticationReq()
        if step is Step.CHARGE_PARAMETERS:
            return m.ChargeParameterDiscoveryReq(
                ev_requested_energy_transfer_type=m.EVRequestedEnergyTransfer.DC_extended,
                ev_charge_parameter=m.DC_EVChargeParameter(
                    dc_ev_status=self._status(),
                    ev_maximum_current_limit=physical(m, s.dc_max_current_a, "A"),
                    ev_maximum_voltage_limit=physical(m, s.dc_max_voltage_v, "V"),
                    ev_maximum_power_limit=physical(m, self.dc_max_power_w(), "W"),
                    ev_energy_capacity=physical(m, s.capacity_wh, "Wh"),
                    ev_energy_request=physical(m, self.energy_request_wh(), "Wh"),
                    full_soc=100,
                    bulk_soc=int(s.target_soc_percent),
                ),
            )
        if step is Step.CABLE_CHECK:
            return m.CableCheckReq(dc_ev_status=self._status())
        if step is Step.PRECHARGE:
            return m.PreChargeReq(
                dc_ev_status=self._status(),
                ev_target_voltage=physical(m, self._precharge_target_v, "V"),
                ev_target_current=physical(m, PRECHARGE_CURRENT_A, "A"),
            )
        if step in (Step.POWER_DELIVERY_START, Step.POWER_DELIVERY_STOP):
            start = step is Step.POWER_DELIVERY_START
            complete = not start and self.vehicle.soc_percent >= s.target_soc_percent
            return m.PowerDeliveryReq(
                ready_to_charge_state=start,
                ev_power_delivery_parameter=m.DC_EVPowerDeliveryParameter(
                    dc_ev_status=self._status(),
                    charging_complete=complete,
                    bulk_charging_complete=complete,
                ),
            )
        if step is Step.CURRENT_DEMAND:
            return self._current_demand()
        if step is Step.WELDING_DETECTION:
            return m.WeldingDetectionReq(dc_ev_status=self._status())
        if step is Step.SESSION_STOP:
            return m.SessionStop()
        raise AssertionError(step)

    def _status(self) -> m.DC_EVStatus:
        return m.DC_EVStatus(
            ev_ready=True, ev_error_code=m.DC_EVErrorCode.NO_ERROR, evresssoc=self.soc
        )

    def _current_demand(self) -> m.CurrentDemandReq:
        s = self.settings
        voltage, current = self.dc_target()
        to_full = self.seconds_to(100.0)
        to_bulk = self.seconds_to(s.target_soc_percent)
        complete = self.vehicle.soc_percent >= s.target_soc_percent
        return m.CurrentDemandReq(
            dc_ev_status=self._status(),
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
