"""A periodic `health` log line: what a long-running station should keep flat.

Tasks on the loop, resident and private memory, open file descriptors and the size of
the state directory's files, every `[log] health_interval_s`. The soak benchmark reads
these lines; an operator can graph them from the journal."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from charger.runtime.log import event

log = logging.getLogger(__name__)


def snapshot(state_dir: Path) -> dict[str, float]:
    """The figures of one health line (blocking: reads /proc and the state directory)."""
    memory = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split()[:2]
        memory[name] = int(value)
    try:
        state_kb = sum(p.stat().st_size for p in state_dir.iterdir() if p.is_file()) / 1024
    except OSError:
        state_kb = -1.0
    return {
        "rss_mb": round(memory["Rss:"] / 1024, 1),
        "private_mb": round((memory["Private_Clean:"] + memory["Private_Dirty:"]) / 1024, 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "state_kb": round(state_kb, 1),
    }


async def report_forever(state_dir: Path, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        figures = await asyncio.to_thread(snapshot, state_dir)
        event(log, logging.INFO, "health", tasks=len(asyncio.all_tasks()), **figures)
