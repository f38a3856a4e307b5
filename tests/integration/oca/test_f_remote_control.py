"""OCA Part 6, block F (Remote Control), Core cases, on the whole firmware (`rig.octt`).

One test per case, its steps in order as comments (TC_F_04 is with block E's cable
plug-in timeout cases, in test_e_transactions.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from rig.octt import OTHER_TOKEN, Octt, id_token


async def trigger(octt: Octt, message: str, **evse: int) -> str:
    payload: dict[str, Any] = {"requestedMessage": message}
    if evse:
        payload["evse"] = evse
    reply = await octt.call("TriggerMessage", **payload)
    return str(reply["status"])


# ------------------------------------------------------------------ F01-F03 remote start


async def test_TC_F_01_CS_remote_start_transaction_cable_plugin_first(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EVConnectedPreSession
        started = await octt.ev_connected_pre_session()
        tx = started["transactionInfo"]["transactionId"]
        # 1. Execute Reusable State Authorized (remote): Accepted with the transactionId,
        # TransactionEvent RemoteStart with the idToken and remoteStartId
        reply, event = await octt.authorized_remotely(remote_start_id=11)
        assert reply["transactionId"] == tx
        assert event["transactionInfo"]["transactionId"] == tx
        assert event["eventType"] == "Updated"
        # 2. Execute Reusable State EnergyTransferStarted
        await octt.energy_transfer_started()


async def test_TC_F_03_CS_remote_start_first_authorize_remote_start_false(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: AuthorizeRemoteStart false (ReadOnly false here)
        # 1. Execute Reusable State Authorized (remote): no AuthorizeRequest
        _, event = await octt.authorized_remotely(remote_start_id=3)
        assert event["eventType"] == "Started"
        assert octt.count("Authorize") == 0
        # 2. Execute Reusable State EnergyTransferStarted, part 1 and 2
        await octt.plug()
        await octt.occupied()
        plugged = await octt.expect("TransactionEvent", within_s=5, triggerReason="CablePluggedIn")
        assert plugged["evse"] == {"id": 1, "connectorId": 1}
        await octt.energy_transfer_started()


async def test_TC_F_08_CS_remote_stop_transaction_success(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await octt.charging()
        # 1. Execute Reusable State StopAuthorized (remote): Accepted, RemoteStop
        reply = await octt.call("RequestStopTransaction", transactionId=tx)
        assert reply["status"] == "Accepted"
        stop = await octt.expect("TransactionEvent", within_s=5, triggerReason="RemoteStop")
        assert stop["transactionInfo"]["transactionId"] == tx
        ended = await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"


async def test_TC_F_09_CS_remote_stop_transaction_rejected(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await octt.charging()
        # 1-2. RequestStopTransaction for another transactionId: Rejected
        reply = await octt.call("RequestStopTransaction", transactionId=str(uuid.uuid4()))
        assert reply["status"] == "Rejected"
        await octt.advance(30)
        await octt.nothing("TransactionEvent", eventType="Ended")
        assert octt.open_transactions() == {tx}


# ------------------------------------------------------------------ F05 unlock


async def test_TC_F_05_CS_remote_unlock_connector_with_ongoing_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        await octt.charging()
        # 1-2. UnlockConnector: OngoingAuthorizedTransaction
        reply = await octt.call("UnlockConnector", evseId=1, connectorId=1)
        assert reply["status"] == "OngoingAuthorizedTransaction"
        assert octt.sim().lock_locked


async def test_TC_F_07_CS_remote_unlock_connector_no_cable_connected(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: no cable connected
        # 1-2. UnlockConnector: Unlocked
        reply = await octt.call("UnlockConnector", evseId=1, connectorId=1)
        assert reply["status"] == "Unlocked"
        assert not octt.sim().lock_locked


async def test_TC_F_10_CS_remote_unlock_connector_unknown_connector(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. UnlockConnector for connector 999: UnknownConnector
        reply = await octt.call("UnlockConnector", evseId=1, connectorId=999)
        assert reply["status"] == "UnknownConnector"


# ------------------------------------------------------------------ F06 trigger


async def test_TC_F_11_CS_trigger_message_meter_values_specific_evse(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        await octt.advance(2)  # the meter has been read (meter_interval_s 1)
        # 1-2. TriggerMessage MeterValues for EVSE 1: Accepted
        assert await trigger(octt, "MeterValues", id=1) == "Accepted"
        # 3-4. MeterValues of EVSE 1, context Trigger
        values = await octt.expect("MeterValues", within_s=5)
        assert values["evseId"] == 1
        assert values["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        await octt.settle()
        assert octt.count("MeterValues") == 1


async def test_TC_F_12_CS_trigger_message_meter_values_all_evse(rig: Callable[..., Any]) -> None:
    async with rig(evses=2) as octt:
        await octt.advance(2)
        # 1-2. TriggerMessage MeterValues, evse omitted: Accepted
        assert await trigger(octt, "MeterValues") == "Accepted"
        # 3-4. MeterValues (one per EVSE), context Trigger
        await octt.expect("MeterValues", within_s=5, evseId=2)
        values = octt.sent("MeterValues")
        assert sorted(v["evseId"] for v in values) == [1, 2]
        assert all(v["meterValue"][0]["sampledValue"][0]["context"] == "Trigger" for v in values)


async def test_TC_F_13_CS_trigger_message_transaction_event_specific_evse(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await octt.charging()
        await octt.advance(2)
        # 1-2. TriggerMessage TransactionEvent for EVSE 1: Accepted
        assert await trigger(octt, "TransactionEvent", id=1) == "Accepted"
        # 3-4. TransactionEvent: Trigger, Charging, meter values with context Trigger
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Trigger")
        assert event.get("evse", {"id": 1})["id"] == 1
        assert event["transactionInfo"] == {**event["transactionInfo"], "transactionId": tx}
        assert event["transactionInfo"]["chargingState"] == "Charging"
        assert event["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


async def test_TC_F_14_CS_trigger_message_transaction_event_all_evse(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is EnergyTransferStarted on every EVSE
        await octt.charging(1)
        await octt.charging(2, token=OTHER_TOKEN)
        await octt.advance(2)
        # 1-2. TriggerMessage TransactionEvent, evse omitted: Accepted
        assert await trigger(octt, "TransactionEvent") == "Accepted"
        # 3-4. one per EVSE: Trigger, Charging, meter values with context Trigger
        await octt.expect("TransactionEvent", within_s=5, triggerReason="Trigger", evse={"id": 2})
        events = octt.sent("TransactionEvent", triggerReason="Trigger")
        assert sorted(e["evse"]["id"] for e in events) == [1, 2]
        for event in events:
            assert event["transactionInfo"]["chargingState"] == "Charging"
            assert event["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


async def test_TC_F_15_CS_trigger_message_log_status_notification_idle(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage LogStatusNotification: Accepted; 3-4. status Idle
        assert await trigger(octt, "LogStatusNotification") == "Accepted"
        status = await octt.expect("LogStatusNotification", within_s=5)
        assert status["status"] == "Idle"


@pytest.mark.parametrize(
    "evse",
    [
        pytest.param({"id": 1}, id="TC_F_17_specific_evse_not_relevant"),
        pytest.param({}, id="TC_F_18_idle"),
    ],
)
async def test_TC_F_17_18_CS_trigger_message_firmware_status_notification_idle(
    rig: Callable[..., Any], evse: dict[str, int]
) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage FirmwareStatusNotification (TC_F_17 with an evse): Accepted
        assert await trigger(octt, "FirmwareStatusNotification", **evse) == "Accepted"
        # 3-4. status Idle (no update has run)
        status = await octt.expect("FirmwareStatusNotification", within_s=5)
        assert status["status"] == "Idle"


async def test_TC_F_20_CS_trigger_message_heartbeat(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage Heartbeat: Accepted; 3-4. a Heartbeat at once
        assert await trigger(octt, "Heartbeat") == "Accepted"
        await octt.expect("Heartbeat", within_s=1)


async def test_TC_F_23_CS_trigger_message_status_notification_available(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage StatusNotification for the connector: Accepted
        assert await trigger(octt, "StatusNotification", id=1, connectorId=1) == "Accepted"
        # 3-4. Available, with its AvailabilityState Delta
        await octt.occupied(status="Available")


async def test_TC_F_24_CS_trigger_message_status_notification_occupied(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EVConnectedPreSession
        await octt.ev_connected_pre_session()
        # 1-2. TriggerMessage StatusNotification for the connector: Accepted
        assert await trigger(octt, "StatusNotification", id=1, connectorId=1) == "Accepted"
        # 3-4. Occupied, with its AvailabilityState Delta
        await octt.occupied()


async def test_a_triggered_status_notification_is_for_the_connector_named(
    rig: Callable[..., Any],
) -> None:
    """F06 with evse.connectorId: that connector's status; one the EVSE does not have is
    refused, as an unknown EVSE is."""
    async with rig(evses=2) as octt:
        assert await trigger(octt, "StatusNotification", id=2, connectorId=1) == "Accepted"
        await octt.occupied(2, status="Available")
        assert [p["evseId"] for p in octt.sent("StatusNotification")] == [2]
        assert await trigger(octt, "StatusNotification", id=1, connectorId=2) == "Rejected"
        await octt.next_heartbeat()
        assert octt.sent("StatusNotification") == []


async def test_TC_F_26_CS_trigger_message_boot_notification_rejected(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage BootNotification after an accepted boot: Rejected
        assert await trigger(octt, "BootNotification") == "Rejected"
        await octt.next_heartbeat()
        assert octt.count("BootNotification") == 0


async def test_TC_F_27_CS_trigger_message_not_implemented(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1-2. TriggerMessage SignCombinedCertificate: NotImplemented
        assert await trigger(octt, "SignCombinedCertificate") == "NotImplemented"


async def test_authorized_remote_start_names_the_token(rig: Callable[..., Any]) -> None:
    """The reusable state Authorized (remote) with another card: the event carries it."""
    async with rig() as octt:
        _, event = await octt.authorized_remotely(token=OTHER_TOKEN, remote_start_id=9)
        assert event["idToken"] == id_token(OTHER_TOKEN)
