"""Regressions found against an independent CSMS (OCPP issue, defects 1 and 2), on the
whole firmware: `charger sim` with its CS controller and simulated car, a CSMS on
loopback, the driver's actions through the simulator.

1. After a stop the plugged-in EV started a new transaction by itself (no idToken,
   chargingState Charging), which then took the rest of the session's energy.
2. The Ended event carried a reading taken before the power path opened, and said
   Charging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.processes import Broker, Charger
from tests.support.polling import eventually
from tests.support.probe import Probe, probe_on

TOKEN = "04A1B2C3"


def tx_events(state: CsmsState) -> list[dict[str, Any]]:
    return [p for a, p in state.received if a == "TransactionEvent"]


def register(event: dict[str, Any]) -> float:
    [value] = [
        v["value"]
        for m in event["meter_value"]
        for v in m["sampled_value"]
        if v.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
    ]
    return float(value)


async def charging(state: CsmsState, probe: Probe) -> str:
    """Plugged in, the card presented, energy flowing; returns the transaction id."""
    await probe.sim("plug_in")
    await probe.sim("present_token", token=TOKEN)
    await eventually(
        lambda: any(e["transaction_info"]["charging_state"] == "Charging" for e in tx_events(state))
    )
    await probe.wait_for(  # energy metered since the start
        lambda t, m: (
            m.get("name") == "meter_values"
            and m["type"] == "update"
            and m["data"]["total_active_energy_imported"] > 0
        ),
        after=probe.mark(),
    )
    return str(tx_events(state)[0]["transaction_info"]["transaction_id"])


@pytest.mark.parametrize("stop", ["remote", "card"])
async def test_a_stop_ends_with_all_the_energy_and_starts_nothing_until_unplug(
    broker: Broker, start_charger: Callable[..., Charger], stop: str
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url:
        tail = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n[authorization]\nmode = "external"\n'
        start_charger(broker.port, tail=tail)
        async with probe_on(broker.port) as probe:
            tx_id = await charging(state, probe)
            mark = probe.mark()
            if stop == "remote":
                reply = await state.stations[0].call(
                    call.RequestStopTransaction(transaction_id=tx_id)
                )
                assert reply.status == "Accepted"
            else:
                await probe.sim("present_token", token=TOKEN)  # the same card: stop
            await probe.wait_message("cs_contactor_status", after=mark, status="opened")
            await eventually(lambda: tx_events(state)[-1]["event_type"] == "Ended")
            ended = tx_events(state)[-1]
            # defect 2: not Charging, and the reading taken after the contactor opened
            assert ended["transaction_info"]["charging_state"] != "Charging"
            opened_at = next(
                i
                for i, (t, m) in enumerate(probe.messages)
                if i >= mark
                and m.get("name") == "cs_contactor_status"
                and m["data"].get("status") == "opened"
            )
            final = [
                m["data"]["total_active_energy_imported"]
                for t, m in probe.messages[opened_at:]
                if m.get("name") == "meter_values" and m["type"] == "response"
            ]
            assert final and register(ended) == final[0]
            before = [
                m["data"]["total_active_energy_imported"]
                for t, m in probe.messages[:opened_at]
                if m.get("name") == "meter_values"
            ]
            assert register(ended) >= max(before)
            # defect 1: two more readings come and go; no transaction starts by itself
            for _ in range(2):
                await probe.wait_for(
                    lambda t, m: m.get("name") == "meter_values" and m["type"] == "update",
                    after=probe.mark(),
                )
            assert {e["transaction_info"]["transaction_id"] for e in tx_events(state)} == {tx_id}
            # positive control: unplug and plug again, and the next one starts
            await probe.sim("unplug")
            await probe.sim("plug_in")
            await eventually(lambda: tx_events(state)[-1]["event_type"] == "Started")
            assert tx_events(state)[-1]["transaction_info"]["transaction_id"] != tx_id
