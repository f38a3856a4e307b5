"""Start-up time and memory of `charger sim`: time from process start to the "ready" log
line, and the charger's resident memory (not the spawned broker's) once it charges.
Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rig.net import free_port
from rig.processes import charger_config


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def private_mb(pid: int) -> float:
    """Memory only this process holds (private pages): what a board's RAM really pays.
    RSS also counts shared, file-backed library code, which the kernel can drop."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split()[:2]
        fields[name] = int(value)
    return (fields["Private_Clean:"] + fields["Private_Dirty:"]) / 1024


def measure(tmp: Path) -> tuple[float, float, float]:
    config = charger_config(tmp, free_port(), broker="spawn")
    log = tmp / "charger.log"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "charger", "sim", "--demo", "--config", str(config)],
        stderr=log.open("wb"),
    )
    try:
        while " ready " not in log.read_text():
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.005)
        ready_s = time.perf_counter() - started
        time.sleep(6.0)  # the demo car plugs in after 3 s and charges
        assert "C2" in log.read_text(), "the demo session did not start"
        return ready_s, rss_mb(process.pid), private_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(measure(Path(tmp)))
    ready = sorted(r[0] for r in results)
    rss = sorted(r[1] for r in results)
    private = sorted(r[2] for r in results)
    print(
        json.dumps(
            {
                "bench": "footprint",
                "runs": args.runs,
                "ready_s_median": round(ready[len(ready) // 2], 3),
                "rss_mb_median": round(rss[len(rss) // 2], 1),
                "rss_mb_max": round(rss[-1], 1),
                "private_mb_median": round(private[len(private) // 2], 1),
                "target_rss_mb": 60,
            }
        )
    )


if __name__ == "__main__":
    main()
