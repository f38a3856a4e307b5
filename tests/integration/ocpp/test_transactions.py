"""Transactions through the OCPP client and its durable outbox (OCA E and F cases)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.bus import api
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import EVSE_ID, Station, station
from tests.support.ocpp_steps import cs, events, queue_empty
from tests.support.polling import eventually

TOKEN = {"evse_id": EVSE_ID, "id_token": "04A1B2C3", "token_type": "ISO14443"}


async def test_TC_E_03_CS_cable_plugin_first() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        cs(st, "cp_status", connector_id=1, state="B1")
        reply = await st.bus.request(api.request("authorization", "cs/josev", TOKEN), 5)
        assert reply.data == {"status": "accepted"}
        # as our CS reports a step: the contactor first, then the CP state, back to back
        steps = [
            [("cp_status", {"state": "B2"})],
            [("cs_contactor_status", {"status": "closed"}), ("cp_status", {"state": "C2"})],
            [("cs_contactor_status", {"status": "opened"}), ("cp_status", {"state": "B2"})],
            [("cp_status", {"state": "A1"})],
        ]
        for step in steps:
            for name, data in step:
                cs(st, name, **({"connector_id": 1} if name == "cp_status" else {}), **data)
            await asyncio.sleep(0.01)
        ended = await state.wait_for("TransactionEvent", count=6)
        assert events(state) == [
            ("Started", "CablePluggedIn", 0, "EVConnected"),
            ("Updated", "Authorized", 1, "EVConnected"),
            ("Updated", "ChargingStateChanged", 2, "SuspendedEV"),  # offered, not taken yet
            ("Updated", "ChargingStateChanged", 3, "Charging"),
            ("Updated", "ChargingStateChanged", 4, "SuspendedEV"),  # the EV stopped taking
            ("Ended", "EVCommunicationLost", 5, "Idle"),
        ]
        assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
        tx_events = [p for a, p in state.received if a == "TransactionEvent"]
        assert len({p["transaction_info"]["transaction_id"] for p in tx_events}) == 1
        assert tx_events[1]["id_token"] == {"id_token": "04A1B2C3", "type": "ISO14443"}
        assert all("offline" not in p for p in tx_events)


async def test_TC_E_04_E_06_CS_authorization_first_then_stopped_with_the_same_token() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        await st.bus.request(api.request("authorization", "cs/josev", TOKEN), 5)
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent", count=2)
        stops: list[Any] = []
        st.bus.subscribe_all(
            lambda m: (
                stops.append(m) if m.name == "stop_charging" and m.type == "request" else None
            ),
            topic="josev/cs",
        )
        await st.bus.request(api.request("authorization", "cs/josev", TOKEN), 5)
        ended = await state.wait_for("TransactionEvent", count=3)
        assert events(state) == [
            ("Started", "Authorized", 0, "Idle"),
            ("Updated", "CablePluggedIn", 1, "EVConnected"),
            ("Ended", "StopAuthorized", 2, "EVConnected"),
        ]
        assert ended["transaction_info"]["stopped_reason"] == "Local"
        assert [m.data for m in stops] == [{"evse_id": EVSE_ID}]


async def test_TC_F_01_F_08_F_09_CS_remote_start_on_a_plugged_ev_then_remote_stop() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")
        csms = state.stations[0]
        started = await csms.call(
            call.RequestStartTransaction(
                id_token={"id_token": "REMOTE1", "type": "Central"}, remote_start_id=77, evse_id=1
            )
        )
        assert started.status == "Accepted" and started.transaction_id
        update = await st.wait_for("authorization", status="accepted", id_token="REMOTE1")
        assert update.type == "update" and update.data["evse_id"] == EVSE_ID
        remote = await state.wait_for("TransactionEvent", count=2)
        assert (remote["event_type"], remote["trigger_reason"]) == ("Updated", "RemoteStart")
        assert remote["id_token"] == {"id_token": "REMOTE1", "type": "Central"}
        assert remote["transaction_info"]["remote_start_id"] == 77
        other = await csms.call(call.RequestStopTransaction(transaction_id="not-this-one"))
        assert other.status == "Rejected"  # TC_F_09: a transactionId that is not ongoing
        assert state.actions().count("TransactionEvent") == 2
        stopped = await csms.call(
            call.RequestStopTransaction(transaction_id=started.transaction_id)
        )
        assert stopped.status == "Accepted"
        await st.wait_for("stop_charging", evse_id=EVSE_ID)
        ended = await state.wait_for("TransactionEvent", count=3)
        assert (ended["event_type"], ended["trigger_reason"]) == ("Ended", "RemoteStop")
        assert ended["transaction_info"]["stopped_reason"] == "Remote"


async def test_TC_E_43_E_44_CS_a_transaction_during_an_offline_period_is_queued() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    state = CsmsState(interval=300)
    async with station(url) as st:
        cs(st, "cp_status", connector_id=1, state="B1")
        free = api.request(
            "authorization", "cs/josev", {"evse_id": EVSE_ID, "token_type": "no_authorization"}
        )
        assert (await st.bus.request(free, 5)).data == {"status": "accepted"}
        cs(st, "cp_status", connector_id=1, state="A1")
        await asyncio.sleep(0.3)
        async with ocpp_csms(state, port):
            await state.wait_for("TransactionEvent", count=3)
            assert events(state) == [
                ("Started", "CablePluggedIn", 0, "EVConnected"),
                ("Updated", "Authorized", 1, "EVConnected"),
                ("Ended", "EVCommunicationLost", 2, "Idle"),
            ]
            payloads = [p for a, p in state.received if a == "TransactionEvent"]
            assert all(p["offline"] is True for p in payloads)
            assert state.actions().index("BootNotification") < state.actions().index(
                "TransactionEvent"
            )


async def test_TC_E_50_CS_message_attempts_from_the_device_model_bound_the_retries() -> None:
    state = CsmsState(interval=300, reject_transaction_events=99)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        csms = state.stations[0]
        settings = [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": name, "instance": "TransactionEvent"},
                "attribute_value": value,
            }
            for name, value in (("MessageAttempts", "2"), ("MessageAttemptInterval", "0"))
        ]
        reply = await csms.call(call.SetVariables(set_variable_data=settings))
        assert [r["attribute_status"] for r in reply.set_variable_result] == ["Accepted"] * 2
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent", count=2)  # the first try and one retry
        client: Any = st.client  # type: ignore[attr-defined]
        await eventually(queue_empty(client))
        assert state.actions().count("TransactionEvent") == 2  # then dropped, not a third


def tx_profile(purpose: str = "TxProfile") -> dict[str, Any]:
    return {
        "id": 5,
        "stack_level": 0,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 10.0}],
            }
        ],
    }


async def test_remote_start_keeps_its_tx_profile_for_smart_charging() -> None:
    state = CsmsState(interval=300)
    store = Store(Path(tempfile.mkdtemp()) / "state.db")
    async with ocpp_csms(state) as url, station(url, state_store=store) as st:
        await state.wait_for("StatusNotification")
        csms = state.stations[0]
        token = {"id_token": "REMOTE1", "type": "Central"}
        wrong = call.RequestStartTransaction(
            id_token=token,
            remote_start_id=1,
            evse_id=1,
            charging_profile=tx_profile("TxDefaultProfile"),
        )
        assert (await csms.call(wrong)).status == "Rejected"
        right = call.RequestStartTransaction(
            id_token=token, remote_start_id=2, evse_id=1, charging_profile=tx_profile()
        )
        assert (await csms.call(right)).status == "Accepted"
        client: Any = st.client  # type: ignore[attr-defined]
        assert client.charging_profiles[1]["chargingSchedule"][0]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 10.0}
        ]
        saved = await store.get("ocpp_charging_profiles")
        assert saved == {"1": client.charging_profiles[1]}  # on disk for after a reboot


def ws_statuses(st: Station) -> list[str]:
    return [m.data["status"] for m in st.messages if m.name == "websocket_status"]


async def test_TC_E_40_CS_connection_loss_during_a_transaction() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    online, later = CsmsState(interval=300), CsmsState(interval=300)
    async with station(url) as st:
        async with ocpp_csms(online, port):
            await online.wait_for("StatusNotification")
            cs(st, "cp_status", connector_id=1, state="B1")
            started = await online.wait_for("TransactionEvent")
            connected = len(ws_statuses(st))
        # until the station noticed the loss
        await eventually(lambda: "disconnected" in ws_statuses(st)[connected:])
        cs(st, "cp_status", connector_id=1, state="A1")
        async with ocpp_csms(later, port):
            while True:  # the Started may come again, if its answer was lost with the link
                sent = [p for a, p in later.received if a == "TransactionEvent"]
                if sent and sent[-1]["event_type"] == "Ended":
                    break
                await later.wait_for("TransactionEvent", count=len(sent) + 1)
    ended = sent[-1]
    assert all(p == started for p in sent[:-1])  # a repeat is identical: de-duplicable
    assert "offline" not in started and started["seq_no"] == 0
    assert (ended["event_type"], ended["seq_no"], ended["offline"]) == ("Ended", 1, True)
    assert (
        ended["transaction_info"]["transaction_id"] == started["transaction_info"]["transaction_id"]
    )


async def attempts_until_answered(state: CsmsState, **overrides: object) -> list[str]:
    """MessageAttempts 3, interval 0: the triggers of the TransactionEvents the CSMS saw."""
    async with (
        ocpp_csms(state) as url,
        station(url, message_attempts_tx=3, message_attempt_interval_tx_s=0, **overrides) as st,
    ):
        await state.wait_for("StatusNotification")
        client: Any = st.client  # type: ignore[attr-defined]
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent", count=2)
        await eventually(queue_empty(client))  # answered: the queue is empty
        return [p["trigger_reason"] for a, p in state.received if a == "TransactionEvent"]


async def test_TC_E_51_CS_a_callerror_then_success_before_the_max() -> None:
    state = CsmsState(interval=300, reject_transaction_events=1)
    assert await attempts_until_answered(state) == ["CablePluggedIn", "CablePluggedIn"]


async def test_TC_E_42_CS_no_answer_then_success_before_the_max() -> None:
    state = CsmsState(interval=300, unanswered_transaction_events=1)
    triggers = await attempts_until_answered(state, call_timeout_s=0.3)
    assert triggers == ["CablePluggedIn", "CablePluggedIn"]


async def test_TC_E_41_CS_no_answer_until_the_max_drops_the_message() -> None:
    state = CsmsState(interval=300, unanswered_transaction_events=99)
    async with (
        ocpp_csms(state) as url,
        station(
            url, message_attempts_tx=3, message_attempt_interval_tx_s=0, call_timeout_s=0.2
        ) as st,
    ):
        await state.wait_for("StatusNotification")
        client: Any = st.client  # type: ignore[attr-defined]
        cs(st, "cp_status", connector_id=1, state="B1")
        await state.wait_for("TransactionEvent")  # queued and sent once
        # three unanswered attempts, then the queue lets it go
        await eventually(queue_empty(client))
        third = await state.wait_for("TransactionEvent", count=3)
        assert third["trigger_reason"] == "CablePluggedIn" and third["seq_no"] == 0
