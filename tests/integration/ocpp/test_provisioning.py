"""OCPP client against CSMSs on loopback: C01, malformed frames, pings, back-off, the
supervisor (the OCA cases run on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from typing import Any

import websockets
from ocpp.v201 import call

from charger.bus import Bus, api
from charger.protocols.ocpp.client import OcppClient
from charger.protocols.ocpp.connection import reconnect_delays
from charger.protocols.ocpp.outbox import Outbox
from rig.csms import CsmsState, ocpp_csms, raw_csms
from rig.ocpp_station import EVSE_ID, settings, station
from tests.support.ocpp_steps import authorize
from tests.support.polling import eventually


async def test_C01_authorization_through_the_csms() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        request = api.request(
            "authorization",
            "cs/josev",
            {"evse_id": EVSE_ID, "id_token": "04A1B2C3", "token_type": "ISO14443"},
        )
        reply = await st.bus.request(request, 5)
        assert reply.data == {"status": "accepted"}
        assert (await state.wait_for("Authorize")) == {
            "id_token": {"id_token": "04A1B2C3", "type": "ISO14443"}
        }
        state.authorize_status = "Invalid"
        reply = await st.bus.request(
            api.request(
                "authorization",
                "cs/josev",
                {"evse_id": EVSE_ID, "id_token": "DEAD0000", "token_type": "ISO14443"},
            ),
            5,
        )
        assert reply.data == {"status": "rejected"}
        free = await st.bus.request(
            api.request("authorization", "cs/josev", {"token_type": "no_authorization"}), 5
        )
        assert free.data == {"status": "accepted"}  # Josev API 1.6(4): no CSMS round trip
        assert state.actions().count("Authorize") == 2


async def test_a_card_presented_while_the_boot_is_answered_waits_for_the_csms() -> None:
    """Connected, the BootNotification not yet answered: the token is the CSMS's to
    decide, not the offline rules' (which refuse an unknown card by default)."""
    gate = asyncio.Event()
    state = CsmsState(interval=300, boot_gate=gate)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("BootNotification")
        pending = asyncio.create_task(authorize(st, "04A1B2C3"))
        for _ in range(50):  # in-process: the offline rules would answer within these
            await asyncio.sleep(0)
        answered_early = pending.done()
        gate.set()
        assert not answered_early
        assert await pending == "accepted"
        assert state.actions().index("Authorize") > state.actions().index("BootNotification")


async def test_malformed_frames_get_the_right_callerror() -> None:
    async with raw_csms() as csms, station(csms.url):
        await asyncio.wait_for(csms.booted.wait(), 5)
        cases = [
            ("not json", ["-1", "RpcFrameworkError"]),
            ('[2, 7, "Reset", {}]', ["-1", "RpcFrameworkError"]),
            ('[9, "m1", "Reset", {}]', ["m1", "MessageTypeNotSupported"]),
            ('[2, "m2", "Reset"]', ["m2", "ProtocolError"]),
            ('[2, "m3", "LaunchRocket", {}]', ["m3", "NotImplemented"]),
            ('[2, "m4", "Reset", {}]', ["m4", "OccurrenceConstraintViolation"]),
            ('[2, "m5", "Reset", {"type": 5}]', ["m5", "TypeConstraintViolation"]),
            ('[2, "m6", "Reset", {"type": "Sometimes"}]', ["m6", "PropertyConstraintViolation"]),
            ('[2, "m7", "Reset", {"type": "OnIdle", "x": 1}]', ["m7", "FormatViolation"]),
            ('[2, "m8", "GetInstalledCertificateIds", {}]', ["m8", "NotSupported"]),
        ]
        for frame, (message_id, code) in cases:
            reply = await csms.send(frame)
            assert reply[:3] == [4, message_id, code], (frame, reply)
            assert isinstance(reply[3], str) and reply[3]


async def test_the_websocket_ping_interval_is_the_device_models() -> None:
    state = CsmsState(interval=300)
    intervals: list[float | None] = []

    def connect(url: str, **options: Any) -> Any:
        intervals.append(options["ping_interval"])
        return websockets.connect(url, **options)

    async with ocpp_csms(state) as url, station(url, connect=connect, ping_interval_s=30):
        for count, value in enumerate(["0", "7"], start=1):
            await eventually(lambda count=count: len(state.stations) == count)
            reply = await state.stations[-1].call(
                call.SetVariables(
                    set_variable_data=[
                        {
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "WebSocketPingInterval"},
                            "attribute_value": value,
                        }
                    ]
                )
            )
            assert reply.set_variable_result[0]["attribute_status"] == "Accepted"
            await state.connections[-1].close()  # the value counts from the next connection
        await eventually(lambda: len(intervals) == 3)
    assert intervals == [30.0, None, 7.0]  # 0: no pings


def test_reconnect_backoff_doubles_and_is_randomised() -> None:
    delays = reconnect_delays(2, 1, 3, random.Random(7))
    bases = [2.0, 4.0, 8.0, 16.0]
    assert [int(d - b >= 0 and d - b <= 1.0) for d, b in zip(delays, bases, strict=True)] == [1] * 4
    assert len(set(round(d - b, 6) for d, b in zip(delays, bases, strict=True))) == 4
    assert min(reconnect_delays(0, 0, 2, random.Random(7))) == 0.05  # never a busy loop


async def test_a_failing_part_fails_run_for_the_supervisor() -> None:
    bus = Bus()
    outbox = Outbox(Path(tempfile.mkdtemp()) / "ocpp.db")
    client = OcppClient(bus, settings("ws://127.0.0.1:9/ocpp"), outbox)

    async def broken_writer() -> None:
        raise RuntimeError("disk on fire")

    client._write_forever = broken_writer  # type: ignore[method-assign]
    try:
        async with asyncio.timeout(5):
            await client.run()
    except RuntimeError as exc:
        assert str(exc) == "disk on fire"
    else:
        raise AssertionError("run() kept going without its outbox writer")
    finally:
        outbox.close()
