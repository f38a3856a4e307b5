"""OCA Part 6, block C (Authorization), Core cases, on the whole firmware (`rig.octt`).

One test per case (or one parameter id per case), its steps in order as comments.
Memory State IdTokenCached is reached by its Main B (`Octt.id_token_cached`): the TS
answers the card's AuthorizeRequest with the idTokenInfo the case needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rig.octt import OTHER_TOKEN, VALID_TOKEN, Octt, id_token

INVALID = "DEADBEEF"
BLOCKED = "B10CED01"
EXPIRED = "E0E0E0E1"
MASTER = "AA55AA55"
GROUP = {"idToken": "GROUP001", "type": "Central"}
MASTER_GROUP = {"idToken": "MASTERPASS", "type": "Central"}
MESSAGE_TIMEOUT_S = 30  # <Configured message timeout>: the station's MessageTimeout
OFFLINE_WAIT_S = 90


async def nothing_more(octt: Octt, action: str = "TransactionEvent", **fields: Any) -> None:
    """ "The OCTT waits <Configured message timeout> seconds": nothing of the kind came."""
    await octt.advance(MESSAGE_TIMEOUT_S)
    await octt.nothing(action, **fields)


def energy_offered(octt: Octt, evse: int = 1) -> bool:
    return octt.sim(evse).out.pwm_duty is not None


# ------------------------------------------------------------------ C01 local start


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param(INVALID, "Invalid", id="TC_C_02_invalid"),
        pytest.param(BLOCKED, "Blocked", id="TC_C_06_blocked"),
        pytest.param(EXPIRED, "Expired", id="TC_C_07_expired"),
        pytest.param(INVALID, "Unknown", id="TC_C_56_unknown"),
    ],
)
async def test_TC_C_02_06_07_56_CS_local_start_authorization_refused(
    rig: Callable[..., Any], token: str, status: str
) -> None:
    async with rig() as octt:
        # Before: State is EVConnectedPreSession
        started = await octt.ev_connected_pre_session()
        octt.ts.token_info[token] = {"status": status}
        # Manual Action: present the idToken; 1-2. AuthorizeRequest with it, answered
        await octt.present(token)
        await octt.expect("Authorize", within_s=5, idToken=id_token(token))
        # no TransactionEvent after it (the TS waits the message timeout), no energy
        await nothing_more(octt)
        assert not energy_offered(octt)
        assert octt.open_transactions() == {started["transactionInfo"]["transactionId"]}


async def test_TC_C_04_CS_local_stop_transaction_different_id_token(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted; the other card is in no list and no group
        tx = await octt.charging()
        # Manual Action: present a different idToken; 1-2. AuthorizeRequest, Accepted
        await octt.present(OTHER_TOKEN)
        await octt.expect("Authorize", within_s=5, idToken=id_token(OTHER_TOKEN))
        # no TransactionEvent with an idToken after it, within the message timeout
        await nothing_more(octt, idToken=lambda _: True)
        # post: the transaction has not ended, the energy flows
        await octt.nothing("TransactionEvent", eventType="Ended")
        assert octt.open_transactions() == {tx}
        assert octt.sim().contactor_closed


# ------------------------------------------------------------------ C09 GroupId


async def group_started(octt: Octt) -> str:
    """C_39/C_42 steps 1-5: EVConnectedPreSession; the card of the group; Authorize and
    TransactionEvent answered with the groupIdToken; EnergyTransferStarted."""
    octt.ts.token_info[VALID_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
    octt.ts.transaction_token_info[VALID_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
    started = await octt.ev_connected_pre_session()
    await octt.present()
    await octt.expect("Authorize", within_s=5, idToken=id_token())
    authorized = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
    assert authorized["idToken"] == id_token()
    assert authorized["eventType"] == "Updated"  # started already at the plug-in
    await octt.energy_transfer_started()
    return str(started["transactionInfo"]["transactionId"])


async def test_TC_C_39_CS_authorization_by_group_id_success(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        tx = await group_started(octt)
        # Manual Action: the other card of the group; 6-7. Authorize, Accepted + group
        octt.ts.token_info[OTHER_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
        await octt.present(OTHER_TOKEN)
        await octt.expect("Authorize", within_s=5, idToken=id_token(OTHER_TOKEN))
        # 8-9. StopAuthorized (with a card of the group, if any)
        stop = await octt.expect("TransactionEvent", within_s=5, triggerReason="StopAuthorized")
        assert stop["transactionInfo"]["transactionId"] == tx
        assert stop.get("idToken", id_token()) in (id_token(), id_token(OTHER_TOKEN))
        # 10. EVConnectedPostSession (ended: TxStopPoint Authorized); 11. EVDisconnected
        await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        await octt.ev_disconnected()


async def test_TC_C_42_CS_authorization_by_group_id_not_stopped_by_group_id(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        tx = await group_started(octt)
        # Manual Action: an invalid card of the group; 6-7. Authorize, Invalid + group
        octt.ts.token_info[INVALID] = {"status": "Invalid", "groupIdToken": GROUP}
        await octt.present(INVALID)
        await octt.expect("Authorize", within_s=5, idToken=id_token(INVALID))
        # it does not stop the transaction: the next heartbeat comes with nothing before
        await octt.next_heartbeat()
        await octt.nothing("TransactionEvent", triggerReason="StopAuthorized")
        await octt.nothing("TransactionEvent", eventType="Ended")
        assert octt.open_transactions() == {tx}
        assert octt.sim().contactor_closed


# ------------------------------------------------------------------ C16 master pass


async def test_TC_C_45_CS_master_pass_not_able_to_start_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: TxStartPoint Authorized (no EVConnected); MasterPassGroupId configured
        await octt.set_variables(
            TxCtrlr__TxStartPoint="Authorized", AuthCtrlr__MasterPassGroupId="MASTERPASS"
        )
        octt.ts.token_info[MASTER] = {"status": "Accepted", "groupIdToken": MASTER_GROUP}
        # Manual Action: the master pass; 1-2. Authorize, Accepted + the master group
        await octt.present(MASTER)
        await octt.expect("Authorize", within_s=5, idToken=id_token(MASTER))
        # it authorizes no transaction
        await octt.nothing("TransactionEvent")
        # 3. Execute Reusable State EVConnectedPreSession (nothing starts at EVConnected)
        await octt.plug()
        await octt.occupied()
        # 4. no TransactionEvent ChargingStateChanged Charging (none at all here)
        await nothing_more(octt)
        assert not energy_offered(octt)


async def test_TC_C_49_CS_stop_transaction_with_a_master_pass_without_ui(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: MasterPassGroupId; EnergyTransferStarted on EVSE 1 and EVSE 2
        await octt.set_variables(AuthCtrlr__MasterPassGroupId="MASTERPASS")
        tx1 = await octt.charging(1)
        tx2 = await octt.charging(2, token=OTHER_TOKEN)
        octt.ts.token_info[MASTER] = {"status": "Accepted", "groupIdToken": MASTER_GROUP}
        # Manual Action: the master pass; 1-2. Authorize, Accepted + the master group
        await octt.present(MASTER)
        await octt.expect("Authorize", within_s=5, idToken=id_token(MASTER))
        # 3-4. for EVSE 1 and 2: stoppedReason MasterPass, idToken omitted or the pass
        for tx in (tx1, tx2):
            ended = await octt.expect(
                "TransactionEvent",
                within_s=10,
                eventType="Ended",
                transactionInfo={"transactionId": tx},
            )
            assert ended["transactionInfo"]["stoppedReason"] == "MasterPass"
            assert ended.get("idToken", id_token(MASTER)) == id_token(MASTER)
        # 6. EVDisconnected for both
        for evse in (1, 2):
            await octt.ev_disconnected(evse)


# ------------------------------------------------------------------ C10, C11 cache


async def test_TC_C_32_CS_authorization_cache_persistent_over_reboot(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; IdTokenCached for the valid card
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        # 1. Execute Reusable State Booted (power cycle)
        await octt.power_cycle()
        await octt.booted()
        # Manual Action: the cached card; 2-3. TransactionEvent Authorized, no Authorize
        await octt.present()
        authorized = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert authorized["idToken"] == id_token()
        assert octt.count("Authorize") == 0
        # 4. EVConnectedPreSession; 5. EnergyTransferStarted
        await octt.plug()
        await octt.occupied()
        await octt.energy_transfer_started()


async def test_TC_C_33_CS_authorization_cache_update_on_authorize_response(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; State is EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.ev_connected_pre_session()
        # Manual Action: the valid card; 1-2. Authorize, Accepted (fills the cache)
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())
        # 3-4. TransactionEvent Authorized with the card
        await octt.expect(
            "TransactionEvent", within_s=5, triggerReason="Authorized", idToken=id_token()
        )
        # 5. EnergyTransferStarted; 6. (StopAuthorized) EVConnectedPostSession;
        # 7. EVDisconnected
        await octt.energy_transfer_started()
        await octt.stop_authorized()
        await octt.ev_disconnected()
        # 10. EVConnectedPreSession again
        await octt.ev_connected_pre_session()
        # Manual Action: the same card; 12-13. from the cache: no AuthorizeRequest
        octt.ts.transaction_token_status = "Invalid"
        await octt.present()
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert event["idToken"] == id_token()
        assert octt.count("Authorize") == 0


async def test_TC_C_34_CS_authorization_cache_update_on_transaction_response(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; IdTokenCached for the valid card;
        # EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        await octt.ev_connected_pre_session()
        # Manual Action: the card; 1-2. TransactionEvent Authorized (from the cache),
        # answered Invalid (the cache learns it)
        octt.ts.transaction_token_info[VALID_TOKEN] = {"status": "Invalid"}
        await octt.present()
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert event["idToken"] == id_token() and event["eventType"] == "Updated"
        assert octt.count("Authorize") == 0
        # 3. EVDisconnected; 6. EVConnectedPreSession
        await octt.ev_disconnected()
        await octt.ev_connected_pre_session()
        # Manual Action: the same card; 7-8. now AuthorizeRequest (Invalid in the cache)
        octt.ts.token_info[VALID_TOKEN] = {"status": "Invalid"}
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())


async def test_TC_C_36_CS_authorization_cache_local_pre_authorize_false(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: AuthCacheCtrlr.Enabled true, LocalPreAuthorize false; IdTokenCached
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        # Manual Action: the cached card; 1-2. AuthorizeRequest all the same, Invalid
        octt.ts.token_info[VALID_TOKEN] = {"status": "Invalid"}
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())


async def test_TC_C_46_CS_authorization_cache_lifetime(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        lifetime_s = 120  # <Configured TransactionDuration>
        # Before: LifeTime <duration>, LocalPreAuthorize true; IdTokenCached;
        # EVConnectedPreSession
        await octt.set_variables(
            AuthCacheCtrlr__LifeTime=str(lifetime_s), AuthCtrlr__LocalPreAuthorize="true"
        )
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        await octt.ev_connected_pre_session()
        # 1. wait the duration: the entry expires
        await octt.advance(lifetime_s)
        # 2. Execute Reusable State Authorized (local): asked again (no longer cached)
        await octt.authorized()


async def test_TC_C_37_CS_clear_authorization_cache_accepted(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: Enabled true, LocalPreAuthorize true (so a cached card is not asked);
        # IdTokenCached
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        # 1-2. ClearCache: Accepted
        reply = await octt.call("ClearCache")
        assert reply["status"] == "Accepted"
        # 4. EVConnectedPreSession; the card: 5-6. AuthorizeRequest (the cache is empty)
        await octt.ev_connected_pre_session()
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())
        # 7-8. TransactionEvent Authorized; 9. EnergyTransferStarted
        await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        await octt.energy_transfer_started()


async def test_TC_C_38_CS_clear_authorization_cache_rejected(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: IdTokenCached; AuthCacheCtrlr.Enabled false
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        await octt.set_variables(AuthCacheCtrlr__Enabled="false")
        # 1-2. ClearCache: Rejected
        reply = await octt.call("ClearCache")
        assert reply["status"] == "Rejected"


async def test_TC_C_41_CS_authorization_by_group_id_with_authorization_cache(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; both cards of the group cached; EVConnected
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        for token in (VALID_TOKEN, OTHER_TOKEN):
            await octt.id_token_cached(token, {"status": "Accepted", "groupIdToken": GROUP})
        tx = (await octt.ev_connected_pre_session())["transactionInfo"]["transactionId"]
        # Manual Action: the first card; 1-2. TransactionEvent Authorized (from the cache)
        octt.ts.transaction_token_info[VALID_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
        await octt.present()
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert event["idToken"] == id_token() and octt.count("Authorize") == 0
        # 3. EnergyTransferStarted
        await octt.energy_transfer_started()
        # Manual Action: the second card; 4. StopAuthorized (from the cache, same group)
        await octt.present(OTHER_TOKEN)
        stop = await octt.expect("TransactionEvent", within_s=5, triggerReason="StopAuthorized")
        assert stop["transactionInfo"]["transactionId"] == tx
        assert octt.count("Authorize") == 0
        # 5. EVConnectedPostSession; 6. EVDisconnected
        await octt.expect("TransactionEvent", within_s=10, eventType="Ended")
        await octt.ev_disconnected()


async def test_TC_C_44_CS_authorization_by_group_id_invalid_status_with_cache(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; the valid and the invalid card of the group
        # cached; EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted", "groupIdToken": GROUP})
        await octt.id_token_cached(INVALID, {"status": "Invalid", "groupIdToken": GROUP})
        tx = (await octt.ev_connected_pre_session())["transactionInfo"]["transactionId"]
        # Manual Action: the valid card; 1-2. TransactionEvent Authorized from the cache
        octt.ts.transaction_token_info[VALID_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
        await octt.present()
        await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        # 3. EnergyTransferStarted
        await octt.energy_transfer_started()
        # Manual Action: the invalid card; 4-5. AuthorizeRequest (not Accepted in the
        # cache: asked again), answered Invalid + group: the transaction goes on
        await octt.present(INVALID)
        await octt.expect("Authorize", within_s=5, idToken=id_token(INVALID))
        await octt.next_heartbeat()
        await octt.nothing("TransactionEvent", triggerReason="StopAuthorized")
        await octt.nothing("TransactionEvent", eventType="Ended")
        assert octt.open_transactions() == {tx}


async def group_card_authorizes_the_plug_in_transaction(octt: Octt) -> None:
    """The EV plugged in (a new transaction), then the other card of GROUP: it authorizes
    the transaction (no group is with it yet), it does not stop it."""
    octt.ts.token_info[OTHER_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
    started = await octt.ev_connected_pre_session()
    authorized = await octt.authorized(token=OTHER_TOKEN)
    assert authorized["eventType"] == "Updated"
    assert (
        authorized["transactionInfo"]["transactionId"]
        == (started["transactionInfo"]["transactionId"])
    )
    await octt.energy_transfer_started()


async def test_the_group_of_an_ended_transaction_does_not_stop_the_next_one(
    rig: Callable[..., Any],
) -> None:
    """Finding 13: the groupIdToken goes with the transaction that had it."""
    async with rig() as octt:
        await group_started(octt)
        await octt.stop_authorized()
        await octt.ev_disconnected()
        await group_card_authorizes_the_plug_in_transaction(octt)


async def test_the_group_of_a_lapsed_authorization_does_not_stop_a_transaction(
    rig: Callable[..., Any],
) -> None:
    """Finding 13 without a transaction to end: TxStartPoint EVConnected, the card of the
    group lapses (EVConnectionTimeOut) with nothing started; its group lapses with it."""
    async with rig() as octt:
        await octt.set_variables(TxCtrlr__TxStartPoint="EVConnected")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted", "groupIdToken": GROUP})
        assert octt.transaction_events() == []
        await group_card_authorizes_the_plug_in_transaction(octt)


async def test_a_remote_start_takes_the_group_of_its_request(rig: Callable[..., Any]) -> None:
    """F01: RequestStartTransaction's groupIdToken is the transaction's group (and not
    one left from an earlier authorization): a card of it stops the transaction."""
    async with rig() as octt:
        await octt.ev_connected_pre_session()
        reply = await octt.call(
            "RequestStartTransaction",
            idToken=id_token(),
            groupIdToken=GROUP,
            evseId=1,
            remoteStartId=7,
        )
        assert reply["status"] == "Accepted"
        await octt.expect("TransactionEvent", within_s=5, triggerReason="RemoteStart")
        await octt.energy_transfer_started()
        octt.ts.token_info[OTHER_TOKEN] = {"status": "Accepted", "groupIdToken": GROUP}
        await octt.present(OTHER_TOKEN)
        await octt.expect("TransactionEvent", within_s=5, triggerReason="StopAuthorized")


# ------------------------------------------------------------------ C12 cache use


async def test_TC_C_08_CS_authorization_through_cache_accepted(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; IdTokenCached; EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        await octt.ev_connected_pre_session()
        # 1. Execute Reusable State Authorized (the card from the cache: no Authorize)
        await octt.present()
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert event["idToken"] == id_token() and octt.count("Authorize") == 0
        # 2. EnergyTransferStarted
        await octt.energy_transfer_started()


@pytest.mark.parametrize(
    ("token", "cached", "answer"),
    [
        pytest.param(INVALID, "Invalid", "Invalid", id="TC_C_09_invalid_not_accepted"),
        pytest.param(BLOCKED, "Blocked", "Blocked", id="TC_C_10_blocked"),
        pytest.param(EXPIRED, "Expired", "Expired", id="TC_C_11_expired"),
    ],
)
async def test_TC_C_09_10_11_CS_authorization_through_cache_not_accepted(
    rig: Callable[..., Any], token: str, cached: str, answer: str
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true, DisablePostAuthorize false; IdTokenCached with
        # the status; EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(token, {"status": cached})
        await octt.ev_connected_pre_session()
        # Manual Action: the cached card; 1-2. AuthorizeRequest (asked again), refused
        octt.ts.token_info[token] = {"status": answer}
        await octt.present(token)
        await octt.expect("Authorize", within_s=5, idToken=id_token(token))
        await nothing_more(octt)
        assert not energy_offered(octt)


async def test_TC_C_12_CS_authorization_through_cache_invalid_and_accepted(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; the card cached Invalid; EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Invalid"})
        await octt.ev_connected_pre_session()
        # Manual Action: the card; 1-2. AuthorizeRequest, now Accepted
        octt.ts.token_info[VALID_TOKEN] = {"status": "Accepted"}
        await octt.present()
        await octt.expect("Authorize", within_s=5, idToken=id_token())
        # 3-4. (optional) TransactionEvent; 5. EnergyTransferStarted
        await octt.energy_transfer_started()


async def test_TC_C_13_CS_authorization_through_cache_accepted_cable_not_connected(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true; IdTokenCached
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
        # Manual Action: the cached card; 1-2. TransactionEvent Authorized, Started
        await octt.present()
        event = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
        assert event["idToken"] == id_token() and event["eventType"] == "Started"
        assert octt.count("Authorize") == 0
        # 3. EVConnectedPreSession; 4. EnergyTransferStarted
        await octt.plug()
        await octt.occupied()
        await octt.energy_transfer_started()


async def offline_with_cached_card(octt: Octt, **config: str) -> str:
    """C_15 to C_18, before and steps 1-2: LocalPreAuthorize, LocalAuthorizeOffline, the
    case's StopTxOnInvalidId/MaxEnergyOnInvalidId; IdTokenCached; EVConnectedPreSession;
    TS closes and refuses; the cached card (charging offline); TS accepts, and answers
    the card's event Invalid. Returns the transactionId."""
    await octt.set_variables(
        AuthCtrlr__LocalPreAuthorize="true",
        AuthCtrlr__LocalAuthorizeOffline="true",
        OCPPCommCtrlr__OfflineThreshold=str(OFFLINE_WAIT_S + 60),
        OCPPCommCtrlr__RetryBackOffWaitMinimum=str(OFFLINE_WAIT_S),
        OCPPCommCtrlr__RetryBackOffRandomRange="0",
        **config,
    )
    await octt.id_token_cached(VALID_TOKEN, {"status": "Accepted"})
    started = await octt.ev_connected_pre_session()
    await octt.close_connection()
    await octt.present()
    await octt.advance(10)
    assert octt.sim().contactor_closed  # charging offline on the cached card
    octt.ts.transaction_token_info[VALID_TOKEN] = {"status": "Invalid"}
    octt.accept_connections()
    await octt.reconnected(within_s=OFFLINE_WAIT_S * 2)
    # 3. the queue: the Authorized event (offline, with the card), ChargingStateChanged
    authorized = await octt.expect("TransactionEvent", within_s=5, triggerReason="Authorized")
    assert authorized["offline"] is True and authorized["idToken"] == id_token()
    await octt.expect(
        "TransactionEvent", within_s=5, triggerReason="ChargingStateChanged", offline=True
    )
    return str(started["transactionInfo"]["transactionId"])


