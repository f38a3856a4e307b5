"""JSON at the trust boundaries (bus, OCPP frames, sim commands): bounded before decoding,
strict numbers, and nothing but the boundary's own error ever escapes (reliability issue,
defects 5 and 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charger.bus import api
from charger.bus.api import ApiError
from charger.protocols.mqtt.connection import BrokerAddress
from charger.protocols.ocpp import rpc
from charger.protocols.ocpp.rpc import RpcError
from charger.runtime.jsonsafe import JsonError, dumps, loads, nesting_depth
from charger.sim.board import create_board
from charger.sim.service import SimCommandService
from tests.support.station import station_config

DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (DEEP, "nested deeper than 32 levels"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper than 32 levels"),
        (b"[NaN]", "NaN is not a number"),
        (b'{"x": Infinity}', "Infinity is not a number"),
        (b"[-Infinity]", "-Infinity is not a number"),
        (b"[1e999]", "the number 1e999 is out of range"),
        (b"[" + b"9" * 5000 + b"]", "not acceptable JSON"),
        (b'["\xff"]', "not UTF-8: invalid start byte at byte 2"),
        (b"[1,", "not JSON"),
        (b" " * 70_000, r"too large: 70000 bytes \(at most 65536\)"),
    ],
)
def test_hostile_documents_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonError, match=reason):
        loads(raw, max_bytes=65536, max_depth=32)


def test_depth_ignores_brackets_inside_strings_and_counts_nesting() -> None:
    assert nesting_depth(b'[[1],{"a":"[[[[[[{{{"}]', 10) == 2
    assert loads(b'["[[[[[[[["]', max_bytes=100, max_depth=1) == ["[[[[[[[["]
    assert loads(b"[[[[1]]]]", max_bytes=100, max_depth=4) == [[[[1]]]]
    with pytest.raises(JsonError):
        loads(b"[[[[1]]]]", max_bytes=100, max_depth=3)


def test_nothing_non_json_goes_out() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        dumps({"current": float("nan")})
    message = api.update("cp_status", "cs/josev", {"duty_cycle": float("inf")})
    with pytest.raises(ValueError):
        message.to_json()


def test_bus_refuses_a_1000_deep_array_and_nan_current() -> None:
    with pytest.raises(ApiError, match="payload is nested deeper"):
        api.parse(DEEP, "josev/cs")
    pwm = {
        "id": "6c1f594a-3dfe-409b-8251-bceb68ad0812",
        "name": "cp_pwm",
        "type": "request",
        "data": {"evse_id": "E", "hlc": False, "current": "NaN"},
    }
    raw = json.dumps(pwm).replace('"NaN"', "NaN").encode()
    with pytest.raises(ApiError, match="NaN is not a number"):
        api.parse(raw, "josev/cs")


@pytest.mark.parametrize(
    ("frame", "code", "message_id"),
    [
        ('[2, "m1"]', "ProtocolError", "m1"),  # a CALL of two elements: its id is readable
        ('[2.0, "m2", "Heartbeat", {}]', "MessageTypeNotSupported", "m2"),
        ('[true, "m3", "Heartbeat", {}]', "MessageTypeNotSupported", "m3"),
        ("[2, " + "[" * 1000 + "]" * 1000 + "]", "RpcFrameworkError", "-1"),
        ('[2, "m4", "MeterValues", {"evseId": NaN}]', "RpcFrameworkError", "-1"),
        ('[2, "m5", "Heartbeat", {"x": ' + "9" * 5000 + "}]", "RpcFrameworkError", "-1"),
    ],
)
def test_ocpp_frames_get_the_protocol_error_with_their_id(
    frame: str, code: str, message_id: str
) -> None:
    with pytest.raises(RpcError) as info:
        rpc.parse(frame)
    assert (info.value.code, info.value.message_id) == (code, message_id)
    assert json.loads(info.value.frame())[:3] == [4, message_id, code]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity included: json allows them out


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["josev/cs", "cs/josev", "ocpp/iso15118"]))
def test_bus_parser_raises_only_api_errors(value: Any, topic: str) -> None:
    try:
        message = api.parse(_raw(value), topic)
    except ApiError:
        return
    message.to_json()  # what was accepted goes out as JSON again


@settings(max_examples=300, deadline=None)
@given(json_values | st.binary(max_size=64).map(lambda b: b.decode("latin-1")))
def test_ocpp_parser_raises_only_rpc_errors(value: Any) -> None:
    raw = value if isinstance(value, str) else _raw(value).decode()
    try:
        rpc.parse(raw)
    except RpcError as exc:
        json.loads(exc.frame())  # the CALLERROR itself is valid JSON


@settings(max_examples=200, deadline=None)
@given(
    json_values
    | st.builds(
        lambda v: {"cmd": "set_ev", **v},
        st.dictionaries(
            st.sampled_from(["soc_percent", "max_current_a", "phases", "hlc", "lose_sounds"]),
            st.none() | st.booleans() | st.integers() | st.floats(),
        ),
    )
)
def test_sim_commands_always_get_a_json_reply(value: Any) -> None:
    cfg = station_config(__import__("pathlib").Path("/nonexistent"))
    service = SimCommandService(create_board(cfg.evses, cfg.sim), BrokerAddress(port=1))
    reply = json.loads(service.handle(_raw(value)))
    assert isinstance(reply["ok"], bool)
