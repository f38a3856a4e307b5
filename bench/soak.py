"""Soak: the whole firmware for a long time under simulated sessions and random faults.

`charger sim` (spawning its broker, OCPP to a CSMS on loopback) charges car after car
while, at random, faults are injected and cleared (RCD trip, CP short), the broker is
killed (the supervisor restarts it) and the CSMS goes away for a while. Every few
seconds the charger logs a `health` line (tasks, RSS, private memory, open files, state
size, the longest loop stall). At the end: those figures must be flat (the last
quarter's median against the first's, once warmed up), and the CSMS must hold every
transaction's events with no gap in seqNo, no two different events under one seqNo, and
each ended.

    python -m bench.soak --minutes 60        # docs/reliability.md has the latest run

Prints one JSON line. Only loopback traffic; bounded by --minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.processes import Charger, charger_config, launch_charger

HEALTH_INTERVAL_S = 5
FAULTS = ("rcd_trip", "cp_short")


def health(charger: Charger) -> list[dict[str, float]]:
    rows = []
    for line in charger.log().splitlines():
        if " health " not in line:
            continue
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        rows.append({k: float(v) for k, v in fields.items() if k != "evse"})
    return rows


def events_check(state: CsmsState) -> dict[str, int]:
    """Lost, duplicated (different events under one seqNo) and unfinished transactions."""
    by_tx: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    conflicts = 0
    for action, payload in state.received:
        if action != "TransactionEvent":
            continue
        tx_id, seq = payload["transaction_info"]["transaction_id"], payload["seq_no"]
        if seq in by_tx[tx_id] and by_tx[tx_id][seq] != payload:
            conflicts += 1
        by_tx[tx_id][seq] = payload
    gaps = sum(1 for ev in by_tx.values() if sorted(ev) != list(range(len(ev))))
    open_ = sum(1 for ev in by_tx.values() if ev[max(ev)]["event_type"] != "Ended")
    return {"transactions": len(by_tx), "seq_gaps": gaps, "conflicts": conflicts,
            "unended": open_}  # fmt: skip


async def sim(port: int, charger: Charger, cmd: str, **args: Any) -> None:
    """A simulator command through `charger simctl` (its own MQTT role)."""
    command = [sys.executable, "-m", "charger", "simctl", cmd, "--config", str(charger.config_path)]
    command += [f"{k}={json.dumps(v)}" for k, v in args.items()]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await process.wait()


def broker_pid(charger: Charger) -> int | None:
    pids = [line.split("pid=")[1].split()[0] for line in charger.log().splitlines()
            if " broker_started " in line]  # fmt: skip
    return int(pids[-1]) if pids else None


async def soak(minutes: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    deadline = time.monotonic() + minutes * 60
    counts = defaultdict(int)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        state = CsmsState(interval=60)
        port, csms_port = free_port(), free_port()
        async with ocpp_csms(state, port=csms_port) as url:
            tail = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n'
            config = charger_config(tmp, port, broker="spawn", tail=tail)
            text = config.read_text().replace(
                'level = "debug"', f'level = "info"\nhealth_interval_s = {HEALTH_INTERVAL_S}'
            )
            config.write_text(text)
            charger = launch_charger(config, tmp / "charger.log", port)
            csms_down: asyncio.Task[None] | None = None
            try:
                while time.monotonic() < deadline:
                    await sim(port, charger, "plug_in")
                    await asyncio.sleep(rng.uniform(2, 8))
                    roll = rng.random()
                    if roll < 0.15:
                        fault = rng.choice(FAULTS)
                        await sim(port, charger, "fault", fault=fault)
                        await asyncio.sleep(1)
                        await sim(port, charger, "fault", fault=fault, on=False)
                        if fault == "rcd_trip":
                            await sim(port, charger, "rcd_reset")
                        counts["faults"] += 1
                    elif roll < 0.25 and (pid := broker_pid(charger)) is not None:
                        os.kill(pid, signal.SIGKILL)
                        counts["broker_kills"] += 1
                        await asyncio.sleep(2)
                    elif roll < 0.35 and csms_down is None:
                        state.refuse_connections = 10**6
                        for ws in state.connections:
                            await ws.close()
                        counts["csms_outages"] += 1

                        async def back(delay: float) -> None:
                            await asyncio.sleep(delay)
                            state.refuse_connections = 0

                        csms_down = asyncio.create_task(back(rng.uniform(5, 20)))
                    if csms_down is not None and csms_down.done():
                        csms_down = None
                    await sim(port, charger, "unplug")
                    counts["sessions"] += 1
                    await asyncio.sleep(rng.uniform(0.5, 2))
                state.refuse_connections = 0
                await asyncio.sleep(HEALTH_INTERVAL_S * 3)  # the CSMS catches up
            finally:
                charger.stop()
            rows = health(charger)
    quarter = max(1, len(rows) // 4)
    first, last = rows[1 : 1 + quarter], rows[-quarter:]  # after the warm-up line

    def growth(key: str) -> float:
        if not first or not last:
            return 0.0
        return round(statistics.median(r[key] for r in last)
                     - statistics.median(r[key] for r in first), 2)  # fmt: skip

    return {
        "bench": "soak",
        "minutes": minutes,
        **counts,
        "health_lines": len(rows),
        "rss_mb_growth": growth("rss_mb"),
        "private_mb_growth": growth("private_mb"),
        "anon_mb_growth": growth("anon_mb"),
        "fds_growth": growth("fds"),
        "tasks_growth": growth("tasks"),
        # the longest the event loop (and with it the safety path) was held, over the run
        "loop_stall_ms_max": max((r.get("loop_stall_ms", 0.0) for r in rows), default=0.0),
        **events_check(state),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(soak(args.minutes, args.seed))))


if __name__ == "__main__":
    main()
