"""Josev API messages: the envelope, message forms, and validation against the JSON schemas.

The JSON Schemas in `charger/assets/schemas/<name>.<type>.json` are the contract (one file
per message form, with the MQTT topics it travels on in ``x-topics``). `charger.bus.messages`
is generated from them: a payload TypedDict and a `Form` per form. Validation uses
jsonschema-rs with format checking, one validator built lazily per form (see
docs/benchmarks.md, "Validation", for why this validator).
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Generic, Literal, TypeVar

from charger.runtime import jsonsafe
from charger.runtime.assets import asset_path

# Bounds checked before a payload is decoded: the largest message of the contract
# (a device_model response with every component) stays far below these.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_DEPTH = 32
MessageType = Literal["request", "response", "update"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("request", "response", "update")
P = TypeVar("P")
R = TypeVar("R")


class ApiError(ValueError):
    """A message does not meet the Josev API contract; str() says what and where."""


@dataclass(frozen=True, slots=True)
class Message(Generic[P]):
    """One Josev API message as it travels on topic ``sender/receiver``."""

    name: str
    type: MessageType
    data: P
    sender: str
    receiver: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # "local" for messages made in this process, "mqtt" for ones the bridge injected.
    origin: str = "local"

    @property
    def topic(self) -> str:
        return f"{self.sender}/{self.receiver}"

    def envelope(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "data": dict(self.data)}  # type: ignore[call-overload]

    def to_json(self) -> bytes:
        return jsonsafe.dumps(self.envelope()).encode()

    def reply(self, data: Mapping[str, Any], topic: str | None = None) -> "Message[Any]":
        """The response to this request, on the reverse topic unless `topic` names another."""
        sender, receiver = (topic or f"{self.receiver}/{self.sender}").split("/", 1)
        return Message(self.name, "response", data, sender, receiver, id=self.id)


@dataclass(frozen=True, slots=True)
class Form(Generic[P]):
    """One message form (name x type): makes its messages and names what a handler gets.

    The instances live in the generated `charger.bus.messages` (one per schema file)."""

    name: str
    type: MessageType
    topics: tuple[str, ...]
    shape: object = field(repr=False, compare=False)  # the payload TypedDict

    def make(self, data: P, topic: str | None = None) -> Message[P]:
        """A new message of this form on `topic` (default: the form's first topic)."""
        sender, receiver = (topic or self.topics[0]).split("/", 1)
        return Message(self.name, self.type, data, sender, receiver)

    def answer(self, request: Message[Any], data: P) -> Message[P]:
        """This response form's answer to `request`: same id, on the reverse topic."""
        return Message(self.name, self.type, data, request.receiver, request.sender, id=request.id)

    def matches(self, message: Message[Any]) -> bool:
        return message.name == self.name and message.type == self.type


def request(name: str, topic: str, data: Mapping[str, Any]) -> Message[Any]:
    sender, receiver = topic.split("/", 1)
    return Message(name, "request", data, sender, receiver)


def update(name: str, topic: str, data: Mapping[str, Any]) -> Message[Any]:
    sender, receiver = topic.split("/", 1)
    return Message(name, "update", data, sender, receiver)


def timestamp(moment: datetime | None = None) -> str:
    """UTC date-time with milliseconds and a Z, the form the API's pattern accepts."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------- schemas


@cache
def schema(name: str, type_: str) -> dict[str, Any]:
    path = asset_path("schemas", f"{name}.{type_}.json")
    if (name, type_) not in forms():
        raise ApiError(f"unknown message form {name}.{type_}")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache
def forms() -> frozenset[tuple[str, str]]:
    """Every (name, type) pair the contract defines."""
    return frozenset(
        tuple(p.name.removesuffix(".json").split(".", 1))  # type: ignore[misc]
        for p in asset_path("schemas").iterdir()
        if p.name.endswith(".json")
    )


def topics(name: str, type_: str) -> tuple[str, ...]:
    return tuple(schema(name, type_)["x-topics"])


@cache
def _validator(name: str, type_: str) -> Any:
    # imported on first use: a station whose bus only carries its own messages (no
    # MQTT clients, no debug validation) does not load the library at all
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema(name, type_), validate_formats=True)


def validate(envelope: Any) -> None:
    """Checks a decoded JSON envelope against its form's schema; raises ApiError."""
    if not isinstance(envelope, dict):
        raise ApiError(f"message is a JSON {type(envelope).__name__}, expected an object")
    name, type_ = envelope.get("name"), envelope.get("type")
    if not isinstance(name, str) or type_ not in MESSAGE_TYPES:
        raise ApiError(
            f"envelope needs a string 'name' and a 'type' of {MESSAGE_TYPES}; "
            f"got name={name!r} type={type_!r}"
        )
    if (name, type_) not in forms():
        raise ApiError(f"unknown message {name!r} of type {type_!r}")
    validator = _validator(name, type_)
    if validator.is_valid(envelope):
        return
    error = next(iter(validator.iter_errors(envelope)))
    path = list(error.instance_path)
    if path[:1] == ["data"]:
        where = "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    else:
        where = ".".join(["message", *map(str, path)])
    # the validator's text quotes the offending value: keep the reason short
    raise ApiError(f"{name}.{type_}: {where}: {error.message[:300]}")


def decode(payload: bytes) -> Any:
    """The JSON document in an MQTT payload, within the bounds above; raises ApiError."""
    try:
        return jsonsafe.loads(payload, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)
    except jsonsafe.JsonError as exc:
        raise ApiError(f"payload is {exc}") from None


def parse(payload: bytes, topic: str) -> Message[Any]:
    """Decodes and validates one MQTT payload that arrived on `topic`."""
    envelope = decode(payload)
    validate(envelope)
    if topic not in topics(envelope["name"], envelope["type"]):
        allowed = ", ".join(topics(envelope["name"], envelope["type"]))
        raise ApiError(
            f"{envelope['name']}.{envelope['type']} is not allowed on topic "
            f"{topic} (allowed: {allowed})"
        )
    sender, receiver = topic.split("/", 1)
    return Message(
        envelope["name"],
        envelope["type"],
        envelope["data"],
        sender,
        receiver,
        id=envelope["id"],
        origin="mqtt",
    )


def error_response(envelope: Any, topic: str, reason: str) -> Message[Any] | None:
    """Builds the response a malformed request should get, when its form allows one.

    The request must at least carry a known name and a usable id. The reply uses the
    first of the statuses invalid/error/rejected the response schema accepts, echoes
    `evse_id`/`connector_id` when present, and carries `reason` in `info` or `reason`.
    """
    if not isinstance(envelope, dict) or envelope.get("type") != "request":
        return None
    name, msg_id = envelope.get("name"), envelope.get("id")
    if (
        not isinstance(name, str)
        or not isinstance(msg_id, str)
        or (name, "response") not in forms()
    ):
        return None
    sender, _, receiver = topic.partition("/")
    raw_data = envelope.get("data")
    data_in: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    props = schema(name, "response")["properties"]["data"].get("properties", {})
    statuses = props.get("status", {}).get("enum", [])
    for status in ("invalid", "error", "rejected"):
        if status not in statuses:
            continue
        data: dict[str, Any] = {"status": status}
        for key in ("evse_id", "connector_id"):
            if key in props and key in data_in:
                data[key] = data_in[key]
        for key in ("info", "reason"):
            if key in props:
                data[key] = reason[:500]
        reply = Message(name, "response", data, receiver, sender, id=msg_id)
        try:
            validate(reply.envelope())
        except ApiError:
            continue
        return reply
    return None
