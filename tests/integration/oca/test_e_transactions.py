"""OCA Part 6, block E (Transactions), Core cases, on the whole firmware (`rig.octt`).

One test per case, its steps in order as comments. The station's TxStartPoint and
TxStopPoint are ReadWrite (EVConnected, Authorized, PowerPathClosed, EnergyTransfer);
StopTxOnEVSideDisconnect and UnlockOnEVSideDisconnect are ReadOnly true. The retry cases
use the real MessageTimeout (30 s) and intervals of 10 s on the rig's virtual clock and
check the exact count and spacing of the attempts.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from rig.octt import OTHER_TOKEN, VALID_TOKEN, Octt, id_token

EVSE1 = {"id": 1, "connectorId": 1}
MESSAGE_TIMEOUT_S = 30  # OCPPCommCtrlr.MessageTimeout (Default), ReadOnly
SOCKET = "socket_outlet = true"  # a detachable cable: its two ends are told apart


def seq(event: dict[str, Any]) -> int:
    return int(event["seqNo"])


async def started_and_charging(octt: Octt) -> str:
    """Before: State is EnergyTransferStarted (EVConnectedPreSession, Authorized local,
    EnergyTransferStarted); returns the transactionId."""
    return await octt.charging()


# ------------------------------------------------------------------ E01 start options


async def test_TC_E_01_CS_start_transaction_options_power_path_closed(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint PowerPathClosed; State is Authorized (no transaction yet)
        await octt.set_variables(TxCtrlr__TxStartPoint="PowerPathClosed")
        await octt.authorized(tx_expected=False)
        await octt.nothing("TransactionEvent")
        # 1. Execute Reusable State EVConnectedPreSession: Occupied, then the Started
        # event once the power path closes (authorized: the EVSE offers, the EV takes)
        await octt.plug()
        await octt.occupied()
        started = await octt.expect("TransactionEvent", within_s=10, eventType="Started")
        assert started["evse"] == EVSE1
        assert started["triggerReason"] in ("CablePluggedIn", "ChargingStateChanged")
        assert started["transactionInfo"]["chargingState"] in (
            "EVConnected",
            "SuspendedEVSE",
            "Charging",
        )
        assert started["idToken"] == id_token()
        assert octt.count("TransactionEvent", eventType="Started") == 1


async def test_TC_E_02_CS_start_transaction_options_energy_transfer(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint EnergyTransfer; State is Authorized
        await octt.set_variables(TxCtrlr__TxStartPoint="EnergyTransfer")
        await octt.authorized(tx_expected=False)
        # Manual Action: connect the EV; 1-2. Occupied with its Delta
        await octt.plug()
        await octt.occupied()
        # 3-4. Started once energy flows: ChargingStateChanged or Authorized, Charging
        started = await octt.expect("TransactionEvent", within_s=10, eventType="Started")
        assert started["triggerReason"] in ("ChargingStateChanged", "Authorized")
        assert started["idToken"] == id_token()
        assert started["evse"] == EVSE1
        assert started["transactionInfo"]["chargingState"] == "Charging"
        assert octt.sent("TransactionEvent") == [started]  # nothing before energy flowed


async def test_TC_E_09_CS_start_transaction_options_ev_connected(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint EVConnected
        await octt.set_variables(TxCtrlr__TxStartPoint="EVConnected")
        # Manual Action: connect the EV; 1-2. Occupied with its Delta
        await octt.plug()
        await octt.occupied()
        # 3-4. Started: CablePluggedIn, evse and connector, EVConnected
        started = await octt.expect("TransactionEvent", within_s=5)
        assert started["eventType"] == "Started"
        assert started["triggerReason"] in ("CablePluggedIn", "ChargingStateChanged")
        assert started["evse"] == EVSE1
        assert started["transactionInfo"]["chargingState"] == "EVConnected"


async def test_TC_E_10_CS_start_transaction_options_authorized_local(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint Authorized
        await octt.set_variables(TxCtrlr__TxStartPoint="Authorized")
        # Manual Action: present the idToken; 1-2. AuthorizeRequest, Accepted
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())
        # 3-4. Started: Authorized, with the idToken
        started = await octt.expect("TransactionEvent", within_s=5)
        assert started["eventType"] == "Started"
        assert started["triggerReason"] == "Authorized"
        assert started["idToken"] == id_token()
        assert octt.messages("Authorize")[0].at <= octt.messages("TransactionEvent")[0].at


async def test_TC_E_13_CS_start_transaction_options_authorized_remote(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint Authorized
        await octt.set_variables(TxCtrlr__TxStartPoint="Authorized")
        # 1-2. RequestStartTransaction: Accepted
        reply = await octt.call(
            "RequestStartTransaction", idToken=id_token(), evseId=1, remoteStartId=13
        )
        assert reply["status"] == "Accepted"
        # 3-4. (AuthorizeRequest only with AuthorizeRemoteStart true: ReadOnly false here)
        # 5-6. Started: RemoteStart, the idToken, remoteStartId
        started = await octt.expect("TransactionEvent", within_s=5)
        assert started["eventType"] == "Started"
        assert started["triggerReason"] == "RemoteStart"
        assert started["idToken"] == id_token()
        assert started["transactionInfo"]["remoteStartId"] == 13
        assert octt.count("Authorize") == 0


# ------------------------------------------------------------------ E02, E03 local start


async def test_TC_E_03_CS_local_start_cable_plugin_first(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EVConnectedPreSession (Started, CablePluggedIn, EVConnected)
        started = await octt.ev_connected_pre_session()
        assert (started["eventType"], started["triggerReason"]) == ("Started", "CablePluggedIn")
        assert started["transactionInfo"]["chargingState"] == "EVConnected"
        # 1. Execute Reusable State Authorized (local): Authorize, Updated with the idToken
        authorized = await octt.authorized()
        assert authorized["eventType"] == "Updated"
        # 2. Execute Reusable State EnergyTransferStarted: ChargingStateChanged, Charging
        charging = await octt.energy_transfer_started()
        tx = started["transactionInfo"]["transactionId"]
        events = octt.transaction_events()
        assert {e["transactionInfo"]["transactionId"] for e in events} == {tx}
        assert [seq(e) for e in events] == list(range(len(events)))
        assert charging["eventType"] == "Updated"


async def test_TC_E_04_CS_local_start_authorization_first(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1. Execute Reusable State Authorized (local): Started, Authorized, idToken
        authorized = await octt.authorized()
        assert authorized["eventType"] == "Started"
        assert authorized["transactionInfo"]["chargingState"] == "Idle"
        # 2. Execute Reusable State EnergyTransferStarted, part 1: connect the EV ...
        await octt.plug()
        await octt.occupied()
        plugged = await octt.expect("TransactionEvent", within_s=5)
        assert plugged["triggerReason"] == "CablePluggedIn"
        assert plugged["transactionInfo"]["chargingState"] == "EVConnected"
        assert plugged["evse"] == EVSE1
        # ... part 2: ChargingStateChanged, Charging
        await octt.energy_transfer_started()


async def test_TC_E_05_CS_local_start_authorization_first_cable_plugin_timeout(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        timeout_s = 40
        # Before: EVConnectionTimeOut <configured>; AuthCacheCtrlr.Enabled false;
        # State is Authorized (local)
        await octt.set_variables(
            TxCtrlr__EVConnectionTimeOut=str(timeout_s), AuthCacheCtrlr__Enabled="false"
        )
        authorized = await octt.authorized()
        at = octt.now()
        # 1-2. after the timeout: EVConnectTimeout; TxStopPoint has Authorized: Ended, Timeout
        await octt.advance(timeout_s - 1)
        await octt.nothing("TransactionEvent", triggerReason="EVConnectTimeout")
        ended = await octt.expect_msg("TransactionEvent", within_s=2, eventType="Ended")
        assert ended.at - at == pytest.approx(timeout_s, abs=0.6)
        assert ended.payload["triggerReason"] == "EVConnectTimeout"
        assert ended.payload["transactionInfo"]["stoppedReason"] == "Timeout"
        assert (
            ended.payload["transactionInfo"]["transactionId"]
            == authorized["transactionInfo"]["transactionId"]
        )
        # 3. Execute Reusable State Authorized (local): the EVSE takes a new session
        again = await octt.authorized()
        assert again["eventType"] == "Started"
        # 4. Execute Reusable State EnergyTransferStarted
        await octt.plug()
        await octt.occupied()
        await octt.energy_transfer_started()


async def test_TC_E_38_CS_local_start_ev_not_ready(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is Authorized
        await octt.authorized()
        # Manual Action: the EV is not ready for energy transfer
        octt.sim().ev.wants_charge = False
        # 1. Execute Reusable State EVConnectedPreSession
        await octt.ev_connected_pre_session(authorized=True)
        # 2-3. ChargingStateChanged, SuspendedEV
        suspended = await octt.expect(
            "TransactionEvent", within_s=10, triggerReason="ChargingStateChanged"
        )
        assert suspended["transactionInfo"]["chargingState"] == "SuspendedEV"
        await octt.advance(30)
        await octt.nothing("TransactionEvent", transactionInfo={"chargingState": "Charging"})


async def test_TC_E_52_CS_local_start_authorization_first_disable_remote_authorization(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: DisableRemoteAuthorization true; the token in neither list nor cache
        await octt.set_variables(AuthCtrlr__DisableRemoteAuthorization="true")
        # Manual Action: present the unknown idToken
        await octt.present(OTHER_TOKEN)
        # 1. no AuthorizeRequest, and the authorization is refused: nothing starts
        hb = await octt.next_heartbeat()
        assert octt.messages("Authorize") == []
        assert [m for m in octt.messages("TransactionEvent") if m.at < hb.at] == []
        assert octt.sim().out.pwm_duty is None  # no energy offered


# ------------------------------------------------------------------ E06 stop options


async def test_TC_E_06_CS_local_stop_transaction_accepted(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await started_and_charging(octt)
        # 1. Execute Reusable State StopAuthorized (local)
        stop, ended = await octt.stop_authorized()
        assert stop["triggerReason"] == "StopAuthorized"
        assert stop.get("idToken", id_token()) == id_token()
        assert ended["transactionInfo"]["transactionId"] == tx
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"
        assert ended["transactionInfo"].get("stoppedReason", "Local") == "Local"
        # 2. EVConnectedPostSession: ended already (TxStopPoint Authorized)
        # 3. Execute Reusable State EVDisconnected: Available with its Delta
        await octt.ev_disconnected()
        await octt.nothing("TransactionEvent")  # the transaction had ended


async def test_TC_E_07_CS_stop_transaction_options_power_path_closed_local_stop(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint PowerPathClosed; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="PowerPathClosed")
        await started_and_charging(octt)
        # Manual Action: present the idToken; 1. Execute Reusable State StopAuthorized
        stop, ended = await octt.stop_authorized()
        assert stop["eventType"] == "Updated"  # the power path is still closed then
        assert stop.get("idToken", id_token()) == id_token()
        assert ended["triggerReason"] == "ChargingStateChanged"
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"
        assert ended["transactionInfo"].get("stoppedReason", "Local") == "Local"


async def test_TC_E_35_CS_stop_transaction_options_power_path_closed_remote_stop(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint PowerPathClosed; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="PowerPathClosed")
        tx = await started_and_charging(octt)
        # 1-2. RequestStopTransaction: Accepted
        reply = await octt.call("RequestStopTransaction", transactionId=tx)
        assert reply["status"] == "Accepted"
        # 3-4. RemoteStop, stoppedReason Remote, Ended
        ended = await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        stop = await octt.expect("TransactionEvent", triggerReason="RemoteStop")
        # Reading (docs/ocpp-oca.md): the RemoteStop trigger is on the Updated event sent
        # at once; the Ended one follows when the power path opens (ChargingStateChanged)
        assert stop["eventType"] in ("Updated", "Ended")


async def test_TC_E_37_CS_stop_transaction_options_power_path_closed_ev_side_disconnect(
    rig: Callable[..., Any],
) -> None:
    async with rig(evse=SOCKET) as octt:
        # Before: TxStopPoint PowerPathClosed; State is EnergyTransferSuspended. The EV's
        # suspension (state B) opens the contactor (IEC 61851-1: no power in B), so the
        # power path closes the transaction here already, with the stoppedReason step 1
        # prefers (StoppedByEV); EnergyTransferSuspended allows it ("unless the
        # transaction was already stopped"). docs/ocpp-oca.md, readings.
        await octt.set_variables(TxCtrlr__TxStopPoint="PowerPathClosed")
        tx = await started_and_charging(octt)
        suspended = await octt.energy_transfer_suspended()
        assert suspended["eventType"] == "Ended"
        assert suspended["transactionInfo"]["transactionId"] == tx
        assert suspended["transactionInfo"]["stoppedReason"] in ("StoppedByEV", "EVDisconnected")
        # Manual Action: disconnect on the EV side
        await octt.unplug(at="ev")
        # 1-2. nothing more of that transaction; the connector is Available
        await octt.occupied(status="Available")
        await octt.nothing("TransactionEvent")
        assert octt.open_transactions() == set()


async def test_TC_E_08_CS_stop_transaction_options_energy_transfer_stop_authorized(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint EnergyTransfer; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="EnergyTransfer")
        await started_and_charging(octt)
        # 1. State is StopAuthorized (local): the transaction ends when energy stops
        stop, ended = await octt.stop_authorized()
        assert stop["triggerReason"] == "StopAuthorized"
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"
        assert ended["transactionInfo"].get("stoppedReason", "Local") == "Local"


async def test_TC_E_22_CS_stop_transaction_options_energy_transfer_suspended_ev(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint EnergyTransfer; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="EnergyTransfer")
        await started_and_charging(octt)
        # Manual Action: the EV suspends the energy transfer
        await octt.ev_suspends()
        # 1-2. ChargingStateChanged, Ended: chargingState EVConnected, or SuspendedEV with
        # stoppedReason StoppedByEV (Part 6 pairs SuspendedEV with eventType Updated and
        # with a stoppedReason, which only an Ended event has: docs/ocpp-oca.md, readings)
        event = await octt.expect(
            "TransactionEvent", within_s=10, triggerReason="ChargingStateChanged"
        )
        assert event["eventType"] == "Ended"
        info = event["transactionInfo"]
        assert (info["chargingState"], info.get("stoppedReason", "StoppedByEV")) in (
            ("EVConnected", "StoppedByEV"),
            ("SuspendedEV", "StoppedByEV"),
        )


async def test_TC_E_14_CS_stop_transaction_options_ev_disconnected_charging_station_side(
    rig: Callable[..., Any],
) -> None:
    async with rig(evse=SOCKET) as octt:
        # Before: TxStopPoint EVConnected; State is EVConnectedPostSession
        await octt.set_variables(TxCtrlr__TxStopPoint="EVConnected")
        await started_and_charging(octt)
        stop, after_stop = await octt.stop_authorized_post_session()
        assert stop["triggerReason"] == "StopAuthorized"
        assert after_stop["triggerReason"] == "ChargingStateChanged"
        assert after_stop["transactionInfo"]["chargingState"] == "EVConnected"
        # Manual Action: disconnect on the Charging Station side
        await octt.unplug(at="station")
        # 1-2. Available with its Delta
        await octt.occupied(status="Available")
        # 3-4. EVCommunicationLost, Idle, stoppedReason Local, EVDisconnected or omitted
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["triggerReason"] == "EVCommunicationLost"
        assert ended["transactionInfo"]["chargingState"] == "Idle"
        assert ended["transactionInfo"].get("stoppedReason", "Local") in (
            "Local",
            "EVDisconnected",
        )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("E_20", id="TC_E_20_able_to_charge_iec_61851_ev"),
        pytest.param("E_54", id="TC_E_54_not_able_to_charge_iec_61851_ev"),
    ],
)
async def test_TC_E_20_54_CS_stop_transaction_options_ev_disconnected_ev_side(
    rig: Callable[..., Any], case: str
) -> None:
    async with rig(evse=SOCKET) as octt:
        # Before: TxStopPoint EVConnected (StopTxOnEVSideDisconnect: ReadOnly true);
        # State is EnergyTransferSuspended. TC_E_54's EV is an HLC one that cannot charge
        # by IEC 61851-1 alone: the same on the CP (the simulated car charges basic).
        await octt.set_variables(TxCtrlr__TxStopPoint="EVConnected")
        await started_and_charging(octt)
        await octt.energy_transfer_suspended()
        # Manual Action: disconnect on the EV side
        await octt.unplug(at="ev")
        # 1-2. EVCommunicationLost, Idle, EVDisconnected (E_54: or StoppedByEV), Ended
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["triggerReason"] == "EVCommunicationLost"
        assert ended["transactionInfo"]["chargingState"] == "Idle"
        allowed = ("EVDisconnected",) if case == "E_20" else ("StoppedByEV", "EVDisconnected")
        assert ended["transactionInfo"]["stoppedReason"] in allowed


async def test_TC_E_15_CS_stop_transaction_options_stop_authorized_local(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint Authorized; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="Authorized")
        await started_and_charging(octt)
        # (the tool waits <Configured Transaction Duration>)
        await octt.advance(60)
        # Manual Action: present the idToken; 1-2. StopAuthorized, Local, Ended
        await octt.present()
        ended = await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        assert ended["triggerReason"] == "StopAuthorized"
        assert ended["transactionInfo"]["stoppedReason"] == "Local"


async def test_TC_E_21_CS_stop_transaction_options_stop_authorized_remote(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint Authorized; State is EnergyTransferStarted
        await octt.set_variables(TxCtrlr__TxStopPoint="Authorized")
        tx = await started_and_charging(octt)
        # 1-2. RequestStopTransaction: Accepted
        reply = await octt.call("RequestStopTransaction", transactionId=tx)
        assert reply["status"] == "Accepted"
        # 3-4. RemoteStop, Remote, Ended
        ended = await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert ended["transactionInfo"]["transactionId"] == tx


async def test_TC_E_16_CS_stop_transaction_options_deauthorized_invalid_id_token(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStopPoint Authorized; StopTxOnInvalidId true; OfflineTxForUnknownId
        # true (the station's means to start offline)
        await octt.set_variables(
            TxCtrlr__TxStopPoint="Authorized",
            TxCtrlr__StopTxOnInvalidId="true",
            AuthCtrlr__OfflineTxForUnknownId="true",
        )
        # State is StartOfflineTransaction: TS closes and refuses; card; EV; TS accepts
        await octt.close_connection()
        await octt.present()
        await octt.plug()
        await octt.advance(5)
        octt.ts.transaction_token_status = "Invalid"
        octt.accept_connections()
        await octt.reconnected(within_s=120)
        # 1-2. the queued events, offline true; the one with the idToken answered Invalid
        first = await octt.expect("TransactionEvent", within_s=5, idToken=id_token())
        assert first["offline"] is True
        # 3-4. Ended: Deauthorized, DeAuthorized
        ended = await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        assert ended["triggerReason"] == "Deauthorized"
        assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"


async def test_TC_E_39_CS_stop_transaction_options_deauthorized_timeout(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        timeout_s = 40
        # Before: TxStopPoint Authorized; EVConnectionTimeOut <configured>; Authorized
        await octt.set_variables(
            TxCtrlr__TxStopPoint="Authorized", TxCtrlr__EVConnectionTimeOut=str(timeout_s)
        )
        authorized = await octt.authorized()
        tx = authorized["transactionInfo"]["transactionId"]
        at = octt.now()
        # 1-2. after the timeout: EVConnectTimeout, Ended (TxStartPoint has Authorized),
        # stoppedReason Timeout
        ended = await octt.expect_msg("TransactionEvent", within_s=timeout_s + 1, eventType="Ended")
        assert ended.at - at == pytest.approx(timeout_s, abs=0.6)
        assert ended.payload["triggerReason"] == "EVConnectTimeout"
        assert ended.payload["transactionInfo"]["stoppedReason"] == "Timeout"
        assert ended.payload["transactionInfo"]["transactionId"] == tx
        # Manual Action: connect the EV (both sides)
        await octt.plug()
        # 3-4. only the cable-plugin event (a new transaction of its own: TxStartPoint
        # EVConnected), never Charging: the lapsed authorization does not come back
        plugged = await octt.expect("TransactionEvent", within_s=5)
        assert plugged["triggerReason"] == "CablePluggedIn"
        assert plugged["transactionInfo"]["chargingState"] != "Charging"
        assert plugged["transactionInfo"]["transactionId"] != tx
        await octt.next_heartbeat()
        assert octt.sent("TransactionEvent", transactionInfo={"chargingState": "Charging"}) == []
        assert octt.sim().out.pwm_duty is None  # no energy offered


async def test_TC_E_24_CS_disconnect_cable_on_ev_side_unlock_on_ev_side_disconnect_true(
    rig: Callable[..., Any],
) -> None:
    async with rig(evse=SOCKET) as octt:
        # Before: StopTxOnEVSideDisconnect true, UnlockOnEVSideDisconnect true (both the
        # station's ReadOnly values); State is EnergyTransferSuspended
        await started_and_charging(octt)
        await octt.energy_transfer_suspended()
        # Manual Action: disconnect on the EV side (the cable stays in the socket)
        await octt.unplug(at="ev")
        ev_side = octt.step_mark
        # 1-2. EVCommunicationLost, Idle (the transaction is deauthorized: Ended)
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["triggerReason"] == "EVCommunicationLost"
        assert ended["transactionInfo"]["chargingState"] == "Idle"
        assert octt.sim().lock_locked is False  # UnlockOnEVSideDisconnect: unlocked
        # Manual Action: disconnect on the Charging Station side
        await octt.unplug(at="station")
        # 3-4. the connector's state: Available with its Delta (reported as soon as the
        # car was gone: docs/ocpp-oca.md, readings)
        octt.step_mark = ev_side
        await octt.occupied(status="Available")


# ------------------------------------------------------------------ E13 retries


async def before_retry(
    octt: Octt, attempts: int, interval_s: int, *, unanswered: int = 0, rejected: int = 0
) -> None:
    """Before: MessageAttempts / MessageAttemptInterval for TransactionEvent; State is
    Authorized (answered), then EVConnectedPreSession, whose event is the retried one:
    the TS leaves `unanswered` TransactionEvents without an answer, answers `rejected`
    with a CALLERROR InternalError."""
    await octt.set_variables(
        OCPPCommCtrlr__MessageAttempts__TransactionEvent=str(attempts),
        OCPPCommCtrlr__MessageAttemptInterval__TransactionEvent=str(interval_s),
    )
    await octt.authorized()
    octt.ts.unanswered_transaction_events = unanswered
    octt.ts.reject_transaction_events = rejected
    await octt.plug()


def attempts_of(octt: Octt, seq_no: int) -> list[float]:
    return [m.at for m in octt.messages("TransactionEvent", after=0, seqNo=seq_no)]


async def test_TC_E_41_CS_retry_transaction_message_max_retry_count_reached(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        attempts, interval = 3, 10
        # Before: MessageAttempts 3, MessageAttemptInterval 10; Authorized; the TS leaves
        # the next TransactionEvents unanswered
        await before_retry(octt, attempts, interval, unanswered=attempts)
        # 5. the CablePluggedIn event, sent MessageAttempts times: each after the
        # MessageTimeout plus the interval times the transmissions before it
        first = await octt.expect_msg("TransactionEvent", within_s=5)
        retried = seq(first.payload)
        for n in range(1, attempts):
            gap = MESSAGE_TIMEOUT_S + interval * n
            await octt.advance(gap - 0.5)
            assert len(attempts_of(octt, retried)) == n  # not early
            await octt.advance(1)
            assert len(attempts_of(octt, retried)) == n + 1  # and on time
        times = attempts_of(octt, retried)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([40, 50], abs=0.6)
        # the TS waits one more iteration (timeout + interval x 3) and then a heartbeat:
        # the dropped message never comes again, and what was queued behind it goes on
        await octt.advance(MESSAGE_TIMEOUT_S + interval * attempts + 1)
        hb = await octt.next_heartbeat()
        assert hb.at > times[-1] + MESSAGE_TIMEOUT_S + interval * attempts
        assert len(attempts_of(octt, retried)) == attempts
        later = [e for e in octt.transaction_events(after=0) if seq(e) > retried]
        assert later  # the queue moved on


async def test_TC_E_50_CS_retry_transaction_message_max_retry_count_reached_callerror(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        attempts, interval = 3, 10
        # Before: MessageAttempts 3, interval 10; the TS answers CALLERROR InternalError
        await before_retry(octt, attempts, interval, rejected=attempts)
        # 5-6. sent MessageAttempts times, the interval times the transmissions before
        first = await octt.expect_msg("TransactionEvent", within_s=5)
        retried = seq(first.payload)
        for n in range(1, attempts):
            # to half a second before the next attempt: from the first one we start at
            # it, from later ones half a second past it (the previous step's advance)
            await octt.advance(interval * n - (0.5 if n == 1 else 1.0))
            assert len(attempts_of(octt, retried)) == n
            await octt.advance(1)
            assert len(attempts_of(octt, retried)) == n + 1
        times = attempts_of(octt, retried)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([10, 20], abs=0.6)
        # one more iteration (interval x 3), then the next heartbeat: no further attempt
        await octt.advance(interval * attempts + 1)
        hb = await octt.next_heartbeat()
        assert hb.at > times[-1] + interval * attempts
        assert len(attempts_of(octt, retried)) == attempts


async def test_TC_E_42_CS_retry_transaction_message_success_before_max_retry_count(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        attempts, interval = 3, 10
        # Before: MessageAttempts 3 (> 2), interval 10; the TS ignores the first request
        await before_retry(octt, attempts, interval, unanswered=1)
        first = await octt.expect_msg("TransactionEvent", within_s=5)
        retried = seq(first.payload)
        # 5-6. sent twice: after MessageTimeout + interval; the second one answered
        await octt.advance(MESSAGE_TIMEOUT_S + interval - 0.5)
        assert len(attempts_of(octt, retried)) == 1
        await octt.advance(1)
        times = attempts_of(octt, retried)
        assert len(times) == 2
        assert times[1] - times[0] == pytest.approx(40, abs=0.6)
        # one more iteration (timeout + interval x 2), then a heartbeat: no third one
        await octt.advance(MESSAGE_TIMEOUT_S + interval * 2 + 1)
        await octt.next_heartbeat()
        assert len(attempts_of(octt, retried)) == 2


async def test_TC_E_51_CS_retry_transaction_message_success_before_max_retry_count_callerror(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        attempts, interval = 3, 10
        # Before: MessageAttempts 3, interval 10; CALLERROR to the first, answer to the second
        await before_retry(octt, attempts, interval, rejected=1)
        first = await octt.expect_msg("TransactionEvent", within_s=5)
        retried = seq(first.payload)
        # 5-6. sent twice, the interval apart (a CALLERROR costs no MessageTimeout:
        # docs/ocpp-oca.md, readings); the second answered
        await octt.advance(interval - 0.5)
        assert len(attempts_of(octt, retried)) == 1
        await octt.advance(1)
        times = attempts_of(octt, retried)
        assert len(times) == 2
        assert times[1] - times[0] == pytest.approx(interval, abs=0.6)
        await octt.advance(interval * 2 + 1)
        await octt.next_heartbeat()
        assert len(attempts_of(octt, retried)) == 2


# ------------------------------------------------------------------ E12 offline


OFFLINE_WAIT_S = 90  # <Configured RetryBackOffWaitMinimum_duration>


async def go_offline_config(octt: Octt, **more: str) -> None:
    await octt.set_variables(
        OCPPCommCtrlr__OfflineThreshold=str(OFFLINE_WAIT_S + 60),
        OCPPCommCtrlr__RetryBackOffWaitMinimum=str(OFFLINE_WAIT_S),
        OCPPCommCtrlr__RetryBackOffRandomRange="0",
        **more,
    )


async def test_TC_E_40_CS_offline_behaviour_connection_loss_during_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxUpdatedMeasurands, TxUpdatedInterval 20, OfflineThreshold, back-off
        await go_offline_config(
            octt,
            SampledDataCtrlr__TxUpdatedMeasurands="Energy.Active.Import.Register",
            SampledDataCtrlr__TxUpdatedInterval="20",
        )
        tx = await started_and_charging(octt)
        # 1. TS closes the connection and refuses reconnects
        await octt.close_connection()
        # 2. TS waits RetryBackOffWaitMinimum before accepting
        await octt.advance(OFFLINE_WAIT_S)
        octt.accept_connections()
        await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
        # 3-4. the queued events: Updated, with meter values, offline true
        await octt.expect("TransactionEvent", within_s=5)
        await octt.settle()
        queued = octt.sent("TransactionEvent")
        assert len(queued) >= OFFLINE_WAIT_S // 20 - 1
        for event in queued:
            assert event["eventType"] == "Updated"
            assert event["meterValue"]
            assert event["offline"] is True
            assert event["transactionInfo"]["transactionId"] == tx


async def test_TC_E_43_CS_offline_behaviour_transaction_during_offline_period(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # (the station authorizes offline by OfflineTxForUnknownId: docs/ocpp-oca.md)
        await octt.set_variables(AuthCtrlr__OfflineTxForUnknownId="true")
        # 1. Memory State TransactionEventsInQueueEnded: TS closes and refuses; connect
        # the EV; present the card; present it again; disconnect; TS accepts
        await octt.close_connection()
        await octt.plug()
        await octt.present()
        await octt.advance(10)
        await octt.present()
        await octt.advance(5)
        await octt.unplug()
        octt.accept_connections()
        await octt.reconnected(within_s=120)
        # 2-3. every queued event offline; one Started, one Ended
        await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        events = octt.sent("TransactionEvent")
        assert all(e["offline"] is True for e in events)
        assert [e["eventType"] for e in events].count("Started") == 1
        assert [e["eventType"] for e in events].count("Ended") == 1
        assert [seq(e) for e in events] == list(range(len(events)))


async def test_TC_E_44_CS_offline_behaviour_stop_transaction_during_offline_period(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: OfflineThreshold, back-off; State is EnergyTransferStarted
        await go_offline_config(octt)
        tx = await started_and_charging(octt)
        # 1. TS closes and refuses; the same card; disconnect
        await octt.close_connection()
        await octt.present()
        await octt.advance(5)
        await octt.unplug()
        # 2. TS accepts the reconnection
        octt.accept_connections()
        await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
        # 3-4. all offline; one of them Ended
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["transactionInfo"]["transactionId"] == tx
        assert all(e["offline"] is True for e in octt.sent("TransactionEvent"))


# ------------------------------------------------------------------ E14 status


async def test_TC_E_28_CS_check_transaction_status_transaction_id_unknown(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. a random transactionId: not ongoing, nothing queued
        reply = await octt.call("GetTransactionStatus", transactionId=str(uuid.uuid4()))
        assert reply == {"ongoingIndicator": False, "messagesInQueue": False}


async def queue_while_offline(octt: Octt, **status_request: Any) -> dict[str, Any]:
    """E_29/E_33: Before: sampled values every 10 s, back-off; EnergyTransferStarted.
    1. TS closes and refuses; 2. waits RetryBackOffWaitMinimum, then accepts; 3. sends
    GetTransactionStatus (`status_request`, "tx" for the transaction's id) the moment
    the connection is restored; returns its answer."""
    await go_offline_config(
        octt,
        SampledDataCtrlr__TxUpdatedMeasurands="Energy.Active.Import.Register",
        SampledDataCtrlr__TxUpdatedInterval="10",
    )
    tx = await started_and_charging(octt)
    await octt.close_connection()
    await octt.advance(OFFLINE_WAIT_S)
    if status_request.pop("transactionId", None) == "tx":
        status_request["transactionId"] = tx
    answer = octt.at_next_connection("GetTransactionStatus", **status_request)
    octt.accept_connections()
    await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
    return await answer


async def test_TC_E_29_CS_check_transaction_status_ongoing_with_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before, 1-3 (queue_while_offline); 4. ongoing, messages in queue
        reply = await queue_while_offline(octt, transactionId="tx")
        assert reply == {"ongoingIndicator": True, "messagesInQueue": True}
        # 5-6. the queued events: Updated, meter values, offline
        event = await octt.expect("TransactionEvent", within_s=5, after=0, offline=True)
        assert event["eventType"] == "Updated" and event["meterValue"]


async def test_TC_E_30_CS_check_transaction_status_ongoing_without_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await started_and_charging(octt)
        # 1-2. ongoing, nothing queued
        reply = await octt.call("GetTransactionStatus", transactionId=tx)
        assert reply == {"ongoingIndicator": True, "messagesInQueue": False}


async def test_TC_E_31_CS_check_transaction_status_ended_with_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        await go_offline_config(octt)
        tx = await started_and_charging(octt)
        # TS closes and refuses; the same card (local stop); disconnect; TS accepts
        await octt.close_connection()
        await octt.present()
        await octt.advance(5)
        await octt.unplug()
        # TS accepts; 1-2. at once: not ongoing, messages in queue
        answer = octt.at_next_connection("GetTransactionStatus", transactionId=tx)
        octt.accept_connections()
        await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
        reply = await answer
        assert reply == {"ongoingIndicator": False, "messagesInQueue": True}
        # 3-4. the queued events, up to the Ended one
        await octt.expect("TransactionEvent", within_s=10, after=0, eventType="Ended")


async def test_TC_E_32_CS_check_transaction_status_ended_without_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: EnergyTransferStarted, then to ParkingBayUnoccupied (stop, unplug)
        tx = await started_and_charging(octt)
        await octt.stop_authorized()
        await octt.ev_disconnected()
        # 1-2. not ongoing, nothing queued
        reply = await octt.call("GetTransactionStatus", transactionId=tx)
        assert reply == {"ongoingIndicator": False, "messagesInQueue": False}


async def test_TC_E_33_CS_check_transaction_status_without_id_with_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before, 1-3 without a transactionId; 4. ongoingIndicator omitted, in queue
        reply = await queue_while_offline(octt)
        assert reply == {"messagesInQueue": True}
        event = await octt.expect("TransactionEvent", within_s=5, after=0, offline=True)
        assert event["eventType"] == "Updated" and event["meterValue"]


async def test_TC_E_34_CS_check_transaction_status_without_id_without_message_in_queue(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. ongoingIndicator omitted, nothing queued
        reply = await octt.call("GetTransactionStatus")
        assert reply == {"messagesInQueue": False}


# ------------------------------------------------------------------ C/E group offline


async def test_TC_E_45_CS_offline_stop_transaction_same_group_id(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        group = {"idToken": "GROUP001", "type": "Central"}
        octt.ts.token_info = {
            VALID_TOKEN: {"status": "Accepted", "groupIdToken": group},
            OTHER_TOKEN: {"status": "Accepted", "groupIdToken": group},
        }
        # Before: OfflineThreshold, back-off; Memory State IdTokenCached for both cards
        # (each authorized online once: the AuthorizeResponse fills the cache)
        await go_offline_config(octt)
        await octt.present(OTHER_TOKEN)
        await octt.expect("Authorize", within_s=5, idToken=id_token(OTHER_TOKEN))
        await octt.advance(70)  # the lone authorization lapses (EVConnectionTimeOut 60)
        await octt.expect("TransactionEvent", after=0, triggerReason="EVConnectTimeout")
        # State is EnergyTransferStarted with the first card (authorized first, then the EV)
        authorized = await octt.authorized()
        tx = authorized["transactionInfo"]["transactionId"]
        await octt.plug()
        await octt.energy_transfer_started()
        # 1. TS closes and refuses; the second card of the same group; disconnect
        await octt.close_connection()
        await octt.present(OTHER_TOKEN)
        await octt.advance(5)
        await octt.unplug()
        # 2. TS accepts
        octt.accept_connections()
        await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
        # 3-4. all offline; one Ended (stopped by the group member)
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["transactionInfo"]["transactionId"] == tx
        assert ended["triggerReason"] == "StopAuthorized"
        assert all(e["offline"] is True for e in octt.sent("TransactionEvent"))


async def test_a_card_of_a_lapsed_group_authorizes_the_next_transaction(
    rig: Callable[..., Any],
) -> None:
    """Found on the way to TC_E_45 (IdTokenCached by Main B, then EnergyTransferStarted
    cable first): not an OCA case of its own."""
    async with rig() as octt:
        group = {"idToken": "GROUP001", "type": "Central"}
        octt.ts.token_info = {
            VALID_TOKEN: {"status": "Accepted", "groupIdToken": group},
            OTHER_TOKEN: {"status": "Accepted", "groupIdToken": group},
        }
        await octt.present(OTHER_TOKEN)
        await octt.expect("TransactionEvent", within_s=70, triggerReason="EVConnectTimeout")
        started = await octt.ev_connected_pre_session()
        authorized = await octt.authorized()
        assert authorized["transactionInfo"] == {
            **authorized["transactionInfo"],
            "transactionId": started["transactionInfo"]["transactionId"],
        }
        assert authorized["eventType"] == "Updated"


# ------------------------------------------------------------------ F02 (with E03)


async def test_TC_F_04_CS_remote_start_first_cable_plugin_timeout(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        timeout_s = 40
        # Before: EVConnectionTimeOut <configured>; TxStartPoint Authorized; State is
        # Authorized (remote)
        await octt.set_variables(
            TxCtrlr__EVConnectionTimeOut=str(timeout_s), TxCtrlr__TxStartPoint="Authorized"
        )
        _, started = await octt.authorized_remotely(remote_start_id=4)
        assert started["eventType"] == "Started"
        at = octt.now()
        # 1-2. after the timeout: EVConnectTimeout, Ended (TxStopPoint Authorized), Timeout
        await octt.advance(timeout_s - 1)
        await octt.nothing("TransactionEvent", triggerReason="EVConnectTimeout")
        ended = await octt.expect_msg("TransactionEvent", within_s=2, eventType="Ended")
        assert ended.at - at == pytest.approx(timeout_s, abs=0.6)
        assert ended.payload["triggerReason"] == "EVConnectTimeout"
        assert ended.payload["transactionInfo"]["stoppedReason"] == "Timeout"
        # 3. Execute Reusable State Authorized (remote): the EVSE takes a new one
        _, again = await octt.authorized_remotely(remote_start_id=5)
        assert again["eventType"] == "Started"
        assert (
            again["transactionInfo"]["transactionId"]
            != (started["transactionInfo"]["transactionId"])
        )
