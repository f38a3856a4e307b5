"""A token accepted offline that the CSMS calls Invalid once the station is back (C15), in
the OCPP client alone with a played CS. The OCA case TC_C_26 runs on the whole firmware:
tests/integration/oca/test_c_offline.py."""

from __future__ import annotations

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import EVSE_ID, Station, station
from tests.support.ocpp_steps import (
    CHARGE,
    CS_STOPS,
    OFFER,
    PLUG,
    authorize,
    configure,
    meter,
    step,
)


async def offline_session(st: Station, token: str = "A11CE0A1") -> None:
    """StartOfflineTransaction: the token, the cable and energy while the CSMS is away."""
    meter(st, 1000.0)
    assert await authorize(st, token) == "accepted"
    for facts in (PLUG, OFFER, CHARGE):
        await step(st, facts)


async def test_an_unknown_token_accepted_offline_is_suspended_once_found_invalid() -> None:
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
