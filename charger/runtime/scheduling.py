"""Process scheduling (`[scheduling]`): the one event loop as a real-time task.

The V2G charge loop wants an answer within 25 ms (CurrentDemand) and this firmware
answers in well under a millisecond of its own time; what makes the tail is waiting for
the CPU. With normal scheduling, any busy process on the board (a log rotation, an
update's download, the broker under a flood) delays the loop's wake-up by whole
scheduler slices: measured on a 2-vCPU machine with other jobs running, ChargingStatus
answered on the wire with a p99 of 4 to 116 ms, and under 1 ms once the process ran
SCHED_RR (docs/benchmarks.md, session 6). The same wake-up carries the IEC 61851 safety
path.

The image's systemd unit starts the process SCHED_RR already (`CPUSchedulingPolicy=`);
this setting is for other launchers (`charger secc` on a bench, a container). Children
(the broker, `rauc`, helper threads) start with normal scheduling again
(SCHED_RESET_ON_FORK), so only the event loop's thread is real-time; the kernel still
keeps 5 % of each second for the rest (sched_rt_runtime_us), so a runaway loop cannot
lock the board up, and the systemd watchdog restarts it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from charger.runtime.settings import setting


@dataclass(frozen=True)
class SchedulingConfig:
    """How the kernel schedules the firmware's event loop."""

    realtime_priority: int = setting(
        0,
        "0: keep the scheduling the process was started with (the image's unit starts it "
        "SCHED_RR); 1-99: switch the event loop to SCHED_RR at this priority at start-up "
        "(needs CAP_SYS_NICE or LimitRTPRIO; refused: a warning, and it runs as before)",
        lo=0,
        hi=99,
    )


def apply_realtime_priority(priority: int) -> str | None:
    """Makes the calling thread SCHED_RR at `priority` (children reset to normal);
    returns why the kernel refused, or None. 0 leaves the scheduling alone."""
    if priority == 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as exc:
        return (
            f"[scheduling] realtime_priority = {priority}: the kernel refused SCHED_RR "
            f"({exc.strerror or exc}); running with normal scheduling (give the process "
            "CAP_SYS_NICE or LimitRTPRIO, or set CPUSchedulingPolicy=rr in its unit)"
        )
    return None


def describe() -> str:
    """The calling thread's policy and priority, as the start-up log line shows them."""
    policy = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
    names = {os.SCHED_OTHER: "other", os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}
    name = names.get(policy, str(policy))
    return f"{name}/{os.sched_getparam(0).sched_priority}" if policy != os.SCHED_OTHER else name
