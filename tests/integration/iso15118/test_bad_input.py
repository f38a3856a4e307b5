"""Bad input on the wire: each gets the standard's response code or a clean close, the
power path opens through the CS controller, and the SECC serves the next car."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from charger.protocols import exi
from charger.protocols.exi import iso2
from charger.protocols.iso15118 import v2gtp
from charger.protocols.iso15118.core import Outcome


async def power_path_opened(rig: Any, after: int) -> None:
    """The SECC put the CP into state F and the CS reported the contactor open."""
    await rig.wait_for(
        lambda m: m.name == "cp_pwm" and m.type == "request" and m.data["fault_state"], after
    )
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status"
            and m.type == "response"
            and m.data["status"] == "opened"
        ),
        after,
    )
    assert not rig.sim.contactor_closed


async def next_car_is_served(rig: Any, req: Any, charge: Callable[..., Any]) -> None:
    """After T_step_EF the CP is back at 5 % and a new session charges."""
    await rig.wait_for(
        lambda m: (
            m.name == "cp_pwm"
            and m.type == "request"
            and m.data["hlc"]
            and not m.data["fault_state"]
        ),
        after=len(rig.messages) - 50 if len(rig.messages) > 50 else 0,
    )
    ev = await rig.ev()
    await charge(ev, req)
    status = await ev.request(req.charging_status())
    assert status.response_code is iso2.ResponseCode.OK
    await ev.close()


async def charging(rig: Any, req: Any, charge: Callable[..., Any]) -> Any:
    ev = await rig.ev()
    await charge(ev, req)
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status" and m.type == "update" and m.data["status"] == "closed"
        )
    )
    return ev


def valid_charging_status(ev: Any, req: Any) -> bytes:
    return ev.encode(req.charging_status())


def flip(data: bytes, seed: int) -> bytes:
    rnd = random.Random(seed)
    out = bytearray(data)
    for _ in range(3):
        i = rnd.randrange(len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: os.urandom(40), id="random"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(
            lambda data: flip(data, 7) if flip(data, 7) != data else b"\x00", id="bit-flipped"
        ),
    ],
)
async def test_damaged_exi_while_charging(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any], damage: Any
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    mark = len(rig.messages)
    payload = damage(valid_charging_status(ev, req))
    try:
        decoded = exi.decode(exi.Schema.ISO2, payload)
    except exi.ExiError:
        decoded = None
    if decoded is not None and decoded == exi.decode(
        exi.Schema.ISO2, valid_charging_status(ev, req)
    ):
        pytest.skip("the damage left the message intact")
    await ev.send(payload)
    frame = await ev.frame()
    if frame is not None:  # a FAILED response of the expected request, or a clean close
        body = exi.decode(exi.Schema.ISO2, frame.payload).body.body_element
        assert str(body.response_code).startswith("FAILED")
    assert await ev.closed_by_secc()
    end = await rig.end()
    assert end.outcome is Outcome.FAILED
    await power_path_opened(rig, mark)
    await next_car_is_served(rig, req, charge)


async def test_undecodable_exi_gets_the_failed_response_of_the_expected_request(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    await ev.send(b"\x80\x98\x02\x10\xff\xff\xff\xff")
    frame = await ev.frame()
    assert frame is not None
    body = exi.decode(exi.Schema.ISO2, frame.payload).body.body_element
    assert isinstance(body, iso2.ChargingStatusRes)
    assert body.response_code is iso2.ResponseCode.FAILED
    assert await ev.closed_by_secc()
    assert "undecodable EXI" in (await rig.end()).reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x02\xfd\x80\x01\x00\x00\x00\x04", "protocol version"),
        (b"\x01\xfe\x90\x00\x00\x00\x00\x02", "payload type 0x9000"),
        (b"\x01\xfe\x80\x01\x00\x10\x00\x00", "exceeds the maximum of 8192 bytes"),
    ],
)
async def test_a_wrong_v2gtp_header_closes_the_connection(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any], header: bytes, reason: str
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    mark = len(rig.messages)
    await ev.write(header + b"\x00" * 4)
    assert await ev.frame() is None  # closed without an answer
    end = await rig.end()
    assert end.outcome is Outcome.FAILED and reason in end.reason
    await power_path_opened(rig, mark)
    await next_car_is_served(rig, req, charge)


async def test_a_message_out_of_sequence(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    mark = len(rig.messages)
    reply = await ev.request(req.cpd())
    assert isinstance(reply, iso2.ChargeParameterDiscoveryRes)
    assert reply.response_code is iso2.ResponseCode.FAILED_SequenceError
    assert await ev.closed_by_secc()
    await power_path_opened(rig, mark)
    await next_car_is_served(rig, req, charge)


async def test_a_wrong_session_id(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    mark = len(rig.messages)
    reply = await ev.request(req.charging_status(), session_id=bytes(range(8)))
    assert reply.response_code is iso2.ResponseCode.FAILED_UnknownSession
    assert await ev.closed_by_secc()
    await power_path_opened(rig, mark)
    await next_car_is_served(rig, req, charge)


async def test_a_car_that_stops_answering_mid_charge(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()  # V2G_SECC_Sequence_Timeout shortened to 1 s
    ev = await charging(rig, req, charge)
    mark = len(rig.messages)
    assert await ev.closed_by_secc(timeout_s=5.0)  # silence: the SECC gives up
    end = await rig.end()
    assert "V2G_SECC_Sequence_Timeout" in end.reason
    await power_path_opened(rig, mark)
    await next_car_is_served(rig, req, charge)


async def test_a_connection_the_ev_never_closes(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    await ev.request(req.power_delivery("Stop"))
    assert (await ev.request(req.session_stop())).response_code is iso2.ResponseCode.OK
    # the EV keeps the connection open: the SECC closes it after its linger time
    assert await ev.closed_by_secc(timeout_s=5.0)
    assert (await rig.end()).outcome is Outcome.COMPLETED
    await rig.unplug()
    rig.sim.plug_in()
    again = await rig.ev()
    await charge(again, req)
    await again.close()


async def test_a_second_connection_while_a_session_runs(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    intruder = await rig.ev()
    assert await intruder.closed_by_secc()  # refused at once
    status = await ev.request(req.charging_status())  # the session goes on
    assert status.response_code is iso2.ResponseCode.OK
    assert rig.sim.contactor_closed
    await ev.close()


async def test_an_unplugged_car_ends_its_session(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await charging(rig, req, charge)
    rig.sim.unplug()
    assert await ev.closed_by_secc()
    end = await rig.end()
    assert end.outcome is Outcome.FAILED and "unplugged" in end.reason
    assert not rig.sim.contactor_closed


async def test_garbage_before_the_app_protocol_handshake(start_secc: Callable[..., Any]) -> None:
    rig = await start_secc()
    ev = await rig.ev()
    await ev.write(v2gtp.encode(0x8001, os.urandom(30)))
    assert await ev.frame() is None
    assert "supportedAppProtocolReq" in (await rig.end()).reason
