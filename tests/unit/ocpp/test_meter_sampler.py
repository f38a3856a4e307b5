"""TxUpdatedInterval's periodic values count from the transaction's start (OCPP issue,
defect 4: the timer kept its phase from the previous transaction)."""

from __future__ import annotations

from typing import Any

from charger.protocols.ocpp.meter_values import MeterSampler
from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model
from charger.protocols.ocpp.transactions import TransactionManager, TxSettings
from charger.runtime.tasks import TaskOwner

SETTINGS = OcppSettings(
    csms_url="ws://csms/ocpp",
    identity="CS1",
    basic_auth_password="",
    vendor="V",
    model="M",
    serial_number="1",
    firmware_version="1",
    connectors=(Connector("E1", 1, 1),),
    tx_updated_interval_s=10,
)


def reading(energy_wh: float) -> dict[str, Any]:
    phases = {"l1": 230.0, "l2": 230.0, "l3": 230.0}
    return {
        "timestamp": "2026-12-01T10:00:00.000Z",
        "voltage": phases,
        "current": {"l1": 16.0, "l2": 16.0, "l3": 16.0},
        "power_factor": 1.0,
        "frequency": 50.0,
        "total_active_energy_imported": energy_wh,
        "total_reactive_energy_imported": 0.0,
    }


def test_the_first_periodic_value_comes_one_interval_after_the_start() -> None:
    now = [0.0]
    sent: list[tuple[float, str, str]] = []
    tx = TransactionManager(TxSettings(), [(1, 1)], now=lambda: "2026-12-01T10:00:00Z")

    def emit(evse: int, events: list[dict[str, Any]]) -> None:
        for e in events:
            sent.append((now[0], e["eventType"], e["triggerReason"]))
            if e["eventType"] == "Started":
                sampler.transaction_started(evse)

    sampler = MeterSampler(
        build_device_model(SETTINGS), tx, emit, lambda: "t", lambda: None, TaskOwner("t")
    )
    sampler.monotonic = lambda: now[0]

    def run_until(t: float) -> None:  # a reading every second, as the CS sends them
        while now[0] < t:
            now[0] += 1.0
            sampler.reading(1, reading(now[0]))

    emit(1, tx.cp_state(1, "B1"))  # first transaction: started at t=0
    run_until(14)
    emit(1, tx.cp_state(1, "A1"))  # ends at 14
    run_until(17)
    emit(1, tx.cp_state(1, "B1"))  # the next starts at 17: 3 s into the old phase
    run_until(30)
    periodic = [t for t, kind, why in sent if why == "MeterValuePeriodic"]
    assert periodic == [10.0, 27.0]
