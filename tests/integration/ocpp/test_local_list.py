"""Local authorization list (OCA D and C cases): versions, updates, offline use."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.protocols.ocpp.local_list import LocalList
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import station
from tests.support.ocpp_steps import authorize, booted

ALICE = {
    "id_token": {"id_token": "A11CE0A1", "type": "ISO14443"},
    "id_token_info": {"status": "Accepted"},
}
BOB = {
    "id_token": {"id_token": "B0B0B0B0", "type": "ISO14443"},
    "id_token_info": {"status": "Blocked"},
}


async def send(csms: Any, version: int, kind: str, entries: list[dict[str, Any]]) -> str:
    reply = await csms.call(
        call.SendLocalList(
            version_number=version, update_type=kind, local_authorization_list=entries or None
        )
    )
    return str(reply.status)


async def test_TC_D_01_D_02_CS_full_and_differential_updates() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        assert (await csms.call(call.GetLocalListVersion())).version_number == 0
        assert await send(csms, 5, "Full", [ALICE, BOB]) == "Accepted"
        assert (await csms.call(call.GetLocalListVersion())).version_number == 5
        assert await send(csms, 5, "Differential", []) == "VersionMismatch"
        bob_removed = {"id_token": BOB["id_token"]}
        assert await send(csms, 6, "Differential", [bob_removed]) == "Accepted"
        client = st.client  # type: ignore[attr-defined]
        assert client.local_list.lookup({"idToken": "B0B0B0B0", "type": "ISO14443"}) is None
        assert client.local_list.lookup({"idToken": "A11CE0A1", "type": "ISO14443"}) == {
            "status": "Accepted"
        }
        assert client.dm.value("LocalAuthListCtrlr", "Entries") == "1"
        assert await send(csms, 7, "Full", [bob_removed]) == "Failed"  # Full needs the info


async def test_offline_authorization_through_the_local_list() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ocpp"  # no CSMS there: the station is offline
    store = Store(Path(tempfile.mkdtemp()) / "list.db")
    saved = LocalList(store)
    assert (
        await saved.send(
            {
                "versionNumber": 3,
                "updateType": "Full",
                "localAuthorizationList": [
                    {
                        "idToken": {"idToken": "A11CE0A1", "type": "ISO14443"},
                        "idTokenInfo": {"status": "Accepted"},
                    }
                ],
            }
        )
        == "Accepted"
    )
    async with station(url, local_list=LocalList(store)) as st:
        assert await authorize(st, "A11CE0A1") == "accepted"  # listed, and loaded from disk
        assert await authorize(st, "BAD0BAD0") == "rejected"
        assert st.client.local_list.version == 3  # type: ignore[attr-defined]
