"""`[scheduling] realtime_priority`: the event loop's thread really becomes SCHED_RR in
the kernel, what it spawns does not, and a process the kernel refuses keeps running
with a warning that names the setting. Real processes, real kernel (root, as in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from charger import config
from charger.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import json, os, sys, threading
    from charger.runtime.scheduling import apply_realtime_priority, describe
    if len(sys.argv) > 2:  # become that user: no CAP_SYS_NICE, RLIMIT_RTPRIO 0
        os.setgroups([]); os.setresgid(*[int(sys.argv[2])] * 3)
        os.setresuid(*[int(sys.argv[2])] * 3)
    problem = apply_realtime_priority(int(sys.argv[1]))
    child = os.fork()
    if child == 0:
        os.write(1, (describe() + "\\n").encode())
        os._exit(0)
    os.waitpid(child, 0)
    worker = []  # what asyncio.to_thread runs on
    thread = threading.Thread(target=lambda: worker.append(describe()))
    thread.start(); thread.join()
    print(json.dumps({"problem": problem, "self": describe(), "thread": worker[0],
                      "policy": os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK}))
    """
)


def probe(priority: int, *user: int) -> tuple[str, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(priority), *map(str, user)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    child, report = result.stdout.splitlines()
    return child, json.loads(report)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE)")


@needs_root
def test_the_loop_thread_becomes_round_robin_and_its_children_do_not() -> None:
    child, report = probe(20)
    assert report == {"problem": None, "self": "rr/20", "thread": "other", "policy": os.SCHED_RR}
    assert child == "other"  # the broker, rauc and worker threads: normal scheduling


def test_zero_leaves_the_scheduling_alone() -> None:
    child, report = probe(0)
    assert report["problem"] is None and report["self"] == "other" and child == "other"


@needs_root
def test_a_refused_priority_is_reported_and_the_process_runs_on() -> None:
    # nobody has neither CAP_SYS_NICE nor an RLIMIT_RTPRIO: the kernel says EPERM
    child, report = probe(20, 65534)
    problem = str(report["problem"])
    assert problem.startswith("[scheduling] realtime_priority = 20: the kernel refused SCHED_RR")
    assert "Operation not permitted" in problem and "CAP_SYS_NICE" in problem
    assert report["self"] == "other" and child == "other"


def test_a_priority_out_of_range_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[scheduling]\nrealtime_priority = 100\n[[evse]]\nid = 1\nevse_id = "DE*OWB*E1"\n'
    )
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert any("scheduling.realtime_priority" in p for p in info.value.problems)
    path.write_text(
        '[scheduling]\nrealtime_priority = 20\n[[evse]]\nid = 1\nevse_id = "DE*OWB*E1"\n'
    )
    assert config.load(path).scheduling.realtime_priority == 20
