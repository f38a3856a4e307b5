"""The Python API: building messages by hand, error messages, JSON form, backends."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from charger.app import select_exi_codec
from charger.protocols import exi
from charger.protocols.exi import iso2, iso20, iso20_dc

SESSION = bytes.fromhex("5E2735D4C6C4D499")


@pytest.fixture(params=["c", "python"], autouse=True)
def backend(request: pytest.FixtureRequest) -> Any:
    previous = exi.backend()
    yield exi.set_backend(request.param)
    exi.set_backend(previous)


def volts(value: int, multiplier: int = 0) -> iso2.PhysicalValue:
    return iso2.PhysicalValue(multiplier=multiplier, unit=iso2.UnitSymbol.V, value=value)


def current_demand_res(**changes: Any) -> iso2.V2G_Message:
    fields: dict[str, Any] = dict(
        response_code=iso2.ResponseCode.OK,
        dc_evse_status=iso2.DC_EVSEStatus(
            evse_isolation_status=iso2.IsolationLevel.Valid,
            evse_status_code=iso2.DC_EVSEStatusCode.EVSE_Ready,
            notification_max_delay=0,
            evse_notification=iso2.EVSENotification.None_,
        ),
        evse_present_voltage=volts(400),
        evse_present_current=iso2.PhysicalValue(multiplier=-1, unit=iso2.UnitSymbol.A, value=1250),
        evse_current_limit_achieved=False,
        evse_voltage_limit_achieved=False,
        evse_power_limit_achieved=False,
        evseid="DE*OWB*E0000000001",
        sa_schedule_tuple_id=1,
    )
    fields.update(changes)
    body = iso2.CurrentDemandRes(**fields)
    return iso2.V2G_Message(
        header=iso2.MessageHeader(session_id=SESSION), body=iso2.Body(body_element=body)
    )


def test_a_hand_built_message_round_trips_and_reads_like_the_xml() -> None:
    message = current_demand_res()
    data = exi.encode(message)  # schema and root element follow from the class
    assert data[0] == 0x80  # EXI header: no options, version 1
    assert exi.decode(exi.Schema.ISO2, data) == message
    as_json = exi.to_json(exi.Schema.ISO2, message)
    body = as_json["V2G_Message"]["Body"]["CurrentDemandRes"]
    assert as_json["V2G_Message"]["Header"] == {"SessionID": "5E2735D4C6C4D499"}
    assert body["EVSEPresentCurrent"] == {"Multiplier": -1, "Unit": "A", "Value": 1250}
    assert body["DC_EVSEStatus"]["EVSENotification"] == "None"
    assert exi.from_json(exi.Schema.ISO2, as_json) == message


def test_encoding_errors_name_the_field_path_and_the_problem() -> None:
    path = "V2G_Message.body.body_element"
    with pytest.raises(
        exi.ExiError, match=rf"^{path}.evse_present_voltage.multiplier: 4 is outside -3\.\.3$"
    ):
        exi.encode(current_demand_res(evse_present_voltage=volts(400, multiplier=4)))
    with pytest.raises(exi.ExiError, match=rf"^{path}.evseid: 38 characters, allowed 7\.\.37$"):
        exi.encode(current_demand_res(evseid="DE*OWB*E" + "0" * 30))
    with pytest.raises(
        exi.ExiError, match=rf"^{path}.sa_schedule_tuple_id: expected int, got str$"
    ):
        exi.encode(current_demand_res(sa_schedule_tuple_id="1"))
    with pytest.raises(exi.ExiError, match=r"response_code: 'Fine' is not"):
        exi.encode(current_demand_res(response_code="Fine"))
    missing = rf"^{path}: a required field is missing; expected sa_schedule_tuple_id$"
    with pytest.raises(exi.ExiError, match=missing):
        exi.encode(current_demand_res(sa_schedule_tuple_id=None))


def test_a_substitution_group_field_takes_any_member_class() -> None:
    wrong = current_demand_res()
    wrong.body.body_element = iso2.PhysicalValue(multiplier=0, unit=iso2.UnitSymbol.A, value=1)
    with pytest.raises(
        exi.ExiError, match="PhysicalValue cannot appear here; expected body_element"
    ):
        exi.encode(wrong)


def test_iso20_messages_carry_their_own_header() -> None:
    message = iso20_dc.DC_ChargeLoopReq(
        header=iso20.MessageHeader(session_id=SESSION, time_stamp=1_700_000_000),
        ev_present_voltage=iso20.RationalNumber(exponent=0, value=400),
        meter_info_requested=False,
        cl_req_control_mode=iso20_dc.Scheduled_DC_CLReqControlMode(
            ev_target_current=iso20.RationalNumber(exponent=0, value=100),
            ev_target_voltage=iso20.RationalNumber(exponent=0, value=420),
        ),
    )
    data = exi.encode(message)
    assert exi.decode(exi.Schema.ISO20_DC, data) == message
    assert exi.Schema.from_namespace("urn:iso:std:iso:15118:-20:DC") is exi.Schema.ISO20_DC


def test_messages_are_keyword_only_compared_by_value_and_unhashable() -> None:
    with pytest.raises(TypeError, match="missing required field 'value'"):
        iso2.PhysicalValue(multiplier=0, unit=iso2.UnitSymbol.V)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unknown fields \['volts'\]"):
        iso2.PhysicalValue(multiplier=0, unit=iso2.UnitSymbol.V, value=1, volts=2)  # type: ignore[call-arg]
    assert volts(1) == volts(1) and volts(1) != volts(2)
    assert repr(volts(1)) == "PhysicalValue(multiplier=0, unit=<UnitSymbol.V: 'V'>, value=1)"
    with pytest.raises(TypeError):
        hash(volts(1))


def test_a_backend_can_be_plugged_in_by_name() -> None:
    plugged = exi.set_backend("charger.protocols.exi._pycodec:PythonBackend")
    assert plugged.name == "python" and exi.backend() is plugged
    with pytest.raises(exi.ExiError, match="unknown EXI backend 'java'"):
        exi.set_backend("java")


def test_a_vendor_codec_that_fails_to_load_leaves_the_built_in_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        select_exi_codec("no_such_vendor.exi:Codec")
    assert exi.backend().name == "c"
    (record,) = [r for r in caplog.records if r.getMessage() == "exi_codec_unavailable"]
    assert record.kv["codec"] == "no_such_vendor.exi:Codec"
    assert "No module named 'no_such_vendor'" in record.kv["error"]
