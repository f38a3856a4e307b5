"""The bus is an attack surface (reliability issue, defects 1-3): the broker the charger
spawns admits no anonymous client, each role publishes only its side's messages, the
charger's own clients use a socket nobody else can put a broker behind, the credentials
and state are private, and no password travels on the bus."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from rig.net import free_port
from rig.processes import EVSE_ID, Charger
from tests.support.probe import _client, probe_on

EXTERNAL_AUTH = '[authorization]\nmode = "external"\n'


def authorization(status: str) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "name": "authorization",
        "type": "update",
        "data": {"evse_id": EVSE_ID, "status": status},
    }


async def test_anonymous_and_wrong_password_clients_are_refused(
    start_charger: Callable[..., Charger],
) -> None:
    port = free_port()
    charger = start_charger(port, broker="spawn")
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authorized"):
        async with _client(port):
            pass
    wrong = charger.logins()["josev"]
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authorized|[Bb]ad user"):
        async with _client(port, type(wrong)(wrong.username, "guess")):
            pass


async def test_a_read_only_client_cannot_start_charging(
    start_charger: Callable[..., Charger],
) -> None:
    """The attack of the issue: an `authorization` update (accepted) published by a
    client that may only read. A request of the `josev` role sent after the refused
    publish was acknowledged proves the charger has seen all that came before it."""
    port = free_port()
    charger = start_charger(port, broker="spawn", tail=EXTERNAL_AUTH)
    logins = charger.logins()
    async with probe_on(port, logins) as probe:
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="B1")
        async with _client(port, logins["monitor"]) as intruder:
            await intruder.publish("josev/cs", json.dumps(authorization("accepted")), qos=1)
        mark = probe.mark()
        contactor = await probe.request("cs_contactor_status", {"evse_id": EVSE_ID})
        assert contactor["data"]["status"] == "opened"
        assert "cp_status.update" not in probe.names(after=mark)
        # positive control: the josev role (an OEM tool with its credentials) may
        await probe.publish("josev/cs", authorization("accepted"))
        await probe.wait_message("cp_status", state="C2", after=mark)


async def test_credentials_and_state_are_private_and_no_password_is_on_the_bus(
    start_charger: Callable[..., Charger], tmp_path: Path
) -> None:
    port = free_port()
    password = "Another-S3cret-Password-1"
    tail = f'[ocpp]\nbasic_auth_password = "{password}"\n'
    charger = start_charger(port, broker="spawn", tail=tail)
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "mqtt-credentials.json").stat().st_mode) == 0o600
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.glob("*.db")} == {
        "charger.db": 0o600
    }
    async with probe_on(port, charger.logins()) as probe:
        model = await probe.request("device_model", {})
    assert model["data"]["basic_auth_password"] == ""
    assert password not in charger.log()


async def test_a_process_that_takes_the_port_while_the_broker_restarts_gets_nothing(
    start_charger: Callable[..., Charger],
) -> None:
    """Reliability issue, defect 2: during the restart gap another local process binds
    the broker's port. The charger's own clients use the Unix socket in the broker's
    private directory, so they never talk to the impostor; ours comes back when the
    port is free again."""
    import asyncio
    import os
    import re
    import signal

    port = free_port()
    charger = start_charger(port, broker="spawn")
    pid = int(re.findall(r"broker_started pid=(\d+)", charger.log())[0])
    connections: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(4096))
        writer.close()

    os.kill(pid, signal.SIGKILL)
    impostor = None
    for _ in range(200):  # take the port the moment our broker lets go of it
        try:
            impostor = await asyncio.start_server(record, "127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.005)
    assert impostor is not None
    async with impostor:
        # the bridge and the simulator keep trying while the impostor listens
        bridge_retries = charger.log().count("mqtt_disconnected client=charger ")
        for _ in range(1000):
            if charger.log().count("mqtt_disconnected client=charger ") >= bridge_retries + 2:
                break
            await asyncio.sleep(0.01)
        assert charger.log().count("mqtt_disconnected client=charger ") >= bridge_retries + 2
        assert connections == []  # never a CONNECT, never a password, to the impostor
    charger.wait_log("broker_started", count=2, timeout_s=60)
    charger.wait_log("mqtt_connected", count=2, timeout_s=30)
    async with probe_on(port, charger.logins()) as probe:
        params = await probe.request("cs_parameters", {})
        assert params["data"]["number_of_evses"] == 1
