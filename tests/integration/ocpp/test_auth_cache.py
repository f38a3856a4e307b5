"""Authorization cache against a CSMS (OCA C10-C12, C15): what is asked, what is cached."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import station
from tests.support.ocpp_steps import ALICE, authorize, cached, configure
from tests.support.polling import eventually


async def test_TC_C_33_CS_authorize_response_fills_the_cache() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        assert await authorize(st) == "accepted"
        assert await state.wait_for("Authorize") == {
            "id_token": {"id_token": "A11CE0A1", "type": "ISO14443"}
        }
        started = await state.wait_for("TransactionEvent")
        assert (
            started["trigger_reason"] == "Authorized"
            and started["id_token"]["id_token"] == "A11CE0A1"
        )
        assert st.client.auth_cache.lookup(ALICE, 0) == {"status": "Accepted"}  # type: ignore[attr-defined]


async def test_TC_C_32_CS_a_cached_token_starts_at_once_after_a_restart() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Accepted")) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        assert await authorize(st) == "accepted"
        started = await state.wait_for("TransactionEvent")
        assert (
            started["trigger_reason"] == "Authorized"
            and started["id_token"]["id_token"] == "A11CE0A1"
        )
        assert "Authorize" not in state.actions()  # C12.FR.02: no round trip first


async def test_TC_C_34_CS_transaction_event_response_updates_the_cache() -> None:
    state = CsmsState(interval=300, transaction_token_status="Invalid", authorize_status="Invalid")
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Accepted")) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        assert await authorize(st) == "accepted"
        await state.wait_for("TransactionEvent")
        client: Any = st.client  # type: ignore[attr-defined]
        # the answer is cached once the event is acknowledged
        await eventually(lambda: client.auth_cache.lookup(ALICE, 0) == {"status": "Invalid"})
        assert await authorize(st) == "rejected"  # cached Invalid: asked again (C12.FR.05)
        assert state.actions().count("Authorize") == 1


async def test_TC_C_10_11_12_CS_a_cached_token_that_is_not_accepted_is_asked_about() -> None:
    for cache in (
        await cached("Blocked"),
        await cached("Accepted", cacheExpiryDateTime="2020-01-01T00:00:00Z"),
        await cached("Invalid"),
    ):
        state = CsmsState(interval=300)
        async with ocpp_csms(state) as url, station(url, auth_cache=cache) as st:
            await state.wait_for("StatusNotification")
            configure(st, AuthCtrlr__LocalPreAuthorize="true")
            assert await authorize(st) == "accepted"  # the CSMS says Accepted now
            assert state.actions().count("Authorize") == 1
            assert cache.lookup(ALICE, 0) == {"status": "Accepted"}


async def test_TC_C_57_CS_disable_post_authorize_refuses_without_asking() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Invalid")) as st:
        await state.wait_for("StatusNotification")
        configure(
            st, AuthCtrlr__LocalPreAuthorize="true", AuthCacheCtrlr__DisablePostAuthorize="true"
        )
        assert await authorize(st) == "rejected"
        assert "Authorize" not in state.actions()


async def test_TC_C_36_CS_without_local_pre_authorize_the_csms_decides() -> None:
    state = CsmsState(interval=300, authorize_status="Invalid")
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Accepted")) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="false")
        assert await authorize(st) == "rejected"
        assert state.actions().count("Authorize") == 1


async def test_TC_C_37_38_CS_clear_cache() -> None:
    state = CsmsState(interval=300)
    cache = await cached("Accepted")
    async with ocpp_csms(state) as url, station(url, auth_cache=cache) as st:
        await state.wait_for("StatusNotification")
        csms = state.stations[0]
        configure(st, AuthCacheCtrlr__Enabled="false")
        assert (await csms.call(call.ClearCache())).status == "Rejected"
        assert len(cache) == 1
        configure(st, AuthCacheCtrlr__Enabled="true", AuthCtrlr__LocalPreAuthorize="true")
        assert (await csms.call(call.ClearCache())).status == "Accepted"
        assert len(cache) == 0
        assert await authorize(st) == "accepted"
        assert state.actions().count("Authorize") == 1  # not cached any more: asked


async def test_offline_the_cache_decides_and_unknown_tokens_follow_offline_tx_for_unknown_id() -> (
    None
):
    url = f"ws://127.0.0.1:{free_port()}/ocpp"  # nobody there: offline
    cache = await cached("Accepted")
    await cache.update({"idToken": "B0B0B0B0", "type": "ISO14443"}, {"status": "Blocked"})
    async with station(url, auth_cache=cache) as st:
        assert await authorize(st, "A11CE0A1") == "accepted"  # C12 offline, LocalAuthorizeOffline
        assert await authorize(st, "A11CE0A1") == "accepted"  # and the same card ends it again
        assert await authorize(st, "B0B0B0B0") == "rejected"
        assert await authorize(st, "BAD0BAD0") == "rejected"
        configure(st, AuthCtrlr__OfflineTxForUnknownId="true")
        assert await authorize(st, "BAD0BAD0") == "accepted"  # C15
        assert await authorize(st, "B0B0B0B0") == "rejected"  # known and blocked stays refused


async def test_TC_C_08_CS_a_cached_accepted_token_authorizes_locally() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Accepted")) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        assert await authorize(st) == "accepted"
        started = await state.wait_for("TransactionEvent")
        assert started["id_token"] == {"id_token": "A11CE0A1", "type": "ISO14443"}
        assert "Authorize" not in state.actions()


async def test_TC_C_09_CS_a_cached_invalid_token_the_csms_also_refuses() -> None:
    state = CsmsState(interval=300, authorize_status="Invalid")
    async with ocpp_csms(state) as url, station(url, auth_cache=await cached("Invalid")) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        assert await authorize(st) == "rejected"
        assert state.actions().count("Authorize") == 1  # asked again (C12.FR.05)
        assert "TransactionEvent" not in state.actions()
