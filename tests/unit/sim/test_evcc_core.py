"""The simulated car's EVCC cores (sans-IO) against our SECC's session cores, in memory:
whole sessions of ISO 15118-2 AC and DC and DIN SPEC 70121, the car's stop, pause and
resume, its timers, its reading of bad responses, and each misbehaviour with the SECC's
answer to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from charger.protocols import exi
from charger.protocols.exi import app_protocol as ap
from charger.protocols.exi import din, iso2
from charger.protocols.iso15118.core import Outcome, Timers
from charger.protocols.iso15118.evse import Authorization
from charger.protocols.iso15118.sap import V2gProtocol
from charger.sim.evcc import core
from charger.sim.evcc.battery import Battery
from charger.sim.evcc.core import Draw, EvccSettings, EvPower, Pilot
from charger.sim.evcc.iso2 import Iso2Evcc
from charger.sim.evcc.standalone import ModelCar

ISO2 = V2gProtocol.ISO_15118_2
DIN = V2gProtocol.DIN_SPEC_70121
B2B = Callable[..., Any]


def value(pv: Any) -> float:
    return float(pv.value * 10**pv.multiplier)


def collapse(requests: list[str]) -> list[str]:
    """Repeated requests once, with a star: CableCheckReq, CableCheckReq -> CableCheckReq*."""
    out: list[str] = []
    for name in requests:
        if out and out[-1].rstrip("*") == name:
            out[-1] = name + "*"
        else:
            out.append(name)
    return out


def test_an_iso2_ac_session_charges_to_the_target_and_stops(back_to_back: B2B) -> None:
    b2b = back_to_back(soc=40.0, capacity_wh=2000.0, target_soc_percent=41.0)
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED
    assert ended.reason == "target state of charge 41 % reached"
    assert collapse(b2b.requests) == [
        "SupportedAppProtocolReq",
        "SessionSetupReq",
        "ServiceDiscoveryReq",
        "PaymentServiceSelectionReq",
        "AuthorizationReq",
        "ChargeParameterDiscoveryReq",
        "PowerDeliveryReq",
        "ChargingStatusReq*",
        "PowerDeliveryReq",
        "SessionStopReq",
    ]
    assert all(not code.startswith(("FAILED", "Failed")) for _, code in b2b.responses)
    assert b2b.car.soc_percent >= 41.0
    # the car closes S2 and draws its 16 A (within the EVSE's 32 A) after PowerDelivery
    # start, stops drawing and opens S2 after PowerDelivery stop
    assert b2b.car_actions == [Pilot("C"), Draw(16.0, 230.0), Draw(0.0, 230.0), Pilot("B"), ended]
    assert [e.outcome for e in b2b.secc_ends] == [Outcome.COMPLETED]
    start = b2b.sent_body("PowerDeliveryReq")
    assert start.charge_progress is iso2.ChargeProgress.Start
    (entry,) = start.charging_profile.profile_entry
    assert value(entry.charging_profile_entry_max_power) == 16 * 230 * 3
    assert b2b.sent_body("PowerDeliveryReq", 1).charge_progress is iso2.ChargeProgress.Stop
    assert b2b.sent_body("SessionStopReq").charging_session is iso2.ChargingSession.Terminate


def test_an_iso2_dc_session_with_cable_check_pre_charge_and_welding_detection(
    back_to_back: B2B,
) -> None:
    b2b = back_to_back(dc=True, soc=40.0, capacity_wh=2000.0, target_soc_percent=42.0)
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED, ended
    assert collapse(b2b.requests) == [
        "SupportedAppProtocolReq",
        "SessionSetupReq",
        "ServiceDiscoveryReq",
        "PaymentServiceSelectionReq",
        "AuthorizationReq",
        "ChargeParameterDiscoveryReq",
        "CableCheckReq*",  # Ongoing until the CS has the result
        "PreChargeReq*",  # until the output is at the battery's voltage
        "PowerDeliveryReq",
        "CurrentDemandReq*",
        "PowerDeliveryReq",
        "WeldingDetectionReq",
        "SessionStopReq",
    ]
    assert b2b.car.soc_percent >= 42.0
    pilots_and_power = [a for a in b2b.car_actions if isinstance(a, Pilot | EvPower)]
    assert pilots_and_power == [Pilot("C"), EvPower(True), EvPower(False), Pilot("B")]
    # pre-charge aims at the battery's voltage (40 % of 400 V nominal: 392 V) at <= 2 A
    precharge = next(m for m in b2b.bus if m.name == "power_electronics_setpoint")
    assert precharge.data["is_precharge"] is True
    assert precharge.data["dc"] == {"voltage": 392.0, "charge_current": 2.0}
    cpd = b2b.sent_body("ChargeParameterDiscoveryReq")
    parameter = cpd.ev_charge_parameter
    assert cpd.requested_energy_transfer_mode is iso2.EnergyTransferMode.DC_extended
    assert value(parameter.ev_maximum_voltage_limit) == 450.0
    assert value(parameter.ev_maximum_current_limit) == 200.0
    assert parameter.bulk_soc == 42 and parameter.full_soc == 100
    assert value(parameter.ev_energy_request) == 40.0  # 2 % of 2000 Wh
    # CurrentDemand: the car's maximum voltage within the EVSE's 500 V, its current
    # within the EVSE's 125 A and 50 kW: 50000 / 450 = 111.1 A
    demand = b2b.sent_body("CurrentDemandReq")
    assert value(demand.ev_target_voltage) == 450.0
    assert value(demand.ev_target_current) == pytest.approx(111.1, abs=0.05)
    assert demand.remaining_time_to_full_soc is None  # nothing flowed yet
    later = b2b.sent_body("CurrentDemandReq", 2)
    assert value(later.remaining_time_to_bulk_soc) > 0


def test_a_din_dc_session(back_to_back: B2B) -> None:
    b2b = back_to_back(DIN, dc=True, soc=40.0, capacity_wh=2000.0, target_soc_percent=42.0)
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED, ended
    assert collapse(b2b.requests) == [
        "SupportedAppProtocolReq",
        "SessionSetupReq",
        "ServiceDiscoveryReq",
        "ServicePaymentSelectionReq",
        "ContractAuthenticationReq",
        "ChargeParameterDiscoveryReq",
        "CableCheckReq*",  # Ongoing until the CS has the result
        "PreChargeReq*",  # until the output is at the battery's voltage
        "PowerDeliveryReq",
        "CurrentDemandReq*",
        "PowerDeliveryReq",
        "WeldingDetectionReq",
        "SessionStop",
    ]
    assert b2b.sent_body("PowerDeliveryReq").ready_to_charge_state is True
    stop = b2b.sent_body("PowerDeliveryReq", 1)
    assert stop.ready_to_charge_state is False
    assert stop.ev_power_delivery_parameter.charging_complete is True
    assert isinstance(b2b.sent_body("SessionStop"), din.SessionStop)
    assert b2b.evcc.evse.evse_id == "0"  # an eMI3 ID cannot be packed: DIN sends 00


def test_the_driver_pauses_and_resumes_with_the_session_id(back_to_back: B2B) -> None:
    def pause_at_third(b2b: Any) -> None:
        if b2b.evcc.loops == 3:
            b2b.car.paused = True

    first = back_to_back(soc=40.0, charge_loops=0)
    first.on_loop = pause_at_third
    paused = first.run()
    assert paused.outcome is Outcome.PAUSED
    assert paused.reason == "the driver paused charging"
    assert first.sent_body("SessionStopReq").charging_session is iso2.ChargingSession.Pause
    assert [e.outcome for e in first.secc_ends] == [Outcome.PAUSED]
    assert first.car_actions[-3:] == [Draw(0.0, 230.0), Pilot("B"), paused]
    first.car.paused = False
    second = back_to_back(after=first, session_id=paused.session_id, charge_loops=2)
    ended = second.run()
    assert second.responses[1] == ("SessionSetupRes", "OK_OldSessionJoined")
    assert second.evcc.joined and second.evcc.session_id == paused.session_id
    assert ended.outcome is Outcome.COMPLETED
    assert "PowerDeliveryReq" in second.requests and "ChargingStatusReq" in second.requests


def test_din_has_no_pause(back_to_back: B2B) -> None:
    b2b = back_to_back(DIN, dc=True, charge_loops=4)
    b2b.car.paused = True
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED
    assert ended.reason == "4 charging-loop messages"


def test_the_driver_stops(back_to_back: B2B) -> None:
    def stop(b2b: Any) -> None:
        b2b.car.wants_charge = False

    b2b = back_to_back(dc=True)
    b2b.on_loop = stop
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED
    assert ended.reason == "the driver stopped charging"
    assert b2b.requests.count("CurrentDemandReq") == 2  # it stops at the next response


@pytest.mark.parametrize(("protocol", "dc"), [(ISO2, False), (ISO2, True), (DIN, True)])
def test_the_evse_says_stop_charging(back_to_back: B2B, protocol: V2gProtocol, dc: bool) -> None:
    def remote_stop(b2b: Any) -> None:
        if b2b.evcc.loops == 2:
            b2b.view.stop_reason = "remote stop (CSMS)"

    b2b = back_to_back(protocol, dc=dc)
    b2b.on_loop = remote_stop
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED
    assert ended.reason == "the EVSE asked to stop (EVSENotification StopCharging)"
    assert b2b.evcc.loops == 3  # the response to the third told StopCharging
    assert [e.outcome for e in b2b.secc_ends] == [Outcome.COMPLETED]


def test_departure_time_and_energy_request(back_to_back: B2B) -> None:
    b2b = back_to_back(
        soc=50.0,
        capacity_wh=40000.0,
        target_soc_percent=80.0,
        departure_time_s=7200,
        charge_loops=1,
    )
    b2b.run()
    parameter = b2b.sent_body("ChargeParameterDiscoveryReq").ev_charge_parameter
    assert parameter.departure_time == 7200
    assert value(parameter.e_amount) == 12000.0
    assert value(parameter.ev_max_current) == 16.0
    assert value(parameter.ev_max_voltage) == 400.0


def test_a_single_phase_car_asks_for_single_phase_where_offered(back_to_back: B2B) -> None:
    b2b = back_to_back(ac_phases=1, charge_loops=1)  # the EVSE offers three phases only
    b2b.run()
    cpd = b2b.sent_body("ChargeParameterDiscoveryReq")
    assert cpd.requested_energy_transfer_mode is iso2.EnergyTransferMode.AC_three_phase_core


# ------------------------------------------------------------------ the car's timers


def test_no_response_within_the_message_timeout(back_to_back: B2B) -> None:
    def silence(b2b: Any) -> None:
        b2b.drop_responses = True

    b2b = back_to_back(dc=True)
    b2b.on_loop = silence
    sent_at = None

    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert ended.reason == "no response to CurrentDemandReq within 0.25 s (V2G_EVCC_Msg_Timeout)"
    assert b2b.car_actions[-3:] == [EvPower(False), Pilot("B"), ended]
    del sent_at


def test_authorization_ongoing_too_long(back_to_back: B2B) -> None:
    b2b = back_to_back(secc_timers=Timers(ongoing_s=600.0))
    b2b.view.authorization = Authorization.NONE  # the driver never shows a card
    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert ended.reason == "authorization still Ongoing after 60 s (V2G_EVCC_Ongoing_Timeout)"
    assert 60.0 <= b2b.now < 61.0


def test_pre_charge_never_reaching_the_battery(back_to_back: B2B) -> None:
    b2b = back_to_back(dc=True, secc_timers=Timers(precharge_s=600.0))
    b2b.output_follows = False  # the EVSE's output stays at 0 V
    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert "V2G_EVCC_PreCharge_Timeout" in ended.reason
    assert "the EVSE at 0 V, the battery at 392 V" in ended.reason
    assert not b2b.actions_of(EvPower)  # the car never closed its contactor


def test_pre_charge_by_cycles_for_a_peer_without_a_power_path(back_to_back: B2B) -> None:
    b2b = back_to_back(dc=True, precharge_cycles=3, charge_loops=1)
    b2b.output_follows = False
    ended = b2b.run()
    assert ended.outcome is Outcome.COMPLETED
    assert b2b.requests.count("PreChargeReq") == 3


def test_a_failed_response_ends_the_session(back_to_back: B2B) -> None:
    b2b = back_to_back()
    b2b.view.contactor = "error"  # the SECC refuses PowerDelivery: FAILED_ContactorError
    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert ended.code == "FAILED_ContactorError"
    assert ended.reason == "PowerDeliveryRes FAILED_ContactorError (to PowerDeliveryReq)"
    assert b2b.car_actions == [ended]  # S2 never closed, nothing drawn


def test_no_common_protocol(back_to_back: B2B) -> None:
    b2b = back_to_back(DIN, dc=True)
    b2b.secc.ctx.setup = type(b2b.secc.ctx.setup)("DE*TST*E0001", "veth", ac_phases=3, dc=False)
    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert ended.code == "Failed_NoNegotiation"


def test_the_evse_does_not_offer_what_the_car_wants(back_to_back: B2B) -> None:
    b2b = back_to_back(dc=False)
    b2b.secc.ctx.setup = type(b2b.secc.ctx.setup)("DE*TST*E0001", "veth", ac_phases=0, dc=True)
    ended = b2b.run()
    assert ended.outcome is Outcome.FAILED
    assert ended.reason == "the EVSE offers no AC charging (DC_extended)"


def _evcc() -> Iso2Evcc:
    car = ModelCar(Battery(60000.0, 40.0), EvccSettings(), lambda: 0.0)
    return Iso2Evcc(EvccSettings(), car)


def test_a_response_of_the_wrong_type() -> None:
    evcc = _evcc()
    evcc.start(0.0)
    offer = ap.AppProtocol(
        protocol_namespace="urn:iso:15118:2:2013:MsgDef",
        version_number_major=2,
        version_number_minor=0,
        schema_id=1,
        priority=1,
    )
    evcc.receive(0.01, exi.encode(ap.SupportedAppProtocolReq(app_protocol=[offer])))
    assert evcc.ended is not None and evcc.ended.outcome is Outcome.FAILED
    assert evcc.ended.reason == (
        "SupportedAppProtocolReq in answer to SupportedAppProtocolReq, "
        "expected SupportedAppProtocolRes"
    )


def test_an_undecodable_response() -> None:
    evcc = _evcc()
    evcc.start(0.0)
    evcc.receive(0.01, b"\x80\xff\xff")
    assert evcc.ended is not None
    assert evcc.ended.reason.startswith("undecodable response to SupportedAppProtocolReq (")


def test_a_response_for_another_session() -> None:
    evcc = _evcc()
    evcc.start(0.0)
    ok = ap.SupportedAppProtocolRes(
        response_code=ap.ResponseCode.OK_SuccessfulNegotiation, schema_id=1
    )
    evcc.receive(0.01, exi.encode(ok))

    def message(session_id: bytes, body: object) -> bytes:
        header = iso2.MessageHeader(session_id=session_id)
        return exi.encode(iso2.V2G_Message(header=header, body=iso2.Body(body_element=body)))

    setup = iso2.SessionSetupRes(
        response_code=iso2.ResponseCode.OK_NewSessionEstablished, evseid="DE*TST*E0001"
    )
    evcc.receive(0.02, message(bytes(range(1, 9)), setup))
    assert evcc.session_id == bytes(range(1, 9))
    discovery = iso2.ServiceDiscoveryRes(
        response_code=iso2.ResponseCode.OK,
        payment_option_list=iso2.PaymentOptionList(
            payment_option=[iso2.PaymentOption.ExternalPayment]
        ),
        charge_service=iso2.ChargeService(
            service_id=1,
            service_category=iso2.ServiceCategory.EVCharging,
            free_service=False,
            supported_energy_transfer_mode=iso2.SupportedEnergyTransferMode(
                energy_transfer_mode=[iso2.EnergyTransferMode.AC_three_phase_core]
            ),
        ),
    )
    evcc.receive(0.03, message(bytes(8), discovery))
    assert evcc.ended is not None
    assert evcc.ended.reason == (
        "ServiceDiscoveryRes with session ID 0000000000000000, expected 0102030405060708"
    )


# ------------------------------------------------------------------ misbehaviour

CASES = [(ISO2, False), (ISO2, True), (DIN, True)]


@pytest.mark.parametrize(("protocol", "dc"), CASES)
def test_wrong_sequence_gets_a_sequence_error(
    back_to_back: B2B, protocol: V2gProtocol, dc: bool
) -> None:
    b2b = back_to_back(protocol, dc=dc, misbehave=("wrong_sequence",))
    ended = b2b.run()
    loop = "CurrentDemandReq" if dc else "ChargingStatusReq"
    assert b2b.requests[-3:] == [loop, loop, "ServiceDiscoveryReq"]  # at the 3rd loop request
    assert b2b.responses[-1] == ("ServiceDiscoveryRes", "FAILED_SequenceError")
    assert ended.outcome is Outcome.FAILED and ended.code == "FAILED_SequenceError"
    (secc_end,) = b2b.secc_ends
    assert secc_end.outcome is Outcome.FAILED
    assert secc_end.reason.startswith("FAILED_SequenceError: ServiceDiscoveryReq is not allowed")
    # the car stops taking energy
    stop = [EvPower(False), Pilot("B")] if dc else [Draw(0.0, 230.0), Pilot("B")]
    assert b2b.car_actions[-3:] == [*stop, ended]


@pytest.mark.parametrize(("protocol", "dc"), CASES)
def test_bad_exi_gets_failed(back_to_back: B2B, protocol: V2gProtocol, dc: bool) -> None:
    b2b = back_to_back(protocol, dc=dc, misbehave=("bad_exi",))
    ended = b2b.run()
    loop = "CurrentDemandReq" if dc else "ChargingStatusReq"
    assert b2b.requests.count(loop) == 3
    assert b2b.responses[-1] == (loop[:-3] + "Res", "FAILED")
    assert ended.outcome is Outcome.FAILED and ended.code == "FAILED"
    (secc_end,) = b2b.secc_ends
    assert secc_end.reason.startswith("FAILED: undecodable EXI (")


@pytest.mark.parametrize(("protocol", "dc"), CASES)
def test_late_is_closed_after_the_secc_sequence_timeout(
    back_to_back: B2B, protocol: V2gProtocol, dc: bool
) -> None:
    b2b = back_to_back(protocol, dc=dc, misbehave=("late",))
    ended = b2b.run()
    loop = "CurrentDemandReq" if dc else "ChargingStatusReq"
    assert b2b.requests.count(loop) == 2  # the third never went out
    (secc_end,) = b2b.secc_ends
    assert secc_end.outcome is Outcome.FAILED
    assert secc_end.reason == "no request within 60 s (V2G_SECC_Sequence_Timeout)"
    assert ended.outcome is Outcome.FAILED
    assert ended.reason == "the SECC closed the connection"
    assert b2b.actions_of(EvPower)[-1:] == ([EvPower(False)] if dc else [])


@pytest.mark.parametrize(
    "request_name", ["ChargingStatusReq", "CurrentDemandReq", "SessionStopReq"]
)
def test_damaged_exi_never_decodes(back_to_back: B2B, request_name: str) -> None:
    b2b = back_to_back(dc=request_name == "CurrentDemandReq", charge_loops=2)
    b2b.run()
    payload = next(s.payload for s in b2b.sent if s.request == request_name)
    exi.decode(exi.Schema.ISO2, payload)  # the real one does
    with pytest.raises(exi.ExiError):
        exi.decode(exi.Schema.ISO2, core.damaged(payload, exi.Schema.ISO2))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="DIN SPEC 70121 is DC only"):
        EvccSettings(protocol=DIN, dc=False)
    with pytest.raises(ValueError, match="unknown misbehaviour 'rude'"):
        EvccSettings(misbehave=("rude",))
