"""OCPP issue, defect 8, on the whole firmware: an ISO 14443 card whose UID is not 8 or
14 hex digits is refused by the station with a clear log line, never sent to the CSMS
(which would answer the malformed token with a CALLERROR)."""

from __future__ import annotations

from collections.abc import Callable

from rig.csms import CsmsState, ocpp_csms
from rig.processes import Broker, Charger
from tests.support.probe import probe_on


async def test_a_malformed_card_is_refused_locally_and_a_good_one_asked_about(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url:
        tail = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n[authorization]\nmode = "external"\n'
        charger = start_charger(broker.port, tail=tail)
        await state.wait_for("StatusNotification")
        async with probe_on(broker.port) as probe:
            await probe.sim("plug_in")
            mark = probe.mark()
            await probe.sim("present_token", token="04A1B2")  # 3 bytes: no ISO 14443 UID
            refused = await probe.wait_for(
                lambda t, m: m.get("name") == "authorization" and m["type"] == "response",
                after=mark,
            )
            assert refused["data"] == {"status": "rejected"}
            assert "Authorize" not in state.actions()  # the answer came before any CALL
            await probe.sim("present_token", token="04A1B2C3")
            authorize = await state.wait_for("Authorize")
            assert authorize["id_token"] == {"id_token": "04A1B2C3", "type": "ISO14443"}
    assert 'token_refused token_type=ISO14443 reason="an ISO14443 token is 8 or 14' in (
        charger.log()
    )