async def test_TC_C_15_CS_cache_stop_tx_on_invalid_id_false_max_energy_above_zero(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        tx = await offline_with_cached_card(
            octt, TxCtrlr__StopTxOnInvalidId="false", TxCtrlr__MaxEnergyOnInvalidId="10000"
        )
        # no Deauthorized, no SuspendedEVSE: the energy flows on (up to 10 kWh)
        await octt.next_heartbeat()
        await octt.nothing("TransactionEvent", triggerReason="Deauthorized", after=0)
        await octt.nothing(
            "TransactionEvent", transactionInfo={"chargingState": "SuspendedEVSE"}, after=0
        )
        assert octt.open_transactions() == {tx} and octt.sim().contactor_closed


async def test_TC_C_16_CS_cache_stop_tx_on_invalid_id_true(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        tx = await offline_with_cached_card(
            octt, TxCtrlr__StopTxOnInvalidId="true", TxCtrlr__MaxEnergyOnInvalidId="0"
        )
        # 5-6. Deauthorized; the energy flow stops
        event = await octt.expect(
            "TransactionEvent", within_s=10, triggerReason="Deauthorized", after=0
        )
        assert event["transactionInfo"]["transactionId"] == tx
        await octt.advance(5)
        assert not octt.sim().contactor_closed


async def test_TC_C_17_CS_cache_stop_tx_on_invalid_id_false(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        tx = await offline_with_cached_card(
            octt, TxCtrlr__StopTxOnInvalidId="false", TxCtrlr__MaxEnergyOnInvalidId="0"
        )
        # 5-6. chargingState SuspendedEVSE (no triggerReason of that name); energy stops
        event = await octt.expect(
            "TransactionEvent",
            within_s=10,
            after=0,
            transactionInfo={"chargingState": "SuspendedEVSE"},
        )
        assert event["transactionInfo"]["transactionId"] == tx
        assert event["triggerReason"] != "SuspendedEVSE"
        await octt.advance(5)
        assert not octt.sim().contactor_closed and octt.open_transactions() == {tx}


async def test_TC_C_18_CS_cache_stop_tx_on_invalid_id_true_max_energy_above_zero(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        tx = await offline_with_cached_card(
            octt, TxCtrlr__StopTxOnInvalidId="true", TxCtrlr__MaxEnergyOnInvalidId="500"
        )
        # 5-6. Deauthorized, sent online (offline false); the energy flow stops
        event = await octt.expect(
            "TransactionEvent", within_s=10, triggerReason="Deauthorized", after=0
        )
        assert event["transactionInfo"]["transactionId"] == tx
        assert event.get("offline", False) is False
        await octt.advance(5)
        assert not octt.sim().contactor_closed


async def test_TC_C_57_CS_authorization_cache_disable_post_authorize(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: LocalPreAuthorize true, DisablePostAuthorize true; the card cached
        # Invalid; EVConnectedPreSession
        await octt.set_variables(AuthCtrlr__LocalPreAuthorize="true")
        await octt.id_token_cached(INVALID, {"status": "Invalid"})
        await octt.set_variables(AuthCacheCtrlr__DisablePostAuthorize="true")
        await octt.ev_connected_pre_session()
        # Manual Action: the cached invalid card; 1. no AuthorizeRequest, refused
        await octt.present(INVALID)
        await nothing_more(octt, "Authorize")
        await octt.nothing("TransactionEvent")
        assert not energy_offered(octt)
