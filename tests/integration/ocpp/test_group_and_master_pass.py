"""GroupId (C09), master pass (C16) and deauthorization by the CSMS (E06, StopTxOnInvalidId)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from charger.protocols.ocpp.auth_cache import AuthCache
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, Station, station
from tests.support.ocpp_steps import (
    OFFER,
    PLUG,
    authorize,
    configure,
    cs,
    set_variables,
    step,
)
from tests.support.polling import eventually

GROUP = {"idToken": "FLEET-7", "type": "Central"}
MASTER = {"idToken": "MASTER", "type": "Central"}


def ended(state: CsmsState) -> list[dict[str, Any]]:
    return [p for a, p in state.received if a == "TransactionEvent" and p["event_type"] == "Ended"]


async def started_by_alice(state: CsmsState, st: Station) -> None:
    await state.wait_for("StatusNotification")
    assert await authorize(st, "A11CE0A1") == "accepted"
    assert (await state.wait_for("TransactionEvent"))["event_type"] == "Started"


async def test_TC_C_39_CS_a_token_of_the_same_group_stops_the_transaction() -> None:
    state = CsmsState(interval=300)
    state.token_info = {
        "A11CE0A1": {"status": "Accepted", "groupIdToken": GROUP},
        "B0B0B0B0": {"status": "Accepted", "groupIdToken": GROUP},
    }
    async with ocpp_csms(state) as url, station(url) as st:
        await started_by_alice(state, st)
        assert await authorize(st, "B0B0B0B0") == "accepted"
        await st.wait_for("stop_charging", evse_id=EVSE_ID)
        end = await state.wait_for("TransactionEvent", count=2)
        assert end["event_type"] == "Ended" and end["trigger_reason"] == "StopAuthorized"
        assert end["transaction_info"]["stopped_reason"] == "Local"


async def test_TC_C_42_CS_an_invalid_token_of_the_group_does_not_stop_it() -> None:
    state = CsmsState(interval=300)
    state.token_info = {
        "A11CE0A1": {"status": "Accepted", "groupIdToken": GROUP},
        "BAD0BAD0": {"status": "Invalid", "groupIdToken": GROUP},
    }
    async with ocpp_csms(state) as url, station(url) as st:
        await started_by_alice(state, st)
        assert await authorize(st, "BAD0BAD0") == "rejected"
        await state.wait_for("Authorize", count=2)
        assert ended(state) == [] and not [m for m in st.messages if m.name == "stop_charging"]


async def test_TC_C_49_CS_a_master_pass_stops_every_transaction_and_starts_none() -> None:
    state = CsmsState(interval=300)
    state.token_info = {"3A57E2CA": {"status": "Accepted", "groupIdToken": MASTER}}
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__MasterPassGroupId="MASTER")
        assert await authorize(st, "3A57E2CA") == "rejected"  # C16.FR.03: no start
        assert "TransactionEvent" not in state.actions()
        assert await authorize(st, "A11CE0A1") == "accepted"
        await state.wait_for("TransactionEvent")
        assert await authorize(st, "3A57E2CA") == "rejected"
        await st.wait_for("stop_charging", evse_id=EVSE_ID)
        end = await state.wait_for("TransactionEvent", count=2)
        assert end["event_type"] == "Ended"
        assert end["transaction_info"]["stopped_reason"] == "MasterPass"


async def test_TC_C_17_CS_with_stop_tx_on_invalid_id_false_the_transaction_goes_on() -> None:
    state = CsmsState(interval=300, transaction_token_status="Invalid")
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        configure(st, TxCtrlr__StopTxOnInvalidId="false")
        assert await authorize(st, "A11CE0A1") == "accepted"
        await state.wait_for("TransactionEvent")
        client: Any = st.client  # type: ignore[attr-defined]
        alice = {"idToken": "A11CE0A1", "type": "ISO14443"}
        await eventually(lambda: client.auth_cache.lookup(alice, 0) is not None)  # answered
        assert ended(state) == [] and client.tx.transaction_id(1) is not None


async def test_TC_C_04_CS_another_card_neither_stops_nor_takes_over() -> None:
    state = CsmsState(interval=300)
    state.token_info = {"A11CE0A1": {"status": "Accepted"}, "B0B0B0B0": {"status": "Accepted"}}
    async with ocpp_csms(state) as url, station(url) as st:
        await started_by_alice(state, st)
        assert await authorize(st, "B0B0B0B0") == "rejected"  # asked the CSMS, but not BOB's tx
        assert state.actions().count("Authorize") == 2
        client: Any = st.client  # type: ignore[attr-defined]
        assert client.tx.id_token(1) == {"idToken": "A11CE0A1", "type": "ISO14443"}
        assert ended(state) == [] and state.actions().count("TransactionEvent") == 1


@pytest.mark.parametrize("status", ["Invalid", "Blocked", "Expired", "Unknown"])
async def test_TC_C_02_06_07_56_CS_a_refused_token_starts_nothing(status: str) -> None:
    state = CsmsState(interval=300, authorize_status=status)
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        cs(st, "cp_status", connector_id=1, state="B1")  # EVConnectedPreSession
        started = await state.wait_for("TransactionEvent")
        assert await authorize(st, "A11CE0A1") == "rejected"
        await state.wait_for("Authorize")
        client: Any = st.client  # type: ignore[attr-defined]
        assert client.tx.id_token(1) is None  # the transaction stays unauthorized
        assert started["trigger_reason"] == "CablePluggedIn" and "id_token" not in started


async def group_cache(**tokens: str) -> AuthCache:
    """IdTokenCached for each token, with its status, all of GROUP."""
    cache = AuthCache(Store(Path(tempfile.mkdtemp()) / "cache.db"))
    for token, status in tokens.items():
        await cache.update(
            {"idToken": token, "type": "ISO14443"}, {"status": status, "groupIdToken": GROUP}
        )
    return cache


async def test_TC_C_41_CS_group_members_from_the_cache_start_and_stop_locally() -> None:
    state = CsmsState(interval=300)
    cache = await group_cache(A11CE0A1="Accepted", B0B0B0B0="Accepted")
    async with ocpp_csms(state) as url, station(url, auth_cache=cache) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        cs(st, "cp_status", connector_id=1, state="B1")  # EVConnectedPreSession
        await state.wait_for("TransactionEvent")
        assert await authorize(st, "A11CE0A1") == "accepted"
        authorized = await state.wait_for("TransactionEvent", count=2)
        assert authorized["trigger_reason"] == "Authorized"
        assert await authorize(st, "B0B0B0B0") == "accepted"  # same group: stops it
        end = await state.wait_for("TransactionEvent", count=3)
        assert (end["event_type"], end["trigger_reason"]) == ("Ended", "StopAuthorized")
        assert "Authorize" not in state.actions()  # both decided from the cache


async def test_TC_C_44_CS_an_invalid_group_member_in_the_cache_is_asked_about() -> None:
    state = CsmsState(interval=300)
    state.token_info = {"BAD0BAD0": {"status": "Invalid", "groupIdToken": GROUP}}
    cache = await group_cache(A11CE0A1="Accepted", BAD0BAD0="Invalid")
    async with ocpp_csms(state) as url, station(url, auth_cache=cache) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__LocalPreAuthorize="true")
        cs(st, "cp_status", connector_id=1, state="B1")
        assert await authorize(st, "A11CE0A1") == "accepted"
        await state.wait_for("TransactionEvent", count=2)
        assert await authorize(st, "BAD0BAD0") == "rejected"
        asked = await state.wait_for("Authorize")  # DisablePostAuthorize false: asked
        assert asked["id_token"]["id_token"] == "BAD0BAD0"
        assert ended(state) == [] and not [m for m in st.messages if m.name == "stop_charging"]


async def test_TC_C_45_CS_a_master_pass_starts_no_transaction_at_authorized() -> None:
    state = CsmsState(interval=300)
    state.token_info = {"3A57E2CA": {"status": "Accepted", "groupIdToken": MASTER}}
    async with ocpp_csms(state) as url, station(url) as st:
        await state.wait_for("StatusNotification")
        configure(st, AuthCtrlr__MasterPassGroupId="MASTER")
        csms = state.stations[0]
        await set_variables(csms, TxCtrlr__TxStartPoint="Authorized")
        assert await authorize(st, "3A57E2CA") == "rejected"
        assert (await state.wait_for("Authorize"))["id_token"]["id_token"] == "3A57E2CA"
        for facts in (PLUG, OFFER):
            await step(st, facts)  # the EV plugged in: still nothing to start
        await state.wait_for("StatusNotification", count=2)
        assert "TransactionEvent" not in state.actions()
