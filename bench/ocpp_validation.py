"""OCPP message validation + serialisation cost: ours (compiled validators of the official
schemas) against the `ocpp` package's default path (jsonschema), in the same run.
Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio

from ocpp.messages import Call, _validate_payload, validate_payload

from charger.protocols.ocpp import rpc

TRANSACTION_EVENT = {
    "eventType": "Updated", "timestamp": "2026-11-22T03:00:00Z",
    "triggerReason": "MeterValuePeriodic", "seqNo": 12, "offline": False,
    "transactionInfo": {"transactionId": "c2b4d5e6-0001", "chargingState": "Charging"},
    "evse": {"id": 1, "connectorId": 1},
    "idToken": {"idToken": "04A1B2C3", "type": "ISO14443"},
    "meterValue": [{"timestamp": "2026-11-22T03:00:00Z", "sampledValue": [
        {"value": 1234.5, "measurand": "Energy.Active.Import.Register",
         "unitOfMeasure": {"unit": "Wh"}},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L1"},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L2"},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L3"},
        {"value": 11040.0, "measurand": "Power.Active.Import"},
    ]}],
}  # fmt: skip


def ours() -> str:
    rpc.validate("TransactionEvent", "Request", TRANSACTION_EVENT)
    return rpc.Call("c2b4d5e6-0001", "TransactionEvent", TRANSACTION_EVENT).frame()


def package_sync() -> str:
    """The package's validation work itself (jsonschema), without its thread hop."""
    call = Call(unique_id="c2b4d5e6-0001", action="TransactionEvent", payload=TRANSACTION_EVENT)
    _validate_payload(call, "2.0.1")
    return call.to_json()


_loop = asyncio.new_event_loop()


def package_default() -> str:
    """What the package does by default: validation in the loop's executor."""
    call = Call(unique_id="c2b4d5e6-0001", action="TransactionEvent", payload=TRANSACTION_EVENT)
    _loop.run_until_complete(validate_payload(call, "2.0.1"))
    return call.to_json()


def per_call_ms(fn: object, number: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    assert json.loads(ours())[3] == json.loads(package_default())[3]
    ours_ms = per_call_ms(ours, args.number)
    sync_ms = per_call_ms(package_sync, max(50, args.number // 20))
    default_ms = per_call_ms(package_default, max(50, args.number // 20))
    result = {
        "bench": "ocpp_validation",
        "message": "TransactionEventRequest",
        "ours_ms": round(ours_ms, 4),
        "ocpp_package_jsonschema_ms": round(sync_ms, 3),
        "ocpp_package_default_path_ms": round(default_ms, 3),
        "speedup_vs_default": round(default_ms / ours_ms, 1),
        "target_ms": 0.1,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
