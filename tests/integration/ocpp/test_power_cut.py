"""kill -9 during a transaction: after the restart the CSMS has every event, seqNo has no
gaps, and any repeated event is identical (the CSMS can de-duplicate it)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from rig.csms import CsmsState, ocpp_csms
from rig.processes import Broker, Charger
from tests.support.polling import eventually
from tests.support.probe import probe_on


def check_no_loss(state: CsmsState) -> dict[str, list[dict[str, Any]]]:
    by_tx: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for action, payload in state.received:
        if action != "TransactionEvent":
            continue
        tx_id, seq = payload["transaction_info"]["transaction_id"], payload["seq_no"]
        if seq in by_tx[tx_id]:
            assert by_tx[tx_id][seq] == payload, "a repeated event must be identical"
        by_tx[tx_id][seq] = payload
    for tx_id, events in by_tx.items():
        assert sorted(events) == list(range(len(events))), f"seqNo gap in {tx_id}"
        assert events[max(events)]["event_type"] == "Ended", f"{tx_id} never ended"
    return {tx: [events[s] for s in sorted(events)] for tx, events in by_tx.items()}


def unplugged(state: CsmsState) -> bool:
    """The clean session has ended: the driver unplugged."""
    return any(
        p["transaction_info"].get("stopped_reason") == "EVDisconnected"
        for a, p in state.received
        if a == "TransactionEvent"
    )


def charging_states(state: CsmsState) -> list[str]:
    events = [p for a, p in state.received if a == "TransactionEvent"]
    return [p["transaction_info"]["charging_state"] for p in events]


async def ended_event(state: CsmsState, count: int) -> dict[str, Any]:
    """Waits until `count` distinct transactions have ended; returns the last Ended."""
    async with asyncio.timeout(15):
        while True:
            ended = {
                p["transaction_info"]["transaction_id"]: p
                for a, p in state.received
                if a == "TransactionEvent" and p["event_type"] == "Ended"
            }
            if len(ended) >= count:
                return list(ended.values())[count - 1]
            state.changed.clear()
            await state.changed.wait()


async def test_power_cut_during_a_transaction_loses_nothing(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url:
        ocpp = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n'
        charger = start_charger(broker.port, tail=ocpp)
        async with probe_on(broker.port) as probe:
            # kill point 1: charging, with events acknowledged
            await probe.sim("plug_in")
            await eventually(lambda: "Charging" in charging_states(state))
            # two readings with energy: the first one has been stored with the transaction
            # by the time the second comes (a write takes milliseconds, readings 0.5 s)
            for _ in range(2):
                await probe.wait_for(
                    lambda t, m: (
                        m.get("name") == "meter_values"
                        and m["data"]["total_active_energy_imported"] > 0
                    ),
                    after=probe.mark(),
                )
        charger.process.kill()
        charger.process.wait()
        charger = start_charger(broker.port, tail=ocpp)
        ended = await ended_event(state, 1)  # after any replay of unrecorded acks
        assert ended["trigger_reason"] == "AbnormalCondition"
        assert ended["transaction_info"]["stopped_reason"] == "PowerLoss"
        # reliability issue 9: the reading persisted with the transaction comes along
        [sample] = [
            v
            for m in ended["meter_value"]
            for v in m["sampled_value"]
            if v.get("measurand", "Energy.Active.Import.Register")
            == "Energy.Active.Import.Register"
        ]
        assert sample["value"] > 0 and sample["context"] == "Transaction.End"
        async with probe_on(broker.port) as probe:
            # kill point 2: right after the plug-in, events possibly still in flight
            await probe.sim("plug_in")
        charger.process.kill()
        charger.process.wait()
        charger = start_charger(broker.port, tail=ocpp)
        await state.wait_for("BootNotification", count=3)
        async with probe_on(broker.port) as probe:  # a clean session after all that
            await probe.sim("plug_in")
            await probe.wait_message("cp_status", state="C2")
            await probe.sim("unplug")
            await probe.wait_message("cp_status", state="A1")
        # the first (PowerLoss) and the clean session end; the second, if it was
        # committed before the kill, ends with PowerLoss too
        await eventually(lambda: unplugged(state), 15)
    transactions = check_no_loss(state)
    assert 2 <= len(transactions) <= 3  # the second one exists if it was committed in time
    first = next(iter(transactions.values()))
    # Started; SuspendedEV (the EV not taking yet) and Charging; then the power cut
    assert [e["trigger_reason"] for e in first] == [
        "CablePluggedIn",
        "ChargingStateChanged",
        "ChargingStateChanged",
        "AbnormalCondition",
    ]
    assert [e["transaction_info"]["charging_state"] for e in first[1:3]] == [
        "SuspendedEV",
        "Charging",
    ]
