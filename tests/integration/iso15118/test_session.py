"""A V2G session over real sockets: SDP, V2GTP over TCP, the session core, and the
bus between the SECC and the CS controller with the simulated board behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from charger.bus import messages
from charger.bus.messages import Topic
from charger.protocols import exi
from charger.protocols.exi import iso2
from charger.protocols.iso15118 import v2gtp
from charger.protocols.iso15118.core import Outcome


async def test_an_ac_session_and_the_bus_sequence(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await rig.ev()
    await charge(ev, req)
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status" and m.type == "update" and m.data["status"] == "closed"
        )
    )
    status = await ev.request(req.charging_status())
    assert status.response_code is iso2.ResponseCode.OK
    assert status.ac_evse_status.evse_notification is iso2.EVSENotification.None_
    assert (await ev.request(req.power_delivery("Stop"))).response_code is iso2.ResponseCode.OK
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status" and m.type == "update" and m.data["status"] == "opened"
        )
    )
    assert (await ev.request(req.session_stop())).response_code is iso2.ResponseCode.OK
    await ev.close()
    end = await rig.end()
    assert end.outcome is Outcome.COMPLETED
    states = [
        m.data["session_status"]
        for m in rig.messages
        if m.name == "iso15118_state_info" and m.topic == Topic.JOSEV_CS
    ]
    assert states == [
        "SupportedAppProtocol",
        "SessionSetup",
        "ServiceDiscovery",
        "ServiceSelection",
        "Authorization",
        "ChargeParameterDiscovery",
        "PowerDelivery",
        "ChargingLoop",
        "PowerDelivery",
        "SessionStop",
        "Idle",
    ]
    hlc = [
        m.data["status"]
        for m in rig.messages
        if m.name == "hlc_charging" and m.topic == Topic.JOSEV_CS
    ]
    assert hlc == [True, False]
    assert "cp_pwm.request" in rig.names() and "cs_contactor_status.request" in rig.names()
    # SDP, the session and the close happened on a serving SECC: the next car is served
    await rig.unplug()
    rig.sim.plug_in()
    second = await rig.ev()
    await charge(second, req)
    await second.close()


async def test_split_and_merged_tcp_segments(start_secc: Callable[..., Any], req: Any) -> None:
    rig = await start_secc()
    ev = await rig.ev()
    await ev.sap()
    setup = ev.encode(req.session_setup())
    framed = v2gtp.encode(0x8001, setup)
    for i in range(len(framed)):  # one byte per segment
        await ev.write(framed[i : i + 1])
        await asyncio.sleep(0.002)  # spaces the segments out; nothing timed is asserted
    frame = await ev.frame()
    assert frame is not None
    ev.session_id = exi.decode(exi.Schema.ISO2, frame.payload).header.session_id
    # two requests in one segment: both answered, in order
    both = v2gtp.encode(0x8001, ev.encode(req.service_discovery())) + v2gtp.encode(
        0x8001, ev.encode(req.payment())
    )
    await ev.write(both)
    first, second = await ev.frame(), await ev.frame()
    assert first is not None and second is not None
    bodies = [exi.decode(exi.Schema.ISO2, f.payload).body.body_element for f in (first, second)]
    assert [type(b).__name__ for b in bodies] == [
        "ServiceDiscoveryRes",
        "PaymentServiceSelectionRes",
    ]
    await ev.close()


async def test_a_remote_stop_reaches_the_ev(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await rig.ev()
    await charge(ev, req)
    stop = messages.STOP_CHARGING_REQUEST.make(
        {"evse_id": rig.service.evse_id}, Topic.OCPP_ISO15118
    )
    reply = await rig.station.bus.request(stop)
    assert reply.data["status"] == "accepted" and reply.topic == Topic.ISO15118_OCPP
    status = await ev.request(req.charging_status())
    assert status.ac_evse_status.evse_notification is iso2.EVSENotification.StopCharging
    assert (await ev.request(req.power_delivery("Stop"))).response_code is iso2.ResponseCode.OK
    assert (await ev.request(req.session_stop())).response_code is iso2.ResponseCode.OK
    await ev.close()
    assert (await rig.end()).outcome is Outcome.COMPLETED


async def test_a_paused_session_resumes_on_a_new_connection(
    start_secc: Callable[..., Any], req: Any, charge: Callable[..., Any]
) -> None:
    rig = await start_secc()
    ev = await rig.ev()
    await charge(ev, req)
    await ev.request(req.power_delivery("Stop"))
    await ev.request(req.session_stop("Pause"))
    await ev.close()
    assert (await rig.end()).outcome is Outcome.PAUSED
    again = await rig.ev()
    await again.sap()
    again.session_id = ev.session_id
    resumed = await again.request(req.session_setup())
    assert resumed.response_code is iso2.ResponseCode.OK_OldSessionJoined
    assert again.session_id == ev.session_id
    hlc = [m.data for m in rig.messages if m.name == "hlc_charging" and m.topic == Topic.JOSEV_CS]
    assert hlc[-2:] == [
        {"evse_id": rig.service.evse_id, "status": True, "action": "pause"},
        {"evse_id": rig.service.evse_id, "status": True, "action": "resume"},
    ]
    await again.close()
