"""The MQTT side under stress: bad input, a remote CS, brokers that die, resets, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from rig.net import free_port
from rig.processes import EVSE_ID, Broker, Charger, charger_config
from tests.support.probe import probe_on


async def test_malformed_and_invalid_messages_are_rejected(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    charger = start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        await probe.publish("josev/cs", b"{not json")
        await probe.publish("cs/josev", b"\xff\xfe")
        await probe.publish("josev/cs", {"id": "1", "name": "reset", "type": "request"})
        # schema-invalid request with an error response form: answered with status invalid
        bad_id = str(uuid.uuid4())
        await probe.publish(
            "josev/cs",
            {
                "id": bad_id,
                "name": "cp_pwm",
                "type": "request",
                "data": {
                    "evse_id": EVSE_ID,
                    "hlc": "yes",
                    "error_state": False,
                    "fault_state": False,
                },
            },
        )
        reply = await probe.wait_for(lambda t, m: m.get("id") == bad_id and m["type"] == "response")
        assert reply["data"]["status"] == "invalid" and reply["data"]["evse_id"] == EVSE_ID
        assert 'data.hlc: "yes" is not of type "boolean"' in reply["data"]["info"]
        # invalid update on the CS's own topic: logged, nothing else
        await probe.publish(
            "cs/josev",
            {
                "id": str(uuid.uuid4()),
                "name": "cp_status",
                "type": "update",
                "data": {"state": "Z"},
            },
        )
        # the process keeps serving
        params = await probe.request("cs_parameters", {})
        assert params["data"]["number_of_evses"] == 1
    charger.wait_log(r"cp_status.update: data: \"evse_id\" is a required property", timeout_s=5)
    log = charger.log()
    assert 'mqtt_message_rejected topic=josev/cs reason="payload is not JSON' in log
    assert 'mqtt_message_rejected topic=cs/josev reason="payload is not JSON' in log
    assert r"reset.request: message: \"data\" is a required property" in log
    assert charger.alive()


async def test_bad_sim_commands_get_an_error_reply(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        for payload, error in [
            ({"cmd": "fly", "id": "a"}, "unknown command 'fly'"),
            ({"cmd": "fault", "fault": "gremlins", "id": "b"}, "unknown fault 'gremlins'"),
            ({"cmd": "plug_in", "evse": 9, "id": "c"}, "no simulated EVSE 9"),
            ({"cmd": "set_ev", "soc_percent": 140, "id": "d"}, "'soc_percent' must be within"),
        ]:
            await probe.publish("sim/cmd", payload)
            reply = await probe.wait_for(
                lambda t, m, i=payload["id"]: t == "sim/reply" and m.get("id") == i
            )
            assert reply["ok"] is False and error in reply["error"]


async def test_remote_cs_mode(broker: Broker, start_charger: Callable[..., Charger]) -> None:
    """cs = "remote": the test is the CS; this firmware plays the josev side over MQTT."""
    charger = start_charger(broker.port, cs="remote")
    assert "hal=none" in charger.log()
    async with probe_on(broker.port) as probe:
        await probe.publish(
            "cs/josev",
            {
                "id": str(uuid.uuid4()),
                "name": "cp_status",
                "type": "update",
                "data": {"evse_id": EVSE_ID, "connector_id": 1, "state": "B1"},
            },
        )
        reply = await probe.request(
            "authorization",
            {"evse_id": EVSE_ID, "token_type": "no_authorization"},
            topic="cs/josev",
        )
        assert reply["data"] == {"status": "accepted"}
        # with no local CS, nobody in the process answers CS requests: the bridge's
        # error reply to a later invalid request of the same sender comes after any
        # answer to the first (one queue per sender, injected in order, and a local CS
        # answers cs_parameters as it is injected)
        mark = probe.mark()
        asked = str(uuid.uuid4())
        await probe.publish(
            "josev/cs", {"id": asked, "name": "cs_parameters", "type": "request", "data": {}}
        )
        barrier = str(uuid.uuid4())
        await probe.publish(
            "josev/cs",
            {"id": barrier, "name": "cp_pwm", "type": "request", "data": {"evse_id": EVSE_ID}},
        )
        reply = await probe.wait_for(
            lambda t, m: m.get("id") == barrier and m["type"] == "response", after=mark
        )
        assert reply["data"]["status"] == "invalid"
        responses = [(t, m) for t, m in probe.messages[mark:] if m.get("type") == "response"]
        assert [m["id"] for _, m in responses] == [barrier], responses
        await probe.publish("sim/cmd", {"cmd": "plug_in", "id": "x"})
        reply = await probe.wait_for(lambda t, m: t == "sim/reply")
        assert reply["ok"] is False and "not sim" in reply["error"]


async def test_bridge_reconnects_after_the_broker_restarts(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    charger = start_charger(broker.port)
    broker.kill()
    charger.wait_log("mqtt_disconnected")
    broker.start()
    charger.wait_log("mqtt_connected", count=2)
    async with probe_on(broker.port) as probe:
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="C2")
        names = probe.names(topic="cs/josev")
        assert names.count("cp_status.update") == 3  # B1, B2, C2: each exactly once
    assert charger.alive()


async def test_spawned_broker_is_restarted(
    tmp_path: Path, start_charger: Callable[..., Charger]
) -> None:
    port = free_port()
    charger = start_charger(port, broker="spawn")
    pid = int(re.findall(r"broker_started pid=(\d+)", charger.log())[0])
    os.kill(pid, signal.SIGKILL)
    charger.wait_log("broker_exited")
    charger.wait_log("broker_started", count=2)
    charger.wait_log("mqtt_connected", count=2)
    async with probe_on(port, charger.logins()) as probe:
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="C2")


async def test_station_reset_restarts_the_process(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    charger = start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        reply = await probe.request("reset", {})
        assert reply["data"] == {"status": "accepted"}
        charger.wait_log(" ready ", count=2)
        params = await probe.request("cs_parameters", {})
        assert params["data"]["parameters"][0]["evse_id"] == EVSE_ID
    assert charger.alive()  # same PID: re-exec in place


def test_check_config_and_bad_config(tmp_path: Path) -> None:
    good = charger_config(tmp_path, 1883)
    run = [sys.executable, "-m", "charger"]
    ok = subprocess.run([*run, "check-config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{good}: ok (1 EVSE")
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\nport = "x"\n[[evse]]\nid = 1\nevse_id = "E1"\nphases = 4\n')
    result = subprocess.run([*run, "check-config", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{bad}: mqtt.port: is 'x' (expected an integer from 1 to 65535)",
        f"{bad}: evse[0].phases: is 4 (expected an integer from 1 to 3)",
    ]
    started = subprocess.run(
        [*run, "run", "--config", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert started.returncode == 2 and "evse[0].phases" in started.stderr
    assert " ready " not in started.stderr


async def test_bus_tail_prints_one_line_per_message(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    start_charger(broker.port)
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "charger",
        "bus",
        "tail",
        "--port",
        str(broker.port),
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(1.0)  # let it subscribe
        async with probe_on(broker.port) as probe:
            await probe.sim("plug_in")
            await probe.wait_message("cp_status", state="C2")
        assert tail.stdout is not None
        lines = []
        async with asyncio.timeout(10):
            while not any('"C2"' in line for line in lines):
                lines.append((await tail.stdout.readline()).decode())
        records = [json.loads(line) for line in lines]
        cp = [r for r in records if r["message"].get("name") == "cp_status"]
        assert [r["message"]["data"]["state"] for r in cp] == ["B1", "B2", "C2"]
        assert all(r["topic"] == "cs/josev" for r in cp)
    finally:
        tail.terminate()
        await tail.wait()
