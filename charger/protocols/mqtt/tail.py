"""`charger bus tail`: prints Josev API traffic from the broker, one line per message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from charger.protocols.mqtt.connection import BrokerAddress, connect

# Fields worth seeing at a glance, in this order, when a message carries them.
KEY_FIELDS = (
    "evse_id",
    "state",
    "status",
    "status_code",
    "hlc",
    "current",
    "action",
    "token_type",
    "operational_status",
    "tech_code",
    "total_active_energy_imported",
    "run_id",
)


def describe(topic: str, payload: bytes, as_json: bool, now: float | None = None) -> str:
    now = time.time() if now is None else now
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    try:
        message: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        message = None
    if as_json:
        return json.dumps(
            {
                "time": stamp,
                "topic": topic,
                "message": message if message is not None else payload.decode(errors="replace"),
            }
        )
    if not isinstance(message, dict):
        return f"{stamp} {topic} <not JSON: {payload[:80]!r}>"
    data = message.get("data")
    fields = []
    if isinstance(data, dict):
        fields = [f"{k}={_short(data[k])}" for k in KEY_FIELDS if k in data]
    if topic.startswith("sim/"):
        fields = [f"{k}={_short(v)}" for k, v in message.items() if k != "state"]
    name, type_ = message.get("name", "-"), message.get("type", "-")
    return f"{stamp} {topic:<9} {name:<22} {type_:<8} " + " ".join(fields)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    return str(value)


async def tail(broker: BrokerAddress, as_json: bool, emit: Callable[[str], None]) -> None:
    """Hands one described line per message on the Josev topics to `emit`."""
    async with connect(broker, "charger-tail") as client:
        await client.subscribe("+/+")
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            emit(describe(str(message.topic), payload, as_json))
