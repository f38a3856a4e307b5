"""A token accepted offline that the CSMS calls Invalid once the station is back
(OCA C12/C15 cases TC_C_15/16/17/18/26, E06 case TC_E_16): StopTxOnInvalidId ends the
transaction; without it the transaction stays and the energy stops at
MaxEnergyOnInvalidId Wh (the EVSE suspends)."""

from __future__ import annotations

from typing import Any

import pytest

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import EVSE_ID, Station, station
from tests.support.ocpp_steps import (
    CHARGE,
    CS_STOPS,
    OFFER,
    PLUG,
    authorize,
    cached,
    configure,
    meter,
    step,
)


def stops(st: Station) -> int:
    return sum(1 for m in st.messages if m.name == "stop_charging" and m.type == "request")


async def offline_session(st: Station, token: str = "A11CE0A1") -> None:
    """StartOfflineTransaction: the token, the cable and energy while the CSMS is away."""
    meter(st, 1000.0)
    assert await authorize(st, token) == "accepted"
    for facts in (PLUG, OFFER, CHARGE):
        await step(st, facts)


@pytest.mark.parametrize("max_energy", ["0", "500"])
async def test_TC_C_16_C_18_CS_stop_tx_on_invalid_id_ends_it(max_energy: str) -> None:
    port = free_port()
    async with station(f"ws://127.0.0.1:{port}/ocpp", auth_cache=await cached("Accepted")) as st:
        configure(
            st,
            AuthCtrlr__LocalPreAuthorize="true",
            TxCtrlr__StopTxOnInvalidId="true",
            TxCtrlr__MaxEnergyOnInvalidId=max_energy,
        )
        await offline_session(st)
        state = CsmsState(interval=300, transaction_token_status="Invalid")
        async with ocpp_csms(state, port):
            await st.wait_for("stop_charging", evse_id=EVSE_ID)
            ended = await state.wait_for("TransactionEvent", count=5)
            events = [p for a, p in state.received if a == "TransactionEvent"]
            assert all(p["offline"] for p in events[:4])  # what happened while away
            assert events[0]["id_token"]["id_token"] == "A11CE0A1"
            assert (ended["event_type"], ended["trigger_reason"]) == ("Ended", "Deauthorized")
            assert ended["transaction_info"]["stopped_reason"] == "DeAuthorized"


@pytest.mark.parametrize("max_energy", [0, 10000])
async def test_TC_C_15_C_17_CS_without_stop_tx_on_invalid_id_the_energy_stops(
    max_energy: int,
) -> None:
    port = free_port()
    async with station(f"ws://127.0.0.1:{port}/ocpp", auth_cache=await cached("Accepted")) as st:
        configure(
            st,
            AuthCtrlr__LocalPreAuthorize="true",
            TxCtrlr__StopTxOnInvalidId="false",
            TxCtrlr__MaxEnergyOnInvalidId=str(max_energy),
        )
        await offline_session(st)
        state = CsmsState(interval=300, transaction_token_status="Invalid")
        async with ocpp_csms(state, port):
            await state.wait_for("TransactionEvent", count=4)
            client: Any = st.client  # type: ignore[attr-defined]
            if max_energy:
                meter(st, 1000.0 + max_energy - 1)  # not yet
                await step(st, [])
                assert stops(st) == 0 and client.tx.transaction_id(1) is not None
                meter(st, 1000.0 + max_energy)
            await st.wait_for("stop_charging", evse_id=EVSE_ID)
            await step(st, CS_STOPS)
            suspended = await state.wait_for("TransactionEvent", count=5)
            assert (suspended["event_type"], suspended["trigger_reason"]) == (
                "Updated",
                "ChargingStateChanged",
            )
            assert suspended["transaction_info"]["charging_state"] == "SuspendedEVSE"
            assert client.tx.transaction_id(1) is not None and stops(st) == 1


async def test_TC_C_26_CS_an_unknown_token_offline_is_suspended_once_found_invalid() -> None:
    port = free_port()
    async with station(f"ws://127.0.0.1:{port}/ocpp") as st:
        configure(
            st,
            AuthCtrlr__OfflineTxForUnknownId="true",
            TxCtrlr__StopTxOnInvalidId="false",
            TxCtrlr__MaxEnergyOnInvalidId="0",
        )
        await offline_session(st, "57A26E20")
        state = CsmsState(interval=300, transaction_token_status="Invalid")
        async with ocpp_csms(state, port):
            await st.wait_for("stop_charging", evse_id=EVSE_ID)
            await step(st, CS_STOPS)
            await state.wait_for("TransactionEvent", count=5)
            events = [p for a, p in state.received if a == "TransactionEvent"]
            assert all(p["offline"] for p in events[:4])
            assert events[-1]["transaction_info"]["charging_state"] == "SuspendedEVSE"
            assert "Ended" not in [p["event_type"] for p in events]
