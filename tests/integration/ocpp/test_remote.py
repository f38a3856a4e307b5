"""CSMS-initiated operations carried out through the CS on the bus (the OCA B, F, G
and P cases run on the OCTT rig, tests/integration/oca/).
The test plays the CS: it answers the bus requests the OCPP client makes."""

from __future__ import annotations

import pytest
from ocpp.v201 import call

from charger.bus import api
from charger.bus.api import Message
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import station
from tests.support.ocpp_steps import booted, play_cs, set_variables
from tests.support.polling import eventually


async def test_P01_P02_data_transfer_both_ways() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        asked = play_cs(st, {"data_transfer": {"status": "accepted", "data": {"pong": 1}}})
        reply = await csms.call(
            call.DataTransfer(vendor_id="org.example", message_id="ping", data={"n": 1})
        )
        assert (reply.status, reply.data) == ("Accepted", {"pong": 1})
        assert asked[0].data == {"vendor_id": "org.example", "message_id": "ping", "data": {"n": 1}}
        out = await st.bus.request(
            api.request(
                "data_transfer", "cs/josev", {"vendor_id": "org.example", "data": {"hello": "csms"}}
            ),
            5,
        )
        assert out.data == {"status": "accepted", "data": {"echo": {"hello": "csms"}}}
        assert await state.wait_for("DataTransfer") == {
            "vendor_id": "org.example",
            "data": {"hello": "csms"},
        }


@pytest.mark.parametrize(("retries", "asked"), [("0", 1), ("2", 3)])
async def test_a_station_reset_the_cs_refuses_is_tried_reset_retries_times_more(
    retries: str, asked: int
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        await set_variables(csms, OCPPCommCtrlr__ResetRetries=retries)
        answers = ["rejected", "rejected", "accepted", "accepted"]
        requests: list[Message] = []

        def answer(message: Message) -> None:
            if message.type == "request" and message.name == "reset":
                requests.append(message)
                st.bus.publish(message.reply({"status": answers[len(requests) - 1]}))

        st.bus.subscribe_all(answer, topic="josev/cs")
        assert (await csms.call(call.Reset(type="Immediate"))).status == "Accepted"
        await eventually(lambda: len(requests) == asked)
        assert all(r.data == {} for r in requests)  # the whole station each time
