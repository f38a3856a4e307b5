"""OCA Part 6, block C: offline authorization of an unknown idToken (C15), Core case
TC_C_26, on the whole firmware (`rig.octt`). Steps as comments.

Reading: "Unknown Id" is a card the station has never seen (neither cached nor in the
local list) and the CSMS does not know either: back online, the TS answers the queued
TransactionEvents with idTokenInfo Invalid. With StopTxOnInvalidId false and
MaxEnergyOnInvalidId 0 the transaction stays and the energy stops: the station reports
chargingState SuspendedEVSE. Step 1's "all offline" is read for the events queued while
the station was offline; the SuspendedEVSE event that the TS's answer causes is sent
once the station is back, so with offline false (the station is online then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rig.octt import id_token

UNKNOWN = "57A26E20"  # known to neither the station nor the TS
OFFLINE_WAIT_S = 45  # RetryBackOffWaitMinimum while the TS refuses (back before the
# first TxUpdatedInterval sample, 60 s)


async def test_TC_C_26_CS_offline_authorization_unknown_id(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: LocalAuthListEnabled true, LocalPreAuthorize true,
        # OfflineTxForUnknownIdEnabled true, LocalAuthorizeOffline true,
        # MaxEnergyOnInvalidId 0, StopTxOnInvalidId false
        await octt.set_variables(
            LocalAuthListCtrlr__Enabled="true",
            AuthCtrlr__LocalPreAuthorize="true",
            AuthCtrlr__OfflineTxForUnknownId="true",
            AuthCtrlr__LocalAuthorizeOffline="true",
            TxCtrlr__MaxEnergyOnInvalidId="0",
            TxCtrlr__StopTxOnInvalidId="false",
            OCPPCommCtrlr__OfflineThreshold=str(OFFLINE_WAIT_S + 60),
            OCPPCommCtrlr__RetryBackOffWaitMinimum=str(OFFLINE_WAIT_S),
            OCPPCommCtrlr__RetryBackOffRandomRange="0",
        )
        octt.ts.token_info[UNKNOWN] = {"status": "Invalid"}
        octt.ts.transaction_token_info[UNKNOWN] = {"status": "Invalid"}
        # Reusable State StartOfflineTransaction: the TS closes the connection and
        # refuses reconnects; (no parking bay sensor); the unknown card; the EV plugs in
        await octt.close_connection()
        offline_from = len(octt.ts.log)
        await octt.present(UNKNOWN)
        await octt.plug()
        await octt.advance(10)
        assert octt.sim().contactor_closed  # charging offline on the unknown card
        # ... the TS accepts the reconnection
        octt.accept_connections()
        await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
        # 1-2. the TransactionEvents of the offline period, all offline; the TS answers
        # the card Invalid; then chargingState SuspendedEVSE
        suspended = await octt.expect(
            "TransactionEvent",
            within_s=30,
            after=offline_from,
            transactionInfo={"chargingState": "SuspendedEVSE"},
        )
        events = octt.sent("TransactionEvent", after=offline_from)
        queued = events[: events.index(suspended)]
        assert queued and all(e.get("offline") is True for e in queued), queued
        assert any(e.get("idToken") == id_token(UNKNOWN) for e in queued)
        assert queued[0]["eventType"] == "Started"
        assert not octt.sim().contactor_closed
        # Manual Action: present the card (again: its own transaction); Manual Action:
        # unplug the cable
        await octt.present(UNKNOWN)
        presented = octt.step_mark
        await octt.unplug()
        # 3-4. TransactionEvent with triggerReason StopAuthorized, for that transaction
        # (TxStopPoint Authorized: it ends there)
        tx = suspended["transactionInfo"]["transactionId"]
        stop = await octt.expect(
            "TransactionEvent", within_s=10, after=presented, triggerReason="StopAuthorized"
        )
        assert stop["transactionInfo"]["transactionId"] == tx
        assert stop["eventType"] == "Ended" and stop["transactionInfo"]["stoppedReason"] == "Local"
