"""The bus under a flood: memory, event-loop lag, CP latency and time to recover.

An in-process station (simulated board charging an EV, CS controller, local
authorization, the MQTT bridge and the simulator's command service) talks to a broker
spawned exactly as `charger` spawns it (per-role logins, the same per-client limits).
A separate process (`python -m rig.flood`, role `josev`, TCP on 127.0.0.1) then sends,
one scenario per fresh station process:

- `valid`: `--rate` valid messages a second (status, meter and parameter requests and
  display updates) for `--seconds`;
- `invalid`: the same rate of non-JSON, non-UTF-8 and schema-invalid messages;
- `requests`: `--request-rate` `cs_status_and_limits` requests a second, each timed to
  its answer.

Meanwhile the EV leaves C for B and comes back every 20 ms (CP state change to
contactor-open, as `bench/cp_latency.py` measures it) and a task measures how late a
1 ms sleep wakes (loop lag). The flood is preceded by 1 s of the same messages at up to
1000/s (first uses: validators, caches). Measured: the station's RSS growth (from
/proc, peak during the flood and 2 s after it, over the level at its start; and from
before the warm-up), the CPU it used, loop-lag p99, CP-latency p99, how
many requests were answered and how fast, and the time from the flood's end to the
answer of a request sent then (recovery). Prints one JSON line.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from charger import config
from charger.bus import Bus
from charger.cs.controller import CsController, StationIdentity
from charger.protocols.local_auth import LocalAuthorization
from charger.protocols.mqtt import credentials
from charger.protocols.mqtt.bridge import MqttBridge
from charger.protocols.mqtt.broker import MosquittoSupervisor
from charger.protocols.mqtt.connection import BrokerAddress
from charger.runtime.store import Store
from charger.sim.board import create_board
from charger.sim.service import SimCommandService
from rig.net import free_port

ROOT = Path(__file__).resolve().parent.parent
EVSE_ID = "DE*BEN*E1"
SCENARIOS = ("valid", "invalid", "requests")
TARGETS = {
    "rss_growth_mb": 10,
    "loop_lag_p99_ms": 10,
    "recovery_ms": 1000,
    "requests_per_s": 3000,
    "answer_p99_ms": 50,
    "cp_latency_p99_ms": 10,
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3)


async def scenario(kind: str, rate: int, seconds: float, tmp: Path) -> dict[str, Any]:
    state = tmp / "state"
    state.mkdir(mode=0o700)
    cfg = config.parse(
        tomllib.loads(f"""
