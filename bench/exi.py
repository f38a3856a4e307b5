"""EXI codec figures, in one run: per-message decode and encode time from Python and inside
C, the pure-Python backend, module import time and added RSS, and - when a Python with
the `iso15118` package (and Java) is given - its EXIficient codec on the same streams.

    python bench/exi.py [--iso15118-python /path/to/venv/bin/python]

Reads the streams from ../shared/exi-vectors. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VECTORS = ROOT.parent / "shared" / "exi-vectors" / "vectors.jsonl"

# (label, schema, message, required substring of the vector's JSON)
CASES = [
    ("SupportedAppProtocolReq", "appProtocol", "supportedAppProtocolReq", "urn:iso:15118:2:2013"),
    ("-2 SessionSetupReq", "iso2", "SessionSetupReq", ""),
    ("-2 ChargeParameterDiscoveryReq AC", "iso2", "ChargeParameterDiscoveryReq", "AC_EVCharge"),
    ("-2 ChargeParameterDiscoveryReq DC", "iso2", "ChargeParameterDiscoveryReq", "DC_EVCharge"),
    ("-2 PowerDeliveryReq", "iso2", "PowerDeliveryReq", ""),
    ("-2 CurrentDemandReq", "iso2", "CurrentDemandReq", ""),
    ("-2 CurrentDemandRes", "iso2", "CurrentDemandRes", ""),
    ("-2 ChargingStatusRes", "iso2", "ChargingStatusRes", ""),
    ("-2 CertificateInstallationRes", "iso2", "CertificateInstallationRes", ""),
    ("DIN CurrentDemandReq", "din", "CurrentDemandReq", ""),
    ("-20 DC_ChargeLoopReq", "iso20_dc", "DC_ChargeLoopReq", ""),
    ("-20 DC_ChargeLoopRes", "iso20_dc", "DC_ChargeLoopRes", ""),
]


def pick_vectors() -> list[tuple[str, dict[str, Any]]]:
    vectors = [json.loads(line) for line in VECTORS.open()]
    chosen = []
    for label, schema, message, needle in CASES:
        candidates = [
            v
            for v in vectors
            if v["schema"] == schema and v["message"] == message and needle in json.dumps(v["json"])
        ]
        # prefer what a real session sent
        candidates.sort(key=lambda v: (v["variant"] != "captured", -v["exi_len"]))
        chosen.append((label, candidates[0]))
    return chosen


def per_call_us(function: Any, budget_s: float = 0.2) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    runs = max(3, int(budget_s / max(timer.timeit(number) / number, 1e-9) / number))
    return min(timer.repeat(repeat=runs if runs < 7 else 7, number=number)) / number * 1e6


def ours(chosen: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    from charger.protocols import exi
    from charger.protocols.exi import _cbackend, _exi, _pycodec

    c_backend = _cbackend.CBackend()
    py_backend = _pycodec.PythonBackend()
    rows = []
    for label, vector in chosen:
        schema, data = vector["schema"], bytes.fromhex(vector["exi_hex"])
        element, message = c_backend.decode(schema, data, False)
        index = c_backend._index(schema)
        rows.append(
            {
                "message": label,
                "bytes": len(data),
                "decode_us": round(per_call_us(lambda s=schema, d=data: exi.decode(s, d)), 2),
                "encode_us": round(per_call_us(lambda m=message: exi.encode(m)), 2),
                "c_decode_us": round(_exi.time(True, 20000, index, data, False) / 1e3, 2),
                "c_encode_us": round(
                    _exi.time(False, 20000, index, message, element, False) / 1e3, 2
                ),
                "python_backend_decode_us": round(
                    per_call_us(lambda s=schema, d=data: py_backend.decode(s, d, False), 0.1), 1
                ),
                "python_backend_encode_us": round(
                    per_call_us(
                        lambda s=schema, m=message, e=element: py_backend.encode(s, m, e, False),
                        0.1,
                    ),
                    1,
                ),
            }
        )
    return rows


FOOTPRINT = textwrap.dedent(
    """
    import json, time
    def rss_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    before = rss_kb()
    start = time.perf_counter()
    from charger.protocols import exi
    imported = time.perf_counter()
    streams = json.loads(input())
    for schema, hexdata in streams:
        exi.decode(schema, bytes.fromhex(hexdata))
    ready = time.perf_counter()
    print(json.dumps({"import_ms": (imported - start) * 1e3,
                      "first_use_all_schemas_ms": (ready - imported) * 1e3,
                      "added_rss_mb": (rss_kb() - before) / 1024}))
    """
)


def footprint(schemas: tuple[str, ...]) -> dict[str, float]:
    """Import time, first use of `schemas` and added RSS in a fresh interpreter (best of 5).

    Bytecode is compiled first, as an installed package or the firmware image has it.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "charger")], check=True)
    streams = []
    for schema in schemas:
        vector = next(json.loads(line) for line in VECTORS.open() if f'"schema":"{schema}"' in line)
        streams.append((schema, vector["exi_hex"]))
    results = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", FOOTPRINT],
            input=json.dumps(streams),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        results.append(json.loads(out.stdout))
    return {key: round(min(r[key] for r in results), 2) for key in results[0]}


JAVA = textwrap.dedent(
    """
    import json, sys, time, timeit
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    started = time.perf_counter()
    codec = ExificientEXICodec()
    startup_s = time.perf_counter() - started
    rows = {}
    for label, namespace, hexdata in json.loads(sys.stdin.read()):
        data = bytes.fromhex(hexdata)
        text = codec.decode(data, namespace)
        for _ in range(30):  # JIT warm-up
            codec.encode(codec.decode(data, namespace), namespace)
        decode = min(timeit.repeat(lambda: codec.decode(data, namespace), number=20, repeat=5)) / 20
        encode = min(timeit.repeat(lambda: codec.encode(text, namespace), number=20, repeat=5)) / 20
        rows[label] = {"decode_us": decode * 1e6, "encode_us": encode * 1e6}
    pid = codec.gateway.java_process.pid
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    print(json.dumps({"rows": rows, "startup_s": startup_s, "jvm_rss_mb": rss / 1024}))
    """
)


def iso15118_java(python: str, chosen: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    payload = [(label, v["namespace"], v["exi_hex"]) for label, v in chosen]
    out = subprocess.run(
        [python, "-c", JAVA], input=json.dumps(payload), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iso15118-python", help="a Python with the iso15118 package installed")
    args = parser.parse_args()
    chosen = pick_vectors()
    rows = ours(chosen)
    result: dict[str, Any] = {
        "bench": "exi",
        "messages": rows,
        "footprint_iso2_session": footprint(("appProtocol", "iso2")),
        "footprint_all_families": footprint(
            ("appProtocol", "din", "iso2", "iso20_common", "iso20_ac", "iso20_dc")
        ),
    }
    if args.iso15118_python:
        java = iso15118_java(args.iso15118_python, chosen)
        for row in rows:
            reference = java["rows"][row["message"]]
            row["iso15118_decode_us"] = round(reference["decode_us"], 1)
            row["iso15118_encode_us"] = round(reference["encode_us"], 1)
            row["speedup"] = round(
                (reference["decode_us"] + reference["encode_us"])
                / (row["decode_us"] + row["encode_us"])
            )
        result["iso15118"] = {
            "startup_s": round(java["startup_s"], 2),
            "jvm_rss_mb": round(java["jvm_rss_mb"], 1),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
