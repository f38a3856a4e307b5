"""Remote start and stop around the transaction options, the test playing the CS step by
step (the OCA E option cases run on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import Station, station
from tests.support.ocpp_steps import (
    CHARGE,
    OFFER,
    PLUG,
    authorize,
    booted,
    step,
    tx_events,
    wait_ended,
)

# ---------------------------------------------------------------- start options (E01)


# ---------------------------------------------------------------- stop options (E06)


async def charging_by_alice(state: CsmsState, st: Station, **variables: str) -> Any:
    csms = await booted(state, st, **variables)
    assert await authorize(st, "A11CE0A1") == "accepted"
    for facts in (PLUG, OFFER, CHARGE):
        await step(st, facts)
    await state.wait_for("TransactionEvent", count=4)  # Started, Updated: EVConnected,
    return csms  # SuspendedEV (offered), Charging


async def test_remote_stop_with_stop_point_authorized() -> None:
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


# ---------------------------------------------------------------- timeouts, EV not ready
