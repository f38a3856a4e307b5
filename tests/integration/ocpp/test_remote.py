"""CSMS-initiated operations carried out through the CS on the bus (OCA B, G, F, P cases).
The test plays the CS: it answers the bus requests the OCPP client makes."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.v201 import call

from charger.bus import api
from charger.bus.api import Message
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, station
from tests.support.ocpp_steps import booted, cs, play_cs, set_variables
from tests.support.polling import eventually


async def test_TC_G_03_G_14_CS_change_availability_scheduled_around_a_transaction() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        asked = play_cs(st, {"change_availability": {"status": "accepted"}})
        reply = await csms.call(
            call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
        )
        assert reply.status == "Accepted"
        assert asked[0].data == {"operational_status": "inoperative", "evse_id": EVSE_ID}
        unavailable = await state.wait_for("StatusNotification", count=2)
        assert unavailable["connector_status"] == "Unavailable"
        reply = await csms.call(call.ChangeAvailability(operational_status="Operative"))
        assert reply.status == "Accepted"
        back = await state.wait_for("StatusNotification", count=3)
        assert back["connector_status"] == "Available"
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        reply = await csms.call(call.ChangeAvailability(operational_status="Inoperative"))
        assert reply.status == "Scheduled" and len(asked) == 2
        cs(st, "cp_status", connector_id=1, state="A1")
        await state.wait_for("TransactionEvent", count=2)
        # Occupied, then straight to Unavailable (OCPP issue, defect 6: no Available first)
        last = await state.wait_for("StatusNotification", count=5)
        assert last["connector_status"] == "Unavailable"
        await eventually(lambda: len(asked) == 3)
        assert [p["connector_status"] for a, p in state.received if a == "StatusNotification"][
            -2:
        ] == ["Occupied", "Unavailable"]


async def test_TC_F_05_F_06_F_07_F_10_CS_unlock_connector() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        asked = play_cs(
            st, {"cs_connector": {"evse_id": EVSE_ID, "connector_id": 1, "status": "unlocked"}}
        )
        reply = await csms.call(call.UnlockConnector(evse_id=1, connector_id=1))
        assert reply.status == "Unlocked"
        assert asked[0].data == {"evse_id": EVSE_ID, "connector_id": 1, "action": "unlock"}
        for evse, connector in ((9, 1), (1, 999)):
            unknown = await csms.call(call.UnlockConnector(evse_id=evse, connector_id=connector))
            assert unknown.status == "UnknownConnector"
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        assert (await csms.call(call.UnlockConnector(evse_id=1, connector_id=1))).status == (
            "OngoingAuthorizedTransaction"
        )


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


async def test_TC_G_04_to_G_10_G_12_G_13_G_15_G_16_CS_change_availability_targets() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        play_cs(st, {"change_availability": {"status": "accepted"}})

        async def change(status: str, evse: dict[str, Any] | None) -> str:
            reply = await csms.call(call.ChangeAvailability(operational_status=status, evse=evse))
            return str(reply.status)

        station_wide, evse, connector = None, {"id": 1}, {"id": 1, "connector_id": 1}
        for target in (station_wide, evse, connector):
            assert await change("Operative", target) == "Accepted"  # already: no change
            assert await change("Inoperative", target) == "Accepted"
            assert await change("Inoperative", target) == "Accepted"  # already
            assert await change("Operative", target) == "Accepted"
        await state.wait_for("StatusNotification", count=7)
        sent = [p["connector_status"] for a, p in state.received if a == "StatusNotification"]
        assert sent == ["Available"] + ["Unavailable", "Available"] * 3  # changes only
        assert await change("Inoperative", {"id": 1, "connector_id": 2}) == "Rejected"
        assert await change("Inoperative", {"id": 9}) == "Rejected"


async def test_TC_P_01_CS_data_transfer_nobody_implements() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        play_cs(st, {"data_transfer": {"status": "unknown_vendor_id"}})
        reply = await csms.call(
            call.DataTransfer(vendor_id="org.openchargealliance.octt", message_id="nothing")
        )
        assert reply.status == "UnknownVendorId"
    silent = CsmsState(interval=300)
    async with ocpp_csms(silent) as url, station(url, call_timeout_s=0.5):
        await silent.wait_for("StatusNotification")
        reply = await silent.stations[0].call(
            call.DataTransfer(vendor_id="org.openchargealliance.octt")
        )
        assert reply.status == "Rejected"  # no CS answered on the bus


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
