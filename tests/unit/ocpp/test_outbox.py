"""The durable outbox keeps an open transaction's latest state, reading included."""

from __future__ import annotations

from pathlib import Path

from charger.protocols.ocpp.outbox import Outbox

EVENT = {"eventType": "Started", "transactionInfo": {"transactionId": "tx-1"}}


async def test_an_open_transaction_state_is_updated_on_disk(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "ocpp.db")
    await outbox.put("TransactionEvent", EVENT, ("tx-1", 1, {"seq_no": 1, "energy_wh": 10.0}))
    await outbox.save_transaction("tx-1", {"seq_no": 1, "energy_wh": 35.0})
    await outbox.save_transaction("tx-unknown", {"seq_no": 9})  # no row appears for it
    outbox.close()
    reopened = Outbox(tmp_path / "ocpp.db")  # as after a power cut
    assert await reopened.transactions() == {"tx-1": (1, {"seq_no": 1, "energy_wh": 35.0})}
    reopened.close()
