"""The MQTT bridge's queues, in this process against a real mosquitto: what the outbox
keeps while the broker is away, and a noisy sender next to a quiet one
(docs/reliability.md, "A flood on the bus")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from charger.bus import Bus, api, messages
from charger.bus.api import Message
from charger.protocols.mqtt.bridge import SENDER_BURST, MqttBridge
from charger.protocols.mqtt.connection import BrokerAddress
from charger.runtime.tasks import TaskOwner
from rig.processes import Broker
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVSE = "DE*REL*E1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.kill()


@contextlib.asynccontextmanager
async def running(bridge: MqttBridge) -> AsyncIterator[None]:
    task = asyncio.create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def client(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"rel-{uuid.uuid4().hex[:8]}",
    ) as c:
        yield c


async def test_while_the_broker_is_away_snapshots_coalesce_and_events_are_kept(
    broker: Broker,
) -> None:
    bus = Bus(validate_outgoing=True)
    bridge = MqttBridge(bus, BrokerAddress("127.0.0.1", broker.port))
    # Not connected yet: everything waits in the outbox. 30 000 meter readings (a
    # snapshot per EVSE: the newest says all) with a contactor switching and the
    # pilot changing in between, 300 times each.
    readings = 30_000
    for n in range(readings):
        bus.publish(messages.METER_VALUES_UPDATE.make(meter_reading(n)))
        if n % 100 == 0:
            status = "closed" if n % 200 == 0 else "opened"
            bus.publish(
                messages.CS_CONTACTOR_STATUS_UPDATE.make({"evse_id": EVSE, "status": status})
            )
            state = "C2" if status == "closed" else "B2"
            bus.publish(
                messages.CP_STATUS_UPDATE.make({"evse_id": EVSE, "connector_id": 1, "state": state})
            )
    seen: list[dict[str, Any]] = []
    newest = meter_reading(readings - 1)
    async with client(broker) as observer:
        await observer.subscribe("cs/josev", qos=1)
        async with running(bridge):
            async with asyncio.timeout(10):
                async for incoming in observer.messages:
                    assert isinstance(incoming.payload, bytes)
                    seen.append(json.loads(incoming.payload))
                    last = seen[-1]
                    if last["name"] == "meter_values" and last["data"] == newest:
                        break
    contactor = [m["data"]["status"] for m in seen if m["name"] == "cs_contactor_status"]
    assert contactor == ["closed", "opened"] * (readings // 200)
    pilot = [m["data"]["state"] for m in seen if m["name"] == "cp_status"]
    assert pilot == ["C2", "B2"] * (readings // 200)
    meter = [m for m in seen if m["name"] == "meter_values"]
    assert len(meter) < 100  # coalesced, the newest last
    assert bridge.stats()["coalesced_out"] == readings - len(meter)


async def test_a_noisy_sender_does_not_starve_a_quiet_one(broker: Broker) -> None:
    bus = Bus()
    owner = TaskOwner("test")
    bridge = MqttBridge(bus, BrokerAddress("127.0.0.1", broker.port))
    # a service that costs 0.3 ms per message from josev: the flood outruns it
    busy = bus.subscribe_all(lambda m: _spin(0.0003), topic="josev/cs")
    injected: list[str] = []
    quiet = 20
    all_in = asyncio.Event()

    def on_cp_status(message: Message[Any]) -> None:
        if message.origin == "mqtt":
            injected.append(message.data["state"])
            if len(injected) == quiet:
                all_in.set()

    bus.subscribe(messages.CP_STATUS_UPDATE, on_cp_status, owner=owner)
    async with running(bridge), client(broker) as cs:
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rig.flood",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert flood.stdin is not None and flood.stdout is not None
        spec = {"port": broker.port, "kind": "valid", "rate": 10_000, "seconds": 2.5}
        flood.stdin.write(json.dumps({**spec, "evse_id": EVSE, "settle_s": 0.1}).encode())
        flood.stdin.write(b"\n")
        flood.stdin.close()
        try:
            assert json.loads(await flood.stdout.readline()) == {"event": "flooding"}
            ended = asyncio.create_task(flood.stdout.readline())
            # the quiet sender starts once more of the flood has come in than the noisy
            # sender's burst (not after a fixed time: on a loaded machine the flood may
            # take a while to build up)
            await eventually(lambda: flood_in(bridge) > SENDER_BURST)
            for n in range(quiet):  # the remote CS's pilot, every 50 ms
                update = api.update(
                    "cp_status", "cs/josev", {"evse_id": EVSE, "connector_id": 1, "state": "B1"}
                )
                await cs.publish("cs/josev", update.to_json(), qos=1)
                await asyncio.sleep(0.05 if n < quiet - 1 else 0)
            started = time.monotonic()
            arrived = asyncio.create_task(all_in.wait())
            await asyncio.wait({ended, arrived}, return_when=asyncio.FIRST_COMPLETED)
            arrived.cancel()
            assert json.loads(await ended) == {"event": "flood_ended"}
            assert len(injected) == quiet, (
                f"{len(injected)} of {quiet} cp_status updates reached the bus before the "
                f"flood ended ({time.monotonic() - started:.2f} s after the last was sent)"
            )
        finally:
            if flood.returncode is None:
                flood.kill()
            await flood.wait()
            busy()
            await owner.close()
    assert bridge.stats()["senders"]["josev"]["dropped"] > 0  # the noisy one paid


def flood_in(bridge: MqttBridge) -> int:
    received: int = bridge.stats()["senders"]["josev"]["received"]
    return received


def meter_reading(n: int) -> messages.MeterValuesUpdate:
    phases = {"l1": 230.0, "l2": 230.0, "l3": 230.0}
    return {
        "evse_id": EVSE,
        "timestamp": "2026-01-01T00:00:00Z",
        "voltage": phases,
        "current": {"l1": n / 1000, "l2": 0.0, "l3": 0.0},
        "power_factor": 1.0,
        "frequency": 50.0,
        "total_active_energy_imported": float(n),
        "total_reactive_energy_imported": 0.0,
    }


def _spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass
