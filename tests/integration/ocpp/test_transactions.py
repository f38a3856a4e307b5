"""Transactions through the OCPP client and its durable outbox (F cases; the OCA E cases
run on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, station
from tests.support.ocpp_steps import cs


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
