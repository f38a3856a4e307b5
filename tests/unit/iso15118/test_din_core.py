"""The DIN SPEC 70121 session core, sans-IO."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charger.protocols.exi import din
from charger.protocols.iso15118.core import Outcome
from charger.protocols.iso15118.din import ALLOWED, S, din_evse_id
from charger.protocols.iso15118.evse import Authorization, CableCheck
from charger.protocols.iso15118.sap import V2gProtocol

DIN = V2gProtocol.DIN_SPEC_70121


def through_parameters(ev: Any, req: Any) -> None:
    assert ev.sap().code == "OK_SuccessfulNegotiation"
    assert ev.send(req.session_setup()).code == "OK_NewSessionEstablished"
    assert ev.send(req.service_discovery()).code == "OK"
    assert ev.send(req.payment()).code == "OK"
    assert ev.send(req.authorization()).code == "OK"
    assert ev.send(req.cpd()).code == "OK"


def test_a_dc_session(make_ev: Callable[..., Any], din_req: Any) -> None:
    ev = make_ev(DIN, dc=True)
    ev.sap()
    setup = ev.send(din_req.session_setup())
    assert setup.body.evseid == b"\x00"  # an eMI3 ID is no DIN SPEC 91286 ID
    discovery = ev.send(din_req.service_discovery()).body
    assert (
        discovery.charge_service.energy_transfer_type is din.EVSESupportedEnergyTransfer.DC_extended
    )
    ev.send(din_req.payment())
    assert ev.send(din_req.authorization()).body.evse_processing is din.EVSEProcessing.Finished
    cpd = ev.send(din_req.cpd())
    assert cpd.body.evse_processing is din.EVSEProcessing.Finished
    (tuple_,) = cpd.body.sa_schedules.sa_schedule_tuple
    assert tuple_.p_max_schedule.p_max_schedule_entry[0].p_max == 32767  # 50 kW, a short
    assert cpd.send.ev_state == "C"
    assert ev.send(din_req.cable_check()).body.evse_processing is din.EVSEProcessing.Ongoing
    ev.view.cable_check = CableCheck("finished", "no_imd", ev.now)
    checked = ev.send(din_req.cable_check()).body
    assert checked.evse_processing is din.EVSEProcessing.Finished
    assert checked.dc_evse_status.evse_isolation_status is din.IsolationLevel.Valid
    pre = ev.send(din_req.pre_charge(380, 1))
    assert [m.data["dc"] for m in pre.bus if m.name == "power_electronics_setpoint"] == [
        {"voltage": 380.0, "charge_current": 1.0}
    ]
    assert ev.send(din_req.power_delivery(True)).code == "OK"
    for soc in (30, 31):
        demand = ev.send(din_req.current_demand(soc=soc))
        assert demand.code == "OK"
        assert demand.body.dc_evse_status.evse_notification is din.EVSENotification.None_
    stop = ev.send(din_req.power_delivery(False))
    assert stop.send.ev_state == "B"
    assert ev.send(din_req.welding()).code == "OK"
    end = ev.send(din_req.session_stop())
    assert end.code == "OK" and end.end.outcome is Outcome.COMPLETED


def test_din_contract_authentication_waits_for_the_driver(
    make_ev: Callable[..., Any], din_req: Any
) -> None:
    ev = make_ev(DIN, dc=True, authorization=Authorization.PENDING)
    ev.sap()
    ev.send(din_req.session_setup())
    ev.send(din_req.service_discovery())
    ev.send(din_req.payment())
    assert ev.send(din_req.authorization()).body.evse_processing is din.EVSEProcessing.Ongoing
    ev.view.authorization = Authorization.ACCEPTED
    assert ev.send(din_req.authorization()).body.evse_processing is din.EVSEProcessing.Finished


def test_din_sequence_error_and_unknown_session(make_ev: Callable[..., Any], din_req: Any) -> None:
    ev = make_ev(DIN, dc=True)
    ev.sap()
    ev.send(din_req.session_setup())
    out_of_order = ev.send(din_req.current_demand())
    assert isinstance(out_of_order.body, din.CurrentDemandRes)
    assert out_of_order.code == "FAILED_SequenceError"
    ev = make_ev(DIN, dc=True)
    ev.sap()
    ev.send(din_req.session_setup())
    assert ev.send(din_req.service_discovery(), session_id=b"\x01" * 7 + b"\x02").code == (
        "FAILED_UnknownSession"
    )


def test_din_remote_stop_is_told_in_current_demand(
    make_ev: Callable[..., Any], din_req: Any
) -> None:
    ev = make_ev(DIN, dc=True)
    through_parameters(ev, din_req)
    ev.view.cable_check = CableCheck("finished", "valid", ev.now)
    ev.send(din_req.cable_check())
    ev.send(din_req.pre_charge())
    ev.send(din_req.power_delivery(True))
    ev.view.stop_reason = "remote stop (CSMS)"
    status = ev.send(din_req.current_demand()).body.dc_evse_status
    assert status.evse_notification is din.EVSENotification.StopCharging


def test_din_allowed_table_covers_every_state() -> None:
    assert set(ALLOWED) == set(S)
    assert [s for s, allowed in ALLOWED.items() if not allowed] == [S.FINISHED]
    # energy flows from PowerDelivery(ready) to PowerDelivery(not ready): no SessionStop
    for state in (S.CABLE_CHECK, S.CABLE_CHECKED, S.PRECHARGE, S.CHARGING):
        assert din.SessionStop not in ALLOWED[state]


def test_din_evse_id_is_packed_in_nibbles() -> None:
    assert din_evse_id("49*89*6360") == bytes.fromhex("49A89A6360")
    assert din_evse_id("4*1") == bytes.fromhex("04A1")
    assert din_evse_id("DE*ABC*E0001") == b"\x00"
