"""GetTransactionStatus (OCA E14 cases TC_E_28 to TC_E_34): is the transaction ongoing,
are messages of it (or of any transaction) still queued? The test CSMS leaves chosen
TransactionEvents unanswered, so they stay in the station's queue while it asks."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import station
from tests.support.ocpp_steps import OFFER, PLUG, UNPLUG, booted, queue_empty, step
from tests.support.polling import eventually


async def status(csms: Any, tx_id: str | None = None) -> tuple[bool | None, bool]:
    reply = await csms.call(call.GetTransactionStatus(transaction_id=tx_id))
    return reply.ongoing_indicator, reply.messages_in_queue


async def test_TC_E_28_E_34_CS_unknown_transaction_and_nothing_queued() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        assert await status(csms, "4f1c0a7e-unknown") == (False, False)
        assert await status(csms) == (None, False)  # ongoingIndicator omitted


async def test_TC_E_29_E_30_E_31_E_32_E_33_CS_with_and_without_messages_in_queue() -> None:
    state = CsmsState(interval=300)
    # a long message timeout: the unanswered event stays queued while the CSMS asks
    async with ocpp_csms(state) as url, station(url, call_timeout_s=60) as st:
        csms = await booted(state, st)
        client: Any = st.client  # type: ignore[attr-defined]
        await step(st, PLUG)
        tx_id = (await state.wait_for("TransactionEvent"))["transaction_info"]["transaction_id"]
        await eventually(queue_empty(client))
        assert await status(csms, tx_id) == (True, False)  # TC_E_30
        state.unanswered_transaction_events = 1
        await step(st, OFFER)  # an Updated (SuspendedEV) the CSMS does not answer
        await state.wait_for("TransactionEvent", count=2)
        assert await status(csms, tx_id) == (True, True)  # TC_E_29
        assert await status(csms) == (None, True)  # TC_E_33
        await step(st, UNPLUG)  # the Ended waits behind the unanswered Updated
        assert await status(csms, tx_id) == (False, True)  # TC_E_31
        assert await status(csms, "4f1c0a7e-unknown") == (False, False)
        await state.connections[0].close()
        # the station reconnects and sends what is queued; then nothing is
        await eventually(queue_empty(client), 30)
        ended = [p for a, p in state.received if a == "TransactionEvent"][-1]
        assert ended["event_type"] == "Ended"
        assert await status(state.stations[-1], tx_id) == (False, False)  # TC_E_32
