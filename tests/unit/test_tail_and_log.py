"""One-line renderings: `charger bus tail` and the key=value log format."""

import json
import logging
import time

import pytest

from charger.protocols.mqtt.tail import describe
from charger.runtime.log import KeyValueFormatter

NOW = time.mktime((2026, 11, 22, 3, 12, 31, 0, 0, -1)) + 0.312


def test_tail_line_shows_name_type_and_key_fields() -> None:
    payload = json.dumps(
        {
            "id": "x",
            "name": "cp_status",
            "type": "update",
            "data": {"evse_id": "DE*1", "connector_id": 1, "state": "C2"},
        }
    )
    line = describe("cs/josev", payload.encode(), as_json=False, now=NOW)
    assert line == "03:12:31.312 cs/josev  cp_status              update   evse_id=DE*1 state=C2"


def test_tail_json_and_garbage() -> None:
    record = json.loads(describe("josev/cs", b'{"name": "reset"}', as_json=True, now=NOW))
    assert record == {"time": "03:12:31.312", "topic": "josev/cs", "message": {"name": "reset"}}
    assert describe("josev/cs", b"\xff", as_json=False, now=NOW).endswith("<not JSON: b'\\xff'>")


def test_log_lines_are_key_value() -> None:
    record = logging.LogRecord("charger.x", logging.INFO, __file__, 1, "contactor", None, None)
    record.created, record.msecs = 0.0, 5
    record.kv = {"evse": "DE*1", "closed": True, "reason": "C2 authorized"}
    line = KeyValueFormatter().format(record)
    assert line == (
        "1970-01-01T00:00:00.005Z info charger.x contactor evse=DE*1 closed=True "
        'reason="C2 authorized"'
    )


async def test_credentials_never_reach_the_log_even_at_debug(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The WebSocket library logs its request headers at debug level; the Basic-auth
    password must not appear in any form (OCPP issue, defect 7)."""
    import base64

    import websockets

    from charger.runtime import log as charger_log

    password = "s3cret-Passw0rd-4-CSMS"
    token = base64.b64encode(f"CS001:{password}".encode()).decode()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    charger_log.configure("debug")
    try:
        async with websockets.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ocpp/CS001",
                additional_headers={"Authorization": f"Basic {token}"},
            ):
                pass
        logging.getLogger("charger").debug(
            "settings", extra={"kv": {"basic_auth_password": password}}
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capfd.readouterr().err
    assert "Authorization: Basic <redacted>" in err  # the header was logged, blanked
    assert "basic_auth_password=<redacted>" in err
    assert password not in err and token not in err
