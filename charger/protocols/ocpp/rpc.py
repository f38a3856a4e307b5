"""OCPP-J 2.0.1 framing and validation, sans-IO.

Frames are JSON arrays: CALL `[2, id, action, payload]`, CALLRESULT `[3, id, payload]`,
CALLERROR `[4, id, code, description, details]`. `parse()` turns text into a frame or
raises `RpcError` carrying the CALLERROR the peer must get (OCPP-J 2.0.1 section 4.3):

| what is wrong | error code |
|---|---|
| not JSON, not an array, no readable message id | RpcFrameworkError (id "-1") |
| unknown message type number | MessageTypeNotSupported |
| wrong number of elements, action not a string, payload not an object | ProtocolError |
| action not in OCPP 2.0.1 | NotImplemented |
| payload: a required field missing, too few/many items | OccurrenceConstraintViolation |
| payload: wrong JSON type | TypeConstraintViolation |
| payload: enum, length, range, pattern or date-time format violated | PropertyConstraintViolation |
| payload: a field the schema does not define | FormatViolation |

Payloads are checked against the official OCPP 2.0.1 JSON schemas shipped with the
`ocpp` package, with one jsonschema-rs validator per action (full validation, formats
included, about 2 µs per TransactionEvent: docs/benchmarks.md, "Validation").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

from charger.runtime import jsonsafe

CALL, CALLRESULT, CALLERROR = 2, 3, 4
ErrorCode = Literal[
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
]
# jsonschema-rs error kinds -> OCPP-J error codes; any other kind violates a property
_KIND_CODES: dict[str, ErrorCode] = {
    "Required": "OccurrenceConstraintViolation",
    "MinItems": "OccurrenceConstraintViolation",
    "MaxItems": "OccurrenceConstraintViolation",
    "Type": "TypeConstraintViolation",
    "AdditionalProperties": "FormatViolation",
}
MAX_DESCRIPTION = 255
# Bounds checked before a frame is decoded: the WebSocket's own limit (1 MiB), and a
# nesting no OCPP 2.0.1 message comes near (its schemas nest less than 10 deep).
MAX_FRAME_BYTES = 1024 * 1024
MAX_DEPTH = 32


class RpcError(Exception):
    """A CALLERROR to send (or received): code, description and the message id."""

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        message_id: str = "-1",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code: ErrorCode = code
        self.description = description[:MAX_DESCRIPTION]
        self.message_id = message_id
        self.details = details or {}

    def frame(self) -> str:
        return jsonsafe.dumps(
            [CALLERROR, self.message_id, self.code, self.description, self.details]
        )


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]

    def frame(self) -> str:
        return jsonsafe.dumps([CALL, self.message_id, self.action, self.payload])


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]

    def frame(self) -> str:
        return jsonsafe.dumps([CALLRESULT, self.message_id, self.payload])


@dataclass(frozen=True, slots=True)
class CallErrorFrame:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallErrorFrame


def _schemas() -> Traversable:
    # found through `ocpp`, not `ocpp.v201`: importing that package builds its message
    # classes, which held the event loop (and so the safety path) 180 ms on a PC
    return resources.files("ocpp").joinpath("v201", "schemas")


@cache
def actions() -> frozenset[str]:
    """Every OCPP 2.0.1 action (the schemas come in Request/Response pairs)."""
    names = (p.name for p in _schemas().iterdir())
    return frozenset(n.removesuffix("Request.json") for n in names if n.endswith("Request.json"))


@cache
def _validator(name: str) -> Any:
    path = _schemas().joinpath(f"{name}.json")
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)  # a URN the validator need not resolve
    import jsonschema_rs  # on first use: a station without OCPP does not load it

    return jsonschema_rs.validator_for(schema, validate_formats=True)


def validate(
    action: str, kind: Literal["Request", "Response"], payload: Any, message_id: str = "-1"
) -> None:
    """Raises RpcError with the OCPP-J code for the first schema violation."""
    validator = _validator(f"{action}{kind}")
    if validator.is_valid(payload):
        return
    error = next(iter(validator.iter_errors(payload)))
    violated = type(error.kind).__name__.removeprefix("ValidationErrorKind_")  # older names
    code = _KIND_CODES.get(violated, "PropertyConstraintViolation")
    where = (
        action
        + kind
        + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
    )
    raise RpcError(code, f"{where}: {error.message}", message_id)


def parse(text: str | bytes) -> Frame:
    """Decodes one frame; raises RpcError with the CALLERROR the sender must get."""
    try:
        frame = jsonsafe.loads(text, max_bytes=MAX_FRAME_BYTES, max_depth=MAX_DEPTH)
    except jsonsafe.JsonError as exc:
        raise RpcError("RpcFrameworkError", f"message is {exc}") from None
    if not isinstance(frame, list) or len(frame) < 2:
        raise RpcError("RpcFrameworkError", "message is not an OCPP-J array [type, id, ...]")
    kind, message_id = frame[0], frame[1]
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 36:
        raise RpcError(
            "RpcFrameworkError", f"message id {message_id!r} is not a string of 1-36 characters"
        )
    if type(kind) is not int:  # 2.0 or true is no message type
        raise RpcError(
            "MessageTypeNotSupported", f"message type {kind!r} is not 2, 3 or 4", message_id
        )
    if kind == CALL:
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            raise RpcError("ProtocolError", "a CALL is [2, id, action, {payload}]", message_id)
        action = frame[2]
        if action not in actions():
            raise RpcError("NotImplemented", f"action {action!r} is not OCPP 2.0.1", message_id)
        validate(action, "Request", frame[3], message_id)
        return Call(message_id, action, frame[3])
    if kind == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise RpcError("ProtocolError", "a CALLRESULT is [3, id, {payload}]", message_id)
        return CallResult(message_id, frame[2])
    if kind == CALLERROR:
        if len(frame) != 5 or not all(isinstance(x, str) for x in frame[2:4]):
            raise RpcError(
                "ProtocolError", "a CALLERROR is [4, id, code, description, {details}]", message_id
            )
        details = frame[4] if isinstance(frame[4], dict) else {}
        return CallErrorFrame(message_id, frame[2], frame[3], details)
    raise RpcError("MessageTypeNotSupported", f"message type {kind!r} is not 2, 3 or 4", message_id)
