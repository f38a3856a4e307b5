"""TriggerMessage (OCA F06 cases TC_F_11 to TC_F_27): the station sends what is asked for,
for one EVSE or all, and says Rejected or NotImplemented where it must."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import station
from tests.support.ocpp_steps import CHARGE, OFFER, PLUG, booted, meter, step


async def trigger(csms: Any, message: str, evse: dict[str, int] | None = None) -> str:
    reply = await csms.call(call.TriggerMessage(requested_message=message, evse=evse))
    return str(reply.status)


async def test_TC_F_11_F_12_CS_meter_values_for_one_evse_and_for_all() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        meter(st, 1234.5)
        for count, evse in ((1, {"id": 1}), (2, None)):
            assert await trigger(csms, "MeterValues", evse) == "Accepted"
            values = await state.wait_for("MeterValues", count=count)
            assert values["evse_id"] == 1
            sampled = values["meter_value"][0]["sampled_value"][0]
            assert (sampled["context"], sampled["value"]) == ("Trigger", 1234.5)
        assert await trigger(csms, "MeterValues", {"id": 7}) == "Rejected"  # no such EVSE


async def test_TC_F_13_F_14_CS_transaction_event_for_one_evse_and_for_all() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        meter(st, 500.0)
        for facts in (PLUG, OFFER, CHARGE):
            await step(st, facts)
        await state.wait_for("TransactionEvent", count=3)
        for count, evse in ((4, {"id": 1}), (5, None)):
            assert await trigger(csms, "TransactionEvent", evse) == "Accepted"
            event = await state.wait_for("TransactionEvent", count=count)
            assert (event["event_type"], event["trigger_reason"]) == ("Updated", "Trigger")
            assert event["evse"]["id"] == 1
            assert event["transaction_info"]["charging_state"] == "Charging"
            assert event["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"


async def test_TC_F_15_F_17_F_18_CS_log_and_firmware_status_when_idle() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        assert await trigger(csms, "LogStatusNotification") == "Accepted"
        assert (await state.wait_for("LogStatusNotification"))["status"] == "Idle"
        assert await trigger(csms, "FirmwareStatusNotification") == "Accepted"
        assert (await state.wait_for("FirmwareStatusNotification"))["status"] == "Idle"
        # an EVSE means nothing to a firmware status: still sent (F06.FR.03)
        assert await trigger(csms, "FirmwareStatusNotification", {"id": 1}) == "Accepted"
        assert (await state.wait_for("FirmwareStatusNotification", count=2))["status"] == "Idle"


async def test_TC_F_20_F_26_F_27_CS_heartbeat_boot_notification_and_not_implemented() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        assert await trigger(csms, "Heartbeat") == "Accepted"
        await state.wait_for("Heartbeat")
        assert await trigger(csms, "BootNotification") == "Rejected"  # already accepted
        assert state.actions().count("BootNotification") == 1
        assert await trigger(csms, "SignCombinedCertificate") == "NotImplemented"


async def test_TC_F_23_F_24_CS_status_notification_available_then_occupied() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        connector = {"id": 1, "connector_id": 1}
        assert await trigger(csms, "StatusNotification", connector) == "Accepted"
        again = await state.wait_for("StatusNotification", count=2)
        assert (again["evse_id"], again["connector_id"], again["connector_status"]) == (
            1,
            1,
            "Available",
        )
        await step(st, PLUG)  # EVConnectedPreSession
        await state.wait_for("StatusNotification", count=3)
        assert await trigger(csms, "StatusNotification", connector) == "Accepted"
        occupied = await state.wait_for("StatusNotification", count=4)
        assert occupied["connector_status"] == "Occupied"
