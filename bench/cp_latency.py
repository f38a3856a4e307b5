"""CP state change -> contactor command latency under bus load.

An in-process station (simulated board, CS controller, local authorization, MQTT bridge
to a real mosquitto) charges; the simulated EV then leaves C for B and we time from that
pilot change to the contactor-open call, over many transitions, while a load task pushes
bus messages (mirrored to MQTT) at the requested rate. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from charger import config
from charger.bus import Bus, api
from charger.cs.controller import CsController, StationIdentity
from charger.protocols.local_auth import LocalAuthorization
from charger.protocols.mqtt.bridge import MqttBridge
from charger.protocols.mqtt.broker import find_mosquitto
from charger.protocols.mqtt.connection import BrokerAddress
from charger.runtime.store import Store
from charger.sim.board import create_board
from rig.net import free_port, wait_port


async def run(transitions: int, load_hz: int, state_dir: Path, port: int) -> dict[str, object]:
    cfg = config.parse(
        tomllib.loads(f"""
[station]
state_dir = "{state_dir}"
meter_interval_s = 3600
[[evse]]
id = 1
evse_id = "DE*BEN*E1"
[sim]
ev_reaction_s = 0
"""),
        "bench",
    )
    bus = Bus(request_timeout_s=5.0)
    board = create_board(cfg.evses, cfg.sim)
    sim = board.evse(1)
    store = Store(state_dir / "charger.db")
    identity = StationIdentity(cfg.station, cfg.ocpp, True)
    controller = CsController(
        identity, cfg.evses, board, bus, store, availability={}, on_reset=lambda: None
    )
    local_auth = LocalAuthorization(bus, free=True, tokens=())
    local_auth.start()
    bridge = MqttBridge(bus, BrokerAddress("127.0.0.1", port))
    tasks = [asyncio.create_task(bridge.run())]
    await asyncio.wait_for(bridge.connected.wait(), 10)
    await board.start()
    controller.start()
    tasks.append(asyncio.create_task(controller.run()))

    opened_at: list[float] = []
    closed, opened = asyncio.Event(), asyncio.Event()
    original = sim.set_closed

    def set_closed(value: bool) -> None:
        original(value)
        if value:
            closed.set()
        else:
            opened_at.append(time.perf_counter())
            opened.set()

    sim.set_closed = set_closed  # type: ignore[method-assign]

    sent = 0

    async def load() -> None:
        nonlocal sent
        data = {"evse_id": "DE*BEN*E1", "status": "accepted"}
        period = 1.0 / load_hz
        next_at = time.perf_counter()
        while True:
            next_at += period
            bus.publish(api.update("authorization", "josev/cs", data))
            sent += 1
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    tasks.append(asyncio.create_task(load()))
    sim.plug_in()
    latencies = []
    started = time.perf_counter()
    for _ in range(transitions):
        await asyncio.wait_for(closed.wait(), 5)
        closed.clear()
        await asyncio.sleep(0.002)
        opened.clear()
        t0 = time.perf_counter()
        sim.ev.s2_state = "B"  # the EV opens S2: C -> B
        sim._pilot_changed()
        await asyncio.wait_for(opened.wait(), 5)
        latencies.append((opened_at[-1] - t0) * 1000.0)
        sim.ev.s2_state = "C"
        sim._pilot_changed()
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    await controller.close()
    await local_auth.close()
    await board.stop()
    store.close()
    latencies.sort()
    return {
        "bench": "cp_latency",
        "transitions": transitions,
        "bus_msgs_per_s": round(sent / elapsed),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "max_ms": round(latencies[-1], 3),
        "target_p99_ms": 10,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=1000)
    parser.add_argument("--load-hz", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(
            [find_mosquitto("mosquitto"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port)
            result = asyncio.run(run(args.transitions, args.load_hz, Path(tmp), port))
        finally:
            broker.kill()
            broker.wait()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
