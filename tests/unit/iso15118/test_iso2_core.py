"""The ISO 15118-2 session core, sans-IO: an EV's requests in, responses and bus
messages out, time passed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from charger.protocols.exi import iso2
from charger.protocols.iso15118.core import Outcome, PausedSession, Timers
from charger.protocols.iso15118.evse import Authorization, CableCheck
from charger.protocols.iso15118.iso2 import ALLOWED, S
from charger.protocols.iso15118.sap import V2gProtocol

ISO2 = V2gProtocol.ISO_15118_2


def set_up(ev: Any, req: Any) -> None:
    """SAP, SessionSetup, ServiceDiscovery, PaymentServiceSelection."""
    assert ev.sap().code == "OK_SuccessfulNegotiation"
    assert ev.send(req.session_setup()).code == "OK_NewSessionEstablished"
    assert ev.send(req.service_discovery()).code == "OK"
    assert ev.send(req.payment()).code == "OK"


def test_an_ac_session_from_setup_to_stop(make_ev: Callable[..., Any], iso2_req: Any) -> None:
    ev = make_ev()
    sap = ev.sap()
    assert sap.body.schema_id == 1
    setup = ev.send(iso2_req.session_setup())
    assert setup.code == "OK_NewSessionEstablished"
    assert setup.header.session_id == bytes([1]) * 8
    assert setup.body.evseid == "DE*TST*E0001"
    assert "hlc_charging.update" in setup.names()
    discovery = ev.send(iso2_req.service_discovery())
    assert discovery.body.payment_option_list.payment_option == [iso2.PaymentOption.ExternalPayment]
    assert discovery.body.charge_service.supported_energy_transfer_mode.energy_transfer_mode == [
        iso2.EnergyTransferMode.AC_three_phase_core
    ]
    assert ev.send(iso2_req.payment()).code == "OK"
    auth = ev.send(iso2_req.authorization())
    assert auth.body.evse_processing is iso2.EVSEProcessing.Finished
    cpd = ev.send(iso2_req.cpd_ac())
    assert cpd.body.evse_processing is iso2.EVSEProcessing.Finished
    (schedule,) = cpd.body.sa_schedules.sa_schedule_tuple
    pmax = schedule.p_max_schedule.p_max_schedule_entry[0].p_max
    assert pmax.value * 10**pmax.multiplier == 230 * 32 * 3
    parameter = cpd.body.evse_charge_parameter
    assert parameter.evse_max_current.value * 10**parameter.evse_max_current.multiplier == 32
    start = ev.send(iso2_req.power_delivery("Start"))
    assert start.code == "OK"
    assert start.send.ev_state == "C"
    assert {"cs_contactor_status.request", "cp_pwm.request"} <= set(start.names())
    for _ in range(3):
        status = ev.send(iso2_req.charging_status())
        assert status.code == "OK"
        assert status.body.ac_evse_status.evse_notification is iso2.EVSENotification.None_
        assert status.body.sa_schedule_tuple_id == 1
    stop = ev.send(iso2_req.power_delivery("Stop"))
    assert stop.code == "OK" and stop.send.ev_state == "B"
    end = ev.send(iso2_req.session_stop())
    assert end.code == "OK"
    assert end.end is not None and end.end.outcome is Outcome.COMPLETED
    hlc = [m for m in end.bus if m.name == "hlc_charging"]
    assert hlc and all(m.data == {"evse_id": "DE*TST*E0001", "status": False} for m in hlc)


def test_a_dc_session_with_cable_check_pre_charge_and_welding_detection(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev(dc=True)
    set_up(ev, iso2_req)
    assert ev.send(iso2_req.authorization()).code == "OK"
    cpd = ev.send(iso2_req.cpd_dc())
    assert isinstance(cpd.body.evse_charge_parameter, iso2.DC_EVSEChargeParameter)
    assert cpd.send.ev_state == "C"
    assert "display_params.update" in cpd.names()
    # the cable check runs on the CS: Ongoing until its result is in the view
    first = ev.send(iso2_req.cable_check())
    assert first.body.evse_processing is iso2.EVSEProcessing.Ongoing
    assert (
        first.body.dc_evse_status.evse_status_code
        is iso2.DC_EVSEStatusCode.EVSE_IsolationMonitoringActive
    )
    starts = [m for m in first.bus if m.name == "cable_check"]
    assert [m.data["cable_check_action"] for m in starts] == ["start"]
    assert "cs_contactor_status.request" in first.names()
    ev.view.cable_check = CableCheck("ongoing", None, ev.now)
    polled = ev.send(iso2_req.cable_check())
    assert [m.data["cable_check_action"] for m in polled.bus if m.name == "cable_check"] == [
        "status"
    ]
    ev.view.cable_check = CableCheck("finished", "valid", ev.now)
    done = ev.send(iso2_req.cable_check())
    assert done.body.evse_processing is iso2.EVSEProcessing.Finished
    pre = ev.send(iso2_req.pre_charge(400, 5))
    (setpoint,) = [m for m in pre.bus if m.name == "power_electronics_setpoint"]
    assert setpoint.data["is_precharge"] is True
    assert setpoint.data["dc"] == {"voltage": 400.0, "charge_current": 2.0}  # at most 2 A
    assert ev.send(iso2_req.power_delivery_dc("Start")).code == "OK"
    ev.view.limits["dc"]["present_voltage"] = 398.5
    ev.view.limits["dc"]["present_current"] = 99.0
    demand = ev.send(iso2_req.current_demand(400, 100, soc=30))
    body = demand.body
    assert body.evse_present_voltage.value * 10**body.evse_present_voltage.multiplier == 398.5
    assert body.evse_present_current.value * 10**body.evse_present_current.multiplier == 99
    assert not body.evse_current_limit_achieved
    (setpoint,) = [m for m in demand.bus if m.name == "power_electronics_setpoint"]
    assert setpoint.data["dc"] == {"voltage": 400.0, "charge_current": 100.0}
    (display,) = [m for m in demand.bus if m.name == "display_params"]
    assert display.data["present_soc"] == 30 and display.data["remaining_time_to_max_soc"] == 1200
    # an unchanged setpoint and display are not sent again
    again = ev.send(iso2_req.current_demand(400, 100, soc=30))
    assert again.bus == []
    limited = ev.send(iso2_req.current_demand(400, 200, soc=31))
    assert limited.body.evse_current_limit_achieved
    (setpoint,) = [m for m in limited.bus if m.name == "power_electronics_setpoint"]
    assert setpoint.data["dc"]["charge_current"] == 125.0
    stop = ev.send(iso2_req.power_delivery_dc("Stop"))
    (off,) = [m for m in stop.bus if m.name == "power_electronics_setpoint"]
    assert off.data["dc"] == {"voltage": 0.0, "charge_current": 0.0}
    assert ev.send(iso2_req.welding()).code == "OK"
    assert ev.send(iso2_req.session_stop()).end.outcome is Outcome.COMPLETED


def test_the_power_limit_caps_the_current(make_ev: Callable[..., Any], iso2_req: Any) -> None:
    ev = make_ev(dc=True)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_dc())
    ev.view.cable_check = CableCheck("finished", "valid", 0.0)
    ev.send(iso2_req.cable_check())
    ev.send(iso2_req.pre_charge())
    ev.send(iso2_req.power_delivery_dc("Start"))
    demand = ev.send(iso2_req.current_demand(500, 120))  # 60 kW asked, 50 kW allowed
    assert demand.body.evse_power_limit_achieved
    (setpoint,) = [m for m in demand.bus if m.name == "power_electronics_setpoint"]
    assert setpoint.data["dc"]["charge_current"] == 100.0


@pytest.mark.parametrize(
    ("status", "processing"),
    [
        (Authorization.NONE, iso2.EVSEProcessing.Ongoing_WaitingForCustomerInteraction),
        (Authorization.PENDING, iso2.EVSEProcessing.Ongoing),
    ],
)
def test_authorization_is_ongoing_until_the_driver_is_authorized(
    make_ev: Callable[..., Any], iso2_req: Any, status: Authorization, processing: Any
) -> None:
    ev = make_ev(authorization=status)
    set_up(ev, iso2_req)
    waiting = ev.send(iso2_req.authorization())
    assert waiting.code == "OK" and waiting.body.evse_processing is processing
    ev.view.authorization = Authorization.ACCEPTED
    assert ev.send(iso2_req.authorization()).body.evse_processing is iso2.EVSEProcessing.Finished
    assert ev.send(iso2_req.cpd_ac()).code == "OK"


def test_a_rejected_authorization_fails_the_session(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev(authorization=Authorization.PENDING)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.view.authorization = Authorization.REJECTED
    reply = ev.send(iso2_req.authorization())
    assert reply.code == "FAILED"
    assert reply.end is not None and reply.end.outcome is Outcome.FAILED


def test_authorization_ongoing_ends_after_the_ongoing_timeout(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev(authorization=Authorization.PENDING)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.now += 59.0
    assert ev.send(iso2_req.authorization()).code == "OK"
    ev.now += 1.0
    late = ev.send(iso2_req.authorization())
    assert late.code == "FAILED" and "V2G_EVCC_Ongoing_Timeout" in late.end.reason


def test_a_request_out_of_sequence_gets_failed_sequence_error(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    ev.sap()
    ev.send(iso2_req.session_setup())
    reply = ev.send(iso2_req.charging_status())
    assert isinstance(reply.body, iso2.ChargingStatusRes)
    assert reply.code == "FAILED_SequenceError"
    assert reply.end.outcome is Outcome.FAILED
    assert ev.send(iso2_req.service_discovery()).send.payload == b""  # nothing after the end


def test_session_stop_while_charging_is_a_sequence_error(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_ac())
    ev.send(iso2_req.power_delivery("Start"))
    reply = ev.send(iso2_req.session_stop())
    assert reply.code == "FAILED_SequenceError"
    assert reply.end.outcome is Outcome.FAILED


def test_a_wrong_session_id_gets_failed_unknown_session(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    ev.sap()
    ev.send(iso2_req.session_setup())
    reply = ev.send(iso2_req.service_discovery(), session_id=bytes(range(8)))
    assert reply.code == "FAILED_UnknownSession"
    assert isinstance(reply.body, iso2.ServiceDiscoveryRes)
    assert reply.end.outcome is Outcome.FAILED


def test_undecodable_exi_gets_the_failed_response_of_the_expected_request(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    set_up(ev, iso2_req)
    reply = ev.raw(b"\x80\x98\x02\xff\xff\xff")
    assert isinstance(reply.body, iso2.AuthorizationRes)
    assert reply.code == "FAILED"
    assert "undecodable EXI" in reply.end.reason


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (lambda r: r.payment("Contract"), "FAILED_PaymentSelectionInvalid"),
        (lambda r: r.payment(services=(2,)), "FAILED_NoChargeServiceSelected"),
        (lambda r: r.payment(services=(1, 3)), "FAILED_ServiceSelectionInvalid"),
    ],
)
def test_a_selection_that_was_not_offered_fails(
    make_ev: Callable[..., Any], iso2_req: Any, request_: Any, code: str
) -> None:
    ev = make_ev()
    ev.sap()
    ev.send(iso2_req.session_setup())
    ev.send(iso2_req.service_discovery())
    assert ev.send(request_(iso2_req)).code == code


def test_charge_parameters_must_fit_the_offered_energy_transfer_mode(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    assert ev.send(iso2_req.cpd_dc()).code == "FAILED_WrongEnergyTransferMode"
    ev = make_ev()
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    wrong = iso2_req.cpd_ac()
    wrong.ev_charge_parameter = iso2_req.cpd_dc().ev_charge_parameter
    assert ev.send(wrong).code == "FAILED_WrongChargeParameter"


def test_charge_parameter_discovery_is_ongoing_until_the_limits_are_known(
    make_ev: Callable[..., Any], iso2_req: Any, limits: Any
) -> None:
    ev = make_ev()
    ev.view.limits = None
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    waiting = ev.send(iso2_req.cpd_ac())
    assert waiting.body.evse_processing is iso2.EVSEProcessing.Ongoing
    assert waiting.body.sa_schedules is None
    assert "cs_status_and_limits.request" in waiting.names()
    ev.view.limits = limits.ac(16.0)
    done = ev.send(iso2_req.cpd_ac())
    assert done.body.evse_processing is iso2.EVSEProcessing.Finished
    current = done.body.evse_charge_parameter.evse_max_current
    assert current.value * 10**current.multiplier == 16


def test_power_delivery_checks_the_schedule_and_the_profile(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    def ready() -> Any:
        ev = make_ev()
        set_up(ev, iso2_req)
        ev.send(iso2_req.authorization())
        ev.send(iso2_req.cpd_ac())
        return ev

    assert ready().send(iso2_req.power_delivery(tuple_id=7)).code == "FAILED_TariffSelectionInvalid"
    too_much = iso2_req.power_delivery(profile_w=3000)  # 30 kW > 22.08 kW
    assert ready().send(too_much).code == "FAILED_ChargingProfileInvalid"
    assert ready().send(iso2_req.power_delivery(profile_w=2000)).code == "OK"


def test_power_delivery_is_refused_when_the_evse_cannot_deliver(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_ac())
    ev.view.limits["status_code"] = "evse_malfunction"
    assert ev.send(iso2_req.power_delivery()).code == "FAILED_PowerDeliveryNotApplied"
    ev = make_ev()
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_ac())
    ev.view.contactor = "error"
    assert ev.send(iso2_req.power_delivery()).code == "FAILED_ContactorError"


def charging(make_ev: Callable[..., Any], req: Any, **kw: Any) -> Any:
    ev = make_ev(**kw)
    set_up(ev, req)
    ev.send(req.authorization())
    ev.send(req.cpd_ac())
    ev.send(req.power_delivery("Start"))
    return ev


def test_a_stop_request_tells_the_ev_to_stop_and_a_deaf_ev_is_stopped(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req, timers=Timers(stop_reaction_s=5.0))
    ev.view.stop_reason = "remote stop (CSMS)"
    told = ev.send(iso2_req.charging_status())
    assert told.body.ac_evse_status.evse_notification is iso2.EVSENotification.StopCharging
    ev.now += 4.0
    ev.send(iso2_req.charging_status())
    assert ev.session.next_deadline() == 5.0
    ev.tick(1.0)
    assert ev.ended is not None and ev.ended.outcome is Outcome.FAILED
    assert "did not stop" in ev.ended.reason


def test_an_ev_that_stops_when_told_ends_normally(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req, timers=Timers(stop_reaction_s=5.0))
    ev.view.stop_reason = "authorization deauthorized"
    ev.send(iso2_req.charging_status())
    assert ev.send(iso2_req.power_delivery("Stop")).code == "OK"
    ev.tick(10.0)
    assert ev.ended is None
    assert ev.send(iso2_req.session_stop()).end.outcome is Outcome.COMPLETED


def test_an_rcd_fault_is_reported_and_stops_charging(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req)
    ev.view.limits["ac"]["rcd_error"] = True
    status = ev.send(iso2_req.charging_status()).body.ac_evse_status
    assert status.rcd is True
    assert status.evse_notification is iso2.EVSENotification.StopCharging


def test_metering_receipt_when_the_evse_asks_for_it(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req, receipt_required=True)
    ev.view.meter_wh = 1234.5
    status = ev.send(iso2_req.charging_status()).body
    assert status.receipt_required is True
    assert status.meter_info.meter_reading == 1234
    receipt = iso2.MeteringReceiptReq(session_id=ev.session_id, meter_info=status.meter_info)
    reply = ev.send(receipt)
    assert reply.code == "OK" and isinstance(reply.body, iso2.MeteringReceiptRes)
    assert ev.send(iso2_req.charging_status()).code == "OK"


def test_a_metering_receipt_nobody_asked_for_is_a_sequence_error(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req)
    receipt = iso2.MeteringReceiptReq(
        session_id=ev.session_id, meter_info=iso2.MeterInfo(meter_id="x")
    )
    assert ev.send(receipt).code == "FAILED_SequenceError"


def test_renegotiation_goes_back_to_charge_parameter_discovery(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req)
    assert ev.send(iso2_req.power_delivery("Renegotiate")).code == "OK"
    assert ev.send(iso2_req.charging_status()).code == "FAILED_SequenceError"
    ev = charging(make_ev, iso2_req)
    ev.send(iso2_req.power_delivery("Renegotiate"))
    assert ev.send(iso2_req.cpd_ac()).code == "OK"
    assert ev.send(iso2_req.power_delivery("Start")).code == "OK"
    assert ev.send(iso2_req.charging_status()).code == "OK"


def test_a_paused_session_is_resumed_with_its_session_id(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    first = charging(make_ev, iso2_req)
    first.send(iso2_req.power_delivery("Stop"))
    paused = first.send(iso2_req.session_stop("Pause"))
    assert paused.end.outcome is Outcome.PAUSED
    hlc = [m.data for m in paused.bus if m.name == "hlc_charging"]
    assert hlc and all(d["status"] is True and d["action"] == "pause" for d in hlc)
    assert first.ctx.paused == PausedSession(
        first.session_id, ISO2, "ExternalPayment", "AC_three_phase_core"
    )
    second = make_ev(ctx=first.ctx)
    second.sap()
    second.session_id = first.session_id
    resumed = second.send(iso2_req.session_setup())
    assert resumed.code == "OK_OldSessionJoined"
    assert resumed.header.session_id == first.session_id
    assert [m.data.get("action") for m in resumed.bus if m.name == "hlc_charging"] == [
        "resume",
        "resume",
    ]
    offered = second.send(iso2_req.service_discovery()).body.payment_option_list.payment_option
    assert offered == [iso2.PaymentOption.ExternalPayment]
    assert second.ctx.paused is None  # offered once


def test_an_unknown_session_id_at_setup_gets_a_new_session(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    ev.sap()
    ev.session_id = bytes(range(1, 9))
    setup = ev.send(iso2_req.session_setup())
    assert setup.code == "OK_NewSessionEstablished"
    assert setup.header.session_id not in (bytes(range(1, 9)), bytes(8))


def test_the_sequence_timeout_ends_a_silent_session(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = charging(make_ev, iso2_req)
    ev.send(iso2_req.charging_status())
    assert ev.session.next_deadline() == ev.now + 60.0
    ev.tick(59.9)
    assert ev.ended is None
    ev.tick(0.1)
    assert ev.ended.outcome is Outcome.FAILED
    assert "V2G_SECC_Sequence_Timeout" in ev.ended.reason


def test_the_communication_setup_timeout_covers_sap_and_session_setup(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    silent = make_ev()
    silent.tick(20.0)
    assert "supportedAppProtocolReq" in silent.ended.reason
    slow = make_ev()
    slow.now = 19.0
    slow.sap()
    assert slow.session.next_deadline() == 20.0
    slow.tick(1.0)
    assert "SessionSetupReq" in slow.ended.reason


def test_the_cable_check_has_its_limit(make_ev: Callable[..., Any], iso2_req: Any) -> None:
    ev = make_ev(dc=True)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_dc())
    ev.send(iso2_req.cable_check())
    ev.now += 37.9
    assert ev.send(iso2_req.cable_check()).code == "OK"
    ev.now += 0.1
    late = ev.send(iso2_req.cable_check())
    assert late.code == "FAILED" and "V2G_SECC_CableCheck_Performance_Time" in late.end.reason


def test_a_cable_check_with_an_isolation_fault_fails(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev(dc=True)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_dc())
    ev.send(iso2_req.cable_check())
    ev.view.cable_check = CableCheck("finished", "fault", ev.now)
    reply = ev.send(iso2_req.cable_check())
    assert reply.code == "FAILED" and "isolation fault" in reply.end.reason


def test_a_result_from_before_the_cable_check_started_does_not_count(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev(dc=True)
    ev.view.cable_check = CableCheck("finished", "valid", -1.0)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_dc())
    assert ev.send(iso2_req.cable_check()).body.evse_processing is iso2.EVSEProcessing.Ongoing


def test_pre_charge_has_its_limit(make_ev: Callable[..., Any], iso2_req: Any) -> None:
    ev = make_ev(dc=True)
    set_up(ev, iso2_req)
    ev.send(iso2_req.authorization())
    ev.send(iso2_req.cpd_dc())
    ev.view.cable_check = CableCheck("finished", "valid", 0.0)
    ev.send(iso2_req.cable_check())
    ev.send(iso2_req.pre_charge())
    ev.now += 6.9
    assert ev.send(iso2_req.pre_charge()).code == "OK"
    ev.now += 0.1
    assert "V2G_EVCC_PreCharge_Timeout" in ev.send(iso2_req.pre_charge()).end.reason


def test_plug_and_charge_requests_are_not_accepted_yet(
    make_ev: Callable[..., Any], iso2_req: Any
) -> None:
    ev = make_ev()
    set_up(ev, iso2_req)
    details = iso2.PaymentDetailsReq(
        e_maid="DE8AAA000000001",
        contract_signature_cert_chain=iso2.CertificateChain(certificate=b"x"),
    )
    reply = ev.send(details)
    assert isinstance(reply.body, iso2.PaymentDetailsRes)
    assert reply.code == "FAILED_SequenceError"


def test_din_is_not_offered_on_an_ac_evse(make_ev: Callable[..., Any]) -> None:
    ev = make_ev(V2gProtocol.DIN_SPEC_70121)
    reply = ev.sap()
    assert reply.code == "Failed_NoNegotiation"
    assert ev.ended is not None and "no common protocol" in ev.ended.reason


def test_every_state_accepts_something_but_the_last() -> None:
    empty = [state for state, allowed in ALLOWED.items() if not allowed]
    assert empty == [S.STOPPED]
    assert set(ALLOWED) == set(S)
