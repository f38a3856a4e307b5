"""An ISO 15118 session in `charger sim`, from the charger's log: time from the SLAC match
to the first charge-loop answer (ChargingStatusRes / CurrentDemandRes), and the memory a
running session adds to the charger process (RSS before the plug-in, while the loop runs
and after the session ended), and the longest the event loop was held meanwhile (the
health line's `loop_stall_ms`: the first session's work must not stall the safety
path). The simulated car speaks its own EVCC over the loopback link; the battery and
meter run in real time (`time_scale = 1`), so a DC session includes the simulated
station's cable check and precharge. Prints one JSON line.

    python -m bench.hlc_session [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.footprint import rss_mb
from rig.net import free_port
from rig.processes import charger_config, launch_charger

AC, DC = "hlc = true", 'hlc = true\nkind = "dc"'
VARIANTS = {  # [[evse]] keys, [sim] keys for the car, the charge loop's response
    "iso2-ac": (AC, 'ev_protocol = "iso2"\nev_energy = "ac"', "ChargingStatusRes"),
    "iso2-dc": (DC, 'ev_protocol = "iso2"\nev_energy = "dc"', "CurrentDemandRes"),
    "din-dc": (DC, 'ev_protocol = "din"\nev_energy = "dc"', "CurrentDemandRes"),
}
DEMO_PLUG_IN_S = 3.0  # `charger sim --demo` plugs the car in this long after start-up
HEALTH_INTERVAL_S = 0.5  # each health line: the longest loop stall since the one before


def stamp(line: str) -> float:
    return datetime.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()


def measure(tmp: Path, variant: str) -> dict[str, float]:
    evse, car, loop_response = VARIANTS[variant]
    extra = f"ev_hlc = true\n{car}\nev_soc_percent = 75\nev_target_soc_percent = 80\ntime_scale = 1"
    port = free_port()
    config = charger_config(
        tmp, port, broker="spawn", evse=evse, extra=extra,
        tail="[iso15118]\nlog_charging_loop = true",
    )  # fmt: skip
    text = config.read_text().replace(
        'level = "debug"', f'level = "info"\nhealth_interval_s = {HEALTH_INTERVAL_S}'
    )
    config.write_text(text.replace("time_scale = 50\n", ""))
    charger = launch_charger(config, tmp / "charger.log", port, ("--demo",))
    try:
        time.sleep(DEMO_PLUG_IN_S / 2)
        idle_mb = rss_mb(charger.process.pid)
        matched = charger.first_line("slac_matched", timeout_s=30)
        loop = charger.first_line("v2g_message", f"response={loop_response}", timeout_s=60)
        time.sleep(1.0)  # a few loop messages later
        session_mb = rss_mb(charger.process.pid)
        charger.first_line("v2g_session_end", timeout_s=600)
        time.sleep(0.5)
        after_mb = rss_mb(charger.process.pid)
        stalls = [
            float(field.split("=", 1)[1])
            for line in charger.log().splitlines()
            if " health " in line
            for field in line.split()
            if field.startswith("loop_stall_ms=")
        ]
        return {
            "match_to_loop_s": stamp(loop) - stamp(matched),
            # from start-up to the session's end: the worst the safety path could wait
            "loop_stall_ms_max": max(stalls, default=float("nan")),
            "session_rss_mb": session_mb - idle_mb,
            "after_rss_mb": after_mb - idle_mb,
        }
    finally:
        charger.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args()
    report: dict[str, object] = {"bench": "hlc_session", "runs": args.runs}
    for variant in args.variant or list(VARIANTS):
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(measure(Path(tmp), variant))
        report[variant] = {
            key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
