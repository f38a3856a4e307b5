"""A periodic `health` log line: what a long-running station should keep flat.

Tasks on the loop, resident, private and anonymous memory, open file descriptors, the size of
the state directory's files, and the longest the event loop was held since the last
line (`loop_stall_ms`: the safety path runs on that loop, so this bounds how late it
can answer a CP change), every `[log] health_interval_s`. The soak benchmark reads
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
        # heap and stacks: the leak figure (private_mb also moves when other processes
        # map or unmap the same library files: their pages turn shared or private)
        "anon_mb": round(memory["Anonymous:"] / 1024, 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "state_kb": round(state_kb, 1),
    }


STALL_PROBE_PERIOD_S = 0.02  # the probe's timer; a stall shorter than this may go unseen
# IEC 61851-1 gives the EVSE 100 ms to open the contactor when the EV leaves state C; a
# loop held that long is worth a line of its own, not only the next health line's figure
STALL_WARNING_S = 0.1


class LoopStallMeter:
    """The longest a timer on the loop fired late: how long something held the loop
    (a blocking call, a long computation) while the timer was due."""

    def __init__(
        self, period_s: float = STALL_PROBE_PERIOD_S, warning_s: float = STALL_WARNING_S
    ) -> None:
        self.period_s, self.warning_s = period_s, warning_s
        self._worst_s = 0.0

    def late(self, late_s: float) -> None:
        if late_s >= self.warning_s and late_s > self._worst_s:
            # at most the stalls that beat the interval's worst: no flood from a slow board
            event(
                log,
                logging.WARNING,
                "loop_stalled",
                stall_ms=round(late_s * 1000, 1),
                warning_ms=round(self.warning_s * 1000),
            )
        self._worst_s = max(self._worst_s, late_s)

    def take(self) -> float:
        """The worst lateness since the last take, in seconds; starts afresh."""
        worst, self._worst_s = self._worst_s, 0.0
        return worst

    async def run(self) -> None:
        """Probes until cancelled. A bare timer callback, not a task's sleep: it runs 50
        times a second for the station's whole life, so it must cost next to nothing."""
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def arm() -> None:
            nonlocal timer
            due = loop.time() + self.period_s
            timer = loop.call_at(due, tick, due)

        def tick(due: float) -> None:
            self.late(loop.time() - due)
            arm()

        arm()
        try:
            await loop.create_future()  # until cancelled
        finally:
            if timer is not None:
                timer.cancel()


async def report_forever(state_dir: Path, interval_s: float) -> None:
    stalls = LoopStallMeter()
    async with asyncio.TaskGroup() as probes:
        probes.create_task(stalls.run(), name="loop stall probe")
        while True:
            await asyncio.sleep(interval_s)
            figures = await asyncio.to_thread(snapshot, state_dir)
            stall_ms = round(stalls.take() * 1000, 1)
            event(
                log,
                logging.INFO,
                "health",
                tasks=len(asyncio.all_tasks()),
                loop_stall_ms=stall_ms,
                **figures,
            )
