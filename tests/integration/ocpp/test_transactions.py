"""Transactions through the OCPP client and its durable outbox (the OCA E and F cases run
on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import station


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