[station]
state_dir = "{state}"
meter_interval_s = 1
[[evse]]
id = 1
evse_id = "{EVSE_ID}"
contactor_min_off_s = 0  # cycle the EV every 20 ms
[sim]
ev_reaction_s = 0
"""),
        "bench",
    )
    logins = credentials.load_or_create(state)
    port = free_port()
    broker = MosquittoSupervisor("mosquitto", "127.0.0.1", port, state / "run", logins)
    await broker.start()
    address = BrokerAddress(socket=broker.socket_path, credentials=logins["charger"])
    bus = Bus(request_timeout_s=5.0)
    board = create_board(cfg.evses, cfg.sim)
    sim = board.evse(1)
    store = Store(state / "charger.db")
    identity = StationIdentity(cfg.station, cfg.ocpp, True)
    controller = CsController(
        identity, cfg.evses, board, bus, store, availability={}, on_reset=lambda: None
    )
    local_auth = LocalAuthorization(bus, free=True, tokens=())
    local_auth.start()
    bridge = MqttBridge(bus, address)
    sim_service = SimCommandService(board, address)
    tasks = [asyncio.create_task(bridge.run()), asyncio.create_task(sim_service.run())]
    await asyncio.wait_for(bridge.connected.wait(), 10)
    await asyncio.wait_for(sim_service.connected.wait(), 10)
    await board.start()
    controller.start()
    tasks.append(asyncio.create_task(controller.run()))

    closed, opened = asyncio.Event(), asyncio.Event()
    opened_at: list[float] = []
    original = sim.set_closed

    def set_closed(value: bool) -> None:
        original(value)
        if value:
            closed.set()
        else:
            opened_at.append(time.perf_counter())
            opened.set()

    sim.set_closed = set_closed  # type: ignore[method-assign]
    sim.plug_in()
    await asyncio.wait_for(closed.wait(), 10)

    flooding = asyncio.Event()
    lags_ms: list[float] = []
    rss_samples: list[float] = []

    async def watch_loop() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            if flooding.is_set():
                lags_ms.append((time.perf_counter() - before - 0.001) * 1000.0)

    async def watch_memory() -> None:
        while True:
            rss_samples.append(rss_mb())
            await asyncio.sleep(0.05)

    cp_ms: list[float] = []

    async def cycle_cp() -> None:
        while True:
            await asyncio.sleep(0.02)
            if not closed.is_set():
                await closed.wait()
            closed.clear()
            opened.clear()
            started = time.perf_counter()
            sim.ev.s2_state = "B"  # the EV opens S2: C -> B
            sim._pilot_changed()
            await opened.wait()
            if flooding.is_set():
                cp_ms.append((opened_at[-1] - started) * 1000.0)
            sim.ev.s2_state = "C"
            sim._pilot_changed()

    await asyncio.sleep(1.0)  # settle
    rss_cold = rss_mb()
    watchers = [
        asyncio.create_task(watch_loop()),
        asyncio.create_task(watch_memory()),
        asyncio.create_task(cycle_cp()),
    ]
    josev = logins["josev"]
    spec = {
        "port": port,
        "username": josev.username,
        "password": josev.password,
        "kind": kind,
        "rate": rate,
        "seconds": seconds,
        "evse_id": EVSE_ID,
        "settle_s": 5.0,
        "warmup_s": 1.0,
    }
    flooder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rig.flood",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 24,  # the result lists every update seen
    )
    assert flooder.stdin is not None and flooder.stdout is not None
    flooder.stdin.write(json.dumps(spec).encode() + b"\n")
    await flooder.stdin.drain()
    flooder.stdin.close()
    started = json.loads(await asyncio.wait_for(flooder.stdout.readline(), 30))
    assert started == {"event": "flooding"}, started
    rss_before = rss_mb()
    flooding.set()
    flood_started = time.perf_counter()
    cpu_started = time.process_time()
    samples_before = len(rss_samples)
    ended = json.loads(await asyncio.wait_for(flooder.stdout.readline(), seconds + 60))
    assert ended == {"event": "flood_ended"}, ended
    flooding.clear()
    flood_s = time.perf_counter() - flood_started
    cpu_percent = (time.process_time() - cpu_started) / flood_s * 100
    rss_at_end = rss_mb()
    line = await asyncio.wait_for(flooder.stdout.readline(), 60)
    await flooder.wait()
    result = json.loads(line)
    await asyncio.sleep(2.0)
    rss_after = rss_mb()
    peak = max(rss_samples[samples_before:] or [rss_at_end])

    for task in [*watchers, *tasks]:
        task.cancel()
    await asyncio.wait([*watchers, *tasks], timeout=10)
    await controller.close()
    await local_auth.close()
    await board.stop()
    store.close()
    await broker.stop()
    stats = getattr(bridge, "stats", None)
    result.pop("watched", None)
    return {
        **result,
        "flood_s": round(flood_s, 2),
        "cpu_percent": round(cpu_percent),
        "rss_cold_mb": round(rss_cold, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_growth_mb": round(peak - rss_before, 1),
        "rss_growth_after_mb": round(rss_after - rss_before, 1),
        "rss_growth_at_end_mb": round(rss_at_end - rss_before, 1),
        "rss_growth_from_cold_mb": round(rss_after - rss_cold, 1),
        "loop_lag_p50_ms": percentile(lags_ms, 0.5),
        "loop_lag_p99_ms": percentile(lags_ms, 0.99),
        "loop_lag_max_ms": percentile(lags_ms, 1.0),
        "cp_transitions": len(cp_ms),
        "cp_latency_p50_ms": round(statistics.median(cp_ms), 3) if cp_ms else None,
        "cp_latency_p99_ms": percentile(cp_ms, 0.99),
        "bridge": stats() if callable(stats) else None,
    }


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    rate = args.request_rate if kind == "requests" else args.rate
    seconds = args.request_seconds if kind == "requests" else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(scenario(kind, rate, seconds, Path(tmp)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=10_000, help="flood messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="flood duration")
    parser.add_argument("--request-rate", type=int, default=3000)
    parser.add_argument("--request-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=SCENARIOS, help="one scenario, in this process")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args)))
        return
    results: dict[str, Any] = {}
    for kind in SCENARIOS:  # each in a fresh process: memory figures of its own
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--only",
            kind,
            f"--rate={args.rate}",
            f"--seconds={args.seconds}",
            f"--request-rate={args.request_rate}",
            f"--request-seconds={args.request_seconds}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            results[kind] = {"error": done.stderr.strip().splitlines()[-1:]}
            continue
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        json.dumps(
            {
                "bench": "bus_flood",
                **results,
                "targets": TARGETS,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
