"""A DC session on the wire with the simulated DC station behind the CS controller, and
what ISO 15118-3 has the station do after failed sessions."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from charger.bus import messages
from charger.bus.messages import Topic
from charger.protocols.exi import iso2
from charger.protocols.iso15118 import v2gtp
from charger.protocols.iso15118.core import Outcome

DC_EVSE = 'kind = "dc"\nhlc = true'


def volts(pv: Any) -> float:
    return float(pv.value * 10**pv.multiplier)


async def until_finished(ev: Any, body: Any, attempts: int = 200) -> Any:
    for _ in range(attempts):
        reply = await ev.request(body)
        if reply.evse_processing is iso2.EVSEProcessing.Finished:
            return reply
        await asyncio.sleep(0.02)
    raise AssertionError(f"{type(body).__name__} never finished")


async def test_a_dc_session_with_the_simulated_dc_station(
    start_secc: Callable[..., Any], req: Any
) -> None:
    rig = await start_secc(evse=DC_EVSE)
    ev = await rig.ev()
    await ev.sap()
    for body in (req.session_setup(), req.service_discovery(), req.payment()):
        await ev.request(body)
    await until_finished(ev, req.authorization())
    cpd = await ev.request(req.cpd_dc())
    assert cpd.response_code is iso2.ResponseCode.OK
    assert volts(cpd.evse_charge_parameter.evse_maximum_voltage_limit) == 500
    # the CS runs the cable check (its isolation monitor) while the EV asks again
    checked = await until_finished(ev, req.cable_check())
    assert checked.dc_evse_status.evse_isolation_status is iso2.IsolationLevel.Valid
    # pre-charge: the CS's power module ramps its output to the EV's battery voltage
    battery_v = 400
    for _ in range(300):
        pre = await ev.request(req.pre_charge(battery_v))
        if abs(volts(pre.evse_present_voltage) - battery_v) < 10:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the output never reached the EV's voltage")
    assert (await ev.request(req.power_delivery_dc("Start"))).response_code is iso2.ResponseCode.OK
    for _ in range(300):
        demand = await ev.request(req.current_demand(battery_v + 10, 50))
        if volts(demand.evse_present_current) > 10:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("no current flowed")
    display = [m for m in rig.messages if m.name == "display_params"]
    assert display and display[-1].data["present_soc"] == 30
    setpoints = [m for m in rig.messages if m.name == "power_electronics_setpoint"]
    assert any(m.type == "response" and m.data["status"] == "accepted" for m in setpoints)
    assert (await ev.request(req.power_delivery_dc("Stop"))).response_code is iso2.ResponseCode.OK
    welding = await ev.request(req.welding())
    assert welding.response_code is iso2.ResponseCode.OK
    assert (await ev.request(req.session_stop())).response_code is iso2.ResponseCode.OK
    await ev.close()
    assert (await rig.end()).outcome is Outcome.COMPLETED
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status"
            and m.data.get("status") == "opened"
            and m.type == "update"
        )
    )


async def fail_a_session(rig: Any) -> None:
    ev = await rig.ev()
    await ev.write(v2gtp.encode(0x8001, os.urandom(24)))  # not a supportedAppProtocolReq
    assert await ev.closed_by_secc()
    assert (await rig.end()).outcome is Outcome.FAILED


async def test_after_the_retries_an_ac_evse_offers_basic_charging(
    start_secc: Callable[..., Any],
) -> None:
    rig = await start_secc()
    for _ in range(3):  # the first failure and C_sequ_retry (2) retries
        await fail_a_session(rig)
    basic = await rig.wait_for(
        lambda m: m.name == "cp_pwm" and m.type == "request" and not m.data["hlc"]
    )
    assert basic.data["current"] == 32.0
    # the car charges the IEC 61851-1 way: S2 closed at the nominal duty cycle
    await rig.wait_for(
        lambda m: (
            m.name == "cs_contactor_status" and m.type == "update" and m.data["status"] == "closed"
        )
    )


async def test_after_the_retries_a_dc_evse_gives_up(start_secc: Callable[..., Any]) -> None:
    rig = await start_secc(evse=DC_EVSE)
    for _ in range(3):
        await fail_a_session(rig)
    last = await rig.wait_for(
        lambda m: m.name == "cp_pwm" and m.type == "request" and not m.data["hlc"]
    )
    assert last.data["current"] == 0.0  # no basic charging on DC: the PWM stays off
    assert not rig.sim.contactor_closed


async def test_a_remote_stop_without_a_session_goes_to_the_cs(
    start_secc: Callable[..., Any],
) -> None:
    rig = await start_secc()
    stop = messages.STOP_CHARGING_REQUEST.make(
        {"evse_id": rig.service.evse_id}, Topic.OCPP_ISO15118
    )
    reply = await rig.station.bus.request(stop)
    assert reply.data == {"evse_id": rig.service.evse_id, "status": "accepted"}
    forwarded = [m for m in rig.messages if m.name == "stop_charging" and m.topic == Topic.JOSEV_CS]
    assert forwarded and forwarded[0].type == "request"
