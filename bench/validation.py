"""Schema validation: which validator the bus and OCPP use, measured.

For an OCPP TransactionEventRequest (5 sampled values) and a bus `cs_status_and_limits`
update, the time to validate one valid message with: fastjsonschema (compiled Python,
the previous choice), jsonschema-rs (Rust, formats checked; the current choice), and
msgspec decoding the JSON bytes into typed structs (hand-written here for the bus
message, since msgspec takes no JSON Schema: it cannot express the contract's
`if/then`, `not` or `x-topics`, so it would lose schema fidelity).

Run as `python -m bench.validation`. Prints one JSON line."""

from __future__ import annotations

import json
import sys
import timeit
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jsonschema_rs

from bench.ocpp import TRANSACTION_EVENT
from charger.bus import api

try:  # the alternatives compared come with the test extras, not the runtime; without
    import fastjsonschema  # them the bench measures what the charger uses, and says so
    import msgspec
except ImportError:
    fastjsonschema = msgspec = None

STATUS_AND_LIMITS = {
    "id": "6c1f594a-3dfe-409b-8251-bceb68ad0812",
    "name": "cs_status_and_limits",
    "type": "update",
    "data": {
        "evses": [
            {
                "evse_id": "DE*OWB*E0000000001",
                "status_code": "evse_ready",
                "ac": {
                    "max_current": {"l1": 16.0, "l2": 16.0, "l3": 16.0},
                    "nominal_voltage": 230.0,
                    "rcd_error": False,
                },
            }
        ]
    },
}


if msgspec is not None:  # typed structs, hand-written for the bus message

    class Phases(msgspec.Struct, forbid_unknown_fields=True):
        l1: float
        l2: float
        l3: float

    class AcLimits(msgspec.Struct, forbid_unknown_fields=True):
        max_current: Phases
        nominal_voltage: float
        rcd_error: bool

    class EvseLimits(msgspec.Struct, forbid_unknown_fields=True):
        evse_id: str
        status_code: str
        ac: AcLimits | None = None

    class Limits(msgspec.Struct, forbid_unknown_fields=True):
        evses: list[EvseLimits]

    class Envelope(msgspec.Struct, forbid_unknown_fields=True):
        id: str
        name: str
        type: str
        data: Limits


def ocpp_schema() -> dict[str, Any]:
    path = resources.files("ocpp.v201").joinpath("schemas", "TransactionEventRequest.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return schema


def per_call_us(fn: Any, number: int = 20_000) -> float:
    return round(min(timeit.Timer(fn).repeat(repeat=5, number=number)) / number * 1e6, 2)


def main() -> None:
    bus_schema = api.schema("cs_status_and_limits", "update")
    raw_bus = json.dumps(STATUS_AND_LIMITS).encode()
    rs_ocpp = jsonschema_rs.validator_for(ocpp_schema(), validate_formats=True)
    rs_bus = jsonschema_rs.validator_for(bus_schema, validate_formats=True)
    ocpp_us: dict[str, Any] = {}
    bus_us: dict[str, Any] = {}
    if fastjsonschema is not None:
        fast_ocpp = fastjsonschema.compile(ocpp_schema(), use_default=False)
        fast_bus = fastjsonschema.compile(bus_schema, use_default=False)
        ocpp_us["fastjsonschema"] = per_call_us(partial(fast_ocpp, TRANSACTION_EVENT))
        bus_us["fastjsonschema"] = per_call_us(partial(fast_bus, STATUS_AND_LIMITS))
    ocpp_us["jsonschema_rs"] = per_call_us(partial(rs_ocpp.validate, TRANSACTION_EVENT))
    bus_us["jsonschema_rs"] = per_call_us(partial(rs_bus.validate, STATUS_AND_LIMITS))
    bus_us["json_loads_plus_jsonschema_rs"] = per_call_us(
        lambda: rs_bus.validate(json.loads(raw_bus))
    )
    if msgspec is not None:
        bus_us["msgspec_decode_typed"] = per_call_us(
            partial(msgspec.json.Decoder(Envelope).decode, raw_bus)
        )
    bus_us["charger_bus_api_parse"] = per_call_us(partial(api.parse, raw_bus, "cs/josev"))
    result = {
        "bench": "validation",
        "ocpp_transaction_event_us": ocpp_us,
        "bus_cs_status_and_limits_us": bus_us,
        "python": sys.version.split()[0],
    }
    if fastjsonschema is None or msgspec is None:
        result["not_compared"] = "fastjsonschema, msgspec: test extras, not installed"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
