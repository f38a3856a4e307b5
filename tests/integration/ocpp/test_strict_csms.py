"""Against an independent, strictly validating CSMS: ocpp-rpc (Node.js) in strict mode.

Every frame in both directions is checked against the official OCPP 2.0.1 schemas by
a second implementation; the CSMS drives device model, reports, local list, cache,
trigger, data transfer and remote start/stop operations and reports any violation.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rig.ocpp_station import station

CSMS_DIR = Path(__file__).parent / "strict_csms"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (CSMS_DIR / "node_modules" / "ocpp-rpc").is_dir(),
    reason="node and ocpp-rpc are installed by scripts/bootstrap.sh --test",
)


async def run_session() -> list[dict[str, Any]]:
    node = await asyncio.create_subprocess_exec(
        "node",
        str(CSMS_DIR / "strict_csms.js"),
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=CSMS_DIR,
    )
    assert node.stdout is not None
    records: list[dict[str, Any]] = []
    try:
        first = json.loads(await asyncio.wait_for(node.stdout.readline(), 10))
        assert first["event"] == "listening"
        async with station(f"ws://127.0.0.1:{first['port']}/ocpp"), asyncio.timeout(90):
            while not records or records[-1]["event"] != "done":
                line = await node.stdout.readline()
                assert line, "the strict CSMS stopped early"
                records.append(json.loads(line))
    finally:
        node.kill()
        await node.wait()
    return records


def answered(records: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == "out" and r["method"] == method]


async def test_a_session_with_a_strictly_validating_csms_has_no_violation() -> None:
    records = await run_session()
    violations = [r for r in records if r["event"] == "violation"]
    assert violations == []
    failed = [r for r in records if r["event"] == "out" and "error" in r]
    assert failed == []
    inbound = {r["method"] for r in records if r["event"] == "in"}
    assert {
        "BootNotification",
        "StatusNotification",
        "Heartbeat",
        "NotifyReport",
        "TransactionEvent",
    } <= inbound

    (get,) = answered(records, "GetVariables")
    statuses = [r["attributeStatus"] for r in get["result"]["getVariableResult"]]
    assert statuses == ["Accepted", "Accepted", "UnknownComponent"]
    (set_,) = answered(records, "SetVariables")
    statuses = [r["attributeStatus"] for r in set_["result"]["setVariableResult"]]
    assert statuses == ["Accepted", "Accepted", "Rejected"]  # Identity is ReadOnly
    assert answered(records, "SendLocalList")[0]["result"] == {"status": "Accepted"}
    assert answered(records, "GetLocalListVersion")[0]["result"] == {"versionNumber": 1}
    assert answered(records, "ClearCache")[0]["result"] == {"status": "Accepted"}
    assert answered(records, "RequestStartTransaction")[0]["result"]["status"] == "Accepted"
    assert answered(records, "RequestStopTransaction")[0]["result"] == {"status": "Accepted"}
    events = [
        r["params"] for r in records if r["event"] == "in" and r["method"] == "TransactionEvent"
    ]
    assert events[0]["eventType"] == "Started" and events[0]["triggerReason"] == "RemoteStart"
    assert events[-1]["eventType"] == "Ended" and events[-1]["triggerReason"] == "RemoteStop"
