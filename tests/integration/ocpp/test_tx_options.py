"""Start and stop options of a transaction (OCA E01/E06 option cases), the cable plug-in
timeout (E03, F02) and the EV not ready (E38): the CSMS sets TxStartPoint/TxStopPoint
with SetVariables, the test plays the CS step by step as ours reports one."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, Station, station
from tests.support.ocpp_steps import (
    CHARGE,
    CS_STOPS,
    EV_PAUSES,
    OFFER,
    PLUG,
    UNPLUG,
    authorize,
    booted,
    events,
    step,
    tx_events,
    wait_ended,
)


async def remote_start(csms: Any, token: str = "REMOTE1") -> Any:
    reply = await csms.call(
        call.RequestStartTransaction(
            id_token={"id_token": token, "type": "Central"}, remote_start_id=7, evse_id=1
        )
    )
    assert reply.status == "Accepted"
    return reply


# ---------------------------------------------------------------- start options (E01)


async def test_TC_E_09_CS_start_option_ev_connected() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await booted(state, st, TxCtrlr__TxStartPoint="EVConnected")
        await step(st, PLUG)
        started = await state.wait_for("TransactionEvent")
        assert (started["event_type"], started["trigger_reason"]) == ("Started", "CablePluggedIn")
        assert started["transaction_info"]["charging_state"] == "EVConnected"
        assert (await state.wait_for("StatusNotification", count=2))["connector_status"] == (
            "Occupied"
        )


async def test_TC_E_10_CS_start_option_authorized_local() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await booted(state, st, TxCtrlr__TxStartPoint="Authorized")
        assert await authorize(st, "A11CE0A1") == "accepted"
        assert await state.wait_for("Authorize") == {
            "id_token": {"id_token": "A11CE0A1", "type": "ISO14443"}
        }
        started = await state.wait_for("TransactionEvent")
        assert (started["event_type"], started["trigger_reason"]) == ("Started", "Authorized")
        assert started["id_token"] == {"id_token": "A11CE0A1", "type": "ISO14443"}


async def test_TC_E_13_CS_start_option_authorized_remote() -> None:
    """AuthCtrlr.AuthorizeRemoteStart is ReadOnly false: no AuthorizeRequest (F01.FR.02)."""
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st, TxCtrlr__TxStartPoint="Authorized")
        reply = await remote_start(csms)
        started = await state.wait_for("TransactionEvent")
        assert (started["event_type"], started["trigger_reason"]) == ("Started", "RemoteStart")
        assert started["transaction_info"]["remote_start_id"] == 7
        assert reply.transaction_id == started["transaction_info"]["transaction_id"]
        assert "Authorize" not in state.actions()


@pytest.mark.parametrize(
    ("start_point", "starts_at"),
    [("PowerPathClosed", "contactor closed"), ("EnergyTransfer", "EV takes energy")],
)
async def test_TC_E_01_E_02_CS_start_options_power_path_closed_and_energy_transfer(
    start_point: str, starts_at: str
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await booted(state, st, TxCtrlr__TxStartPoint=start_point)
        assert await authorize(st, "A11CE0A1") == "accepted"
        await step(st, PLUG + OFFER)
        await step(st, [("cs_contactor_status", "closed")])  # the EV not drawing yet
        if start_point == "EnergyTransfer":
            assert "TransactionEvent" not in state.actions()
            await step(st, [("cp_status", "C2")])
        started = await state.wait_for("TransactionEvent")
        assert (started["event_type"], started["trigger_reason"]) == (
            "Started",
            "ChargingStateChanged",
        ), starts_at
        assert started["id_token"] == {"id_token": "A11CE0A1", "type": "ISO14443"}
        expected = "Charging" if start_point == "EnergyTransfer" else "SuspendedEV"
        assert started["transaction_info"]["charging_state"] == expected


# ---------------------------------------------------------------- stop options (E06)


async def charging_by_alice(state: CsmsState, st: Station, **variables: str) -> Any:
    csms = await booted(state, st, **variables)
    assert await authorize(st, "A11CE0A1") == "accepted"
    for facts in (PLUG, OFFER, CHARGE):
        await step(st, facts)
    await state.wait_for("TransactionEvent", count=4)  # Started, Updated: EVConnected,
    return csms  # SuspendedEV (offered), Charging


async def test_TC_E_06_E_15_CS_stop_option_stop_authorized_local() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await charging_by_alice(state, st, TxCtrlr__TxStopPoint="Authorized")
        assert await authorize(st, "A11CE0A1") == "accepted"  # the same card again
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == (
            "StopAuthorized",
            "Local",
        )
        await st.wait_for("stop_charging", evse_id=EVSE_ID)


async def test_TC_E_21_F_08_CS_stop_option_stop_authorized_remote() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await charging_by_alice(state, st, TxCtrlr__TxStopPoint="Authorized")
        tx_id = tx_events(state)[0]["transaction_info"]["transaction_id"]
        stop = await csms.call(call.RequestStopTransaction(transaction_id=tx_id))
        assert stop.status == "Accepted"
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == (
            "RemoteStop",
            "Remote",
        )


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("stop_point", ["PowerPathClosed", "EnergyTransfer"])
async def test_TC_E_07_E_35_E_08_CS_stop_options_power_path_and_energy_transfer(
    stop_point: str, remote: bool
) -> None:
    """The stop is told at once (StopAuthorized/RemoteStop); the transaction ends when the
    CS has opened the power path, with the reason of the stop."""
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await charging_by_alice(state, st, TxCtrlr__TxStopPoint=stop_point)
        if remote:
            tx_id = tx_events(state)[0]["transaction_info"]["transaction_id"]
            assert (await csms.call(call.RequestStopTransaction(transaction_id=tx_id))).status == (
                "Accepted"
            )
        else:
            assert await authorize(st, "A11CE0A1") == "accepted"
        told = await state.wait_for("TransactionEvent", count=5)
        assert (told["event_type"], told["trigger_reason"]) == (
            "Updated",
            "RemoteStop" if remote else "StopAuthorized",
        )
        await st.wait_for("stop_charging", evse_id=EVSE_ID)
        await step(st, CS_STOPS)
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["charging_state"]) == (
            "ChargingStateChanged",
            "EVConnected",  # not authorized to resume
        )
        assert ended["transaction_info"]["stopped_reason"] == ("Remote" if remote else "Local")


async def test_TC_E_22_CS_stop_option_energy_transfer_suspended_by_the_ev() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await charging_by_alice(state, st, TxCtrlr__TxStopPoint="EnergyTransfer")
        await step(st, EV_PAUSES)
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["charging_state"]) == (
            "ChargingStateChanged",
            "SuspendedEV",
        )
        assert ended["transaction_info"]["stopped_reason"] == "StoppedByEV"


@pytest.mark.parametrize("stop_point", ["EVConnected", "Authorized", "PowerPathClosed"])
async def test_TC_E_14_E_17_E_20_E_37_E_54_CS_unplugging_ends_the_transaction(
    stop_point: str,
) -> None:
    """The Josev API's cp_status has no proximity pilot: the station cannot tell which end
    of the cable was pulled, so every unplug is handled as one on the EV side with
    StopTxOnEVSideDisconnect true: EVCommunicationLost, EVDisconnected, Idle."""
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await charging_by_alice(state, st, TxCtrlr__TxStopPoint=stop_point)
        await step(st, EV_PAUSES)  # EnergyTransferSuspended
        await step(st, UNPLUG)  # the contactor opens and the EV is gone in one step
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["charging_state"]) == (
            "EVCommunicationLost",
            "Idle",
        )
        assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
        statuses = [p["connector_status"] for a, p in state.received if a == "StatusNotification"]
        assert statuses[-1] == "Available"
        assert sum(p["event_type"] == "Ended" for p in tx_events(state)) == 1


# ---------------------------------------------------------------- timeouts, EV not ready


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
async def test_TC_E_39_E_05_F_04_CS_no_cable_within_the_connection_timeout(remote: bool) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st, TxCtrlr__EVConnectionTimeOut="1")
        if remote:
            await remote_start(csms)
        else:
            assert await authorize(st, "A11CE0A1") == "accepted"
        started = await state.wait_for("TransactionEvent")  # TxStartPoint has Authorized
        assert started["event_type"] == "Started"
        ended = await wait_ended(state)
        assert (ended["trigger_reason"], ended["transaction_info"]["stopped_reason"]) == (
            "EVConnectTimeout",
            "Timeout",
        )
        await st.wait_for("stop_charging", evse_id=EVSE_ID)  # the CS drops it too
        await step(st, PLUG)  # too late: a new transaction, not authorized
        late = await state.wait_for("TransactionEvent", count=3)
        assert (late["event_type"], late["trigger_reason"]) == ("Started", "CablePluggedIn")
        assert "id_token" not in late
        assert await authorize(st, "A11CE0A1") == "accepted"  # E05: and now it goes on
        assert (await state.wait_for("TransactionEvent", count=4))["trigger_reason"] == (
            "Authorized"
        )


async def test_TC_F_03_CS_remote_start_first_then_the_cable() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        await remote_start(csms)
        await st.wait_for("authorization", status="accepted", id_token="REMOTE1")
        for facts in (PLUG, OFFER, CHARGE):
            await step(st, facts)
        await state.wait_for("TransactionEvent", count=4)
        assert events(state) == [
            ("Started", "RemoteStart", 0, "Idle"),
            ("Updated", "CablePluggedIn", 1, "EVConnected"),
            ("Updated", "ChargingStateChanged", 2, "SuspendedEV"),
            ("Updated", "ChargingStateChanged", 3, "Charging"),
        ]
        assert "Authorize" not in state.actions()  # AuthorizeRemoteStart is false


async def test_TC_E_38_CS_an_ev_not_ready_is_suspended_ev() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await booted(state, st)
        assert await authorize(st, "A11CE0A1") == "accepted"
        await step(st, PLUG)
        await step(st, OFFER)  # and the EV stays in B
        suspended = await state.wait_for("TransactionEvent", count=3)
        assert suspended["trigger_reason"] == "ChargingStateChanged"
        assert suspended["transaction_info"]["charging_state"] == "SuspendedEV"
