"""SLAC match time against Qualcomm's `pev`: ours and the reference `evse`, same run.

Alternates runs of the two EVSEs through the shared harness (network namespaces, the
QCA7000/powerline emulator; root required) and reports CM_SLAC_PARM.REQ ->
CM_SLAC_MATCH.CNF as seen on the EVSE's link, plus our own reaction times taken from the
capture. The floor is pev's 10 sounds x 20 ms. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "shared" / "slac-harness"
OURS = [sys.executable, "-m", "charger", "slac", "--iface", "slt-e", "--timeout", "20"]
REFERENCE = ["evse", "-i", "slt-e", "-p", str(HARNESS / "cfg" / "evse.ini"), "-l"]


def run(command: list[str], out: Path) -> tuple[float, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [str(HARNESS / "slac_ci.sh"), "-a", "-t", "10", "-o", str(out), "--", *command],
        cwd=HARNESS,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    found = re.search(r"param_req->match_cnf=([\d.]+) ms", result.stdout)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"harness run failed:\n{result.stdout}{result.stderr}")
    timing = subprocess.run(
        [sys.executable, str(HARNESS / "slac_decode.py"), "timing", str(out / "evse-side.pcapng")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    marks = {
        name: float(ms)
        for ms, name in re.findall(r"^\s*(-?[\d.]+) ms\s+first (\S+)", timing, re.MULTILINE)
    }
    return float(found.group(1)), marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours, reference, reactions = [], [], {"parm_cnf_ms": [], "match_cnf_ms": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            total, marks = run(OURS, Path(tmp) / f"ours{i}")
            ours.append(total)
            reactions["parm_cnf_ms"].append(marks["CM_SLAC_PARAM.CNF"] - marks["CM_SLAC_PARAM.REQ"])
            reactions["match_cnf_ms"].append(
                marks["CM_SLAC_MATCH.CNF"] - marks["CM_SLAC_MATCH.REQ"]
            )
            reference.append(run(REFERENCE, Path(tmp) / f"ref{i}")[0])
    ours_ms, ref_ms = statistics.median(ours), statistics.median(reference)
    print(
        json.dumps(
            {
                "bench": "slac",
                "runs": args.runs,
                "ours_median_ms": round(ours_ms, 1),
                "reference_median_ms": round(ref_ms, 1),
                "difference_ms": round(ours_ms - ref_ms, 1),
                "target_difference_ms": 5,
                "ours_ms": ours,
                "reference_ms": reference,
                "our_parm_cnf_reaction_ms": round(statistics.median(reactions["parm_cnf_ms"]), 2),
                "our_match_cnf_reaction_ms": round(statistics.median(reactions["match_cnf_ms"]), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
