"""Authorization cache against a CSMS: what is asked, what is cached (the OCA C cases run
on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

from rig.net import free_port
from rig.ocpp_station import station
from tests.support.ocpp_steps import authorize, cached, configure


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
