"""OCPP client figures, in one run: validation + serialisation cost of a TransactionEvent
(ours against the `ocpp` package's default path), the CSMS round trip of a Heartbeat on
loopback (our session against the package's own client), the time from starting
`charger sim` to the BootNotification reaching the CSMS, and its RSS with OCPP running.

Run as `python -m bench.ocpp` (as a script its name would shadow the `ocpp` package).
Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import statistics
import tempfile
import time

import websockets
from ocpp.messages import Call, _validate_payload, validate_payload

from charger.protocols.ocpp import rpc

TRANSACTION_EVENT = {
    "eventType": "Updated", "timestamp": "2026-11-22T03:00:00Z",
    "triggerReason": "MeterValuePeriodic", "seqNo": 12, "offline": False,
    "transactionInfo": {"transactionId": "c2b4d5e6-0001", "chargingState": "Charging"},
    "evse": {"id": 1, "connectorId": 1},
    "idToken": {"idToken": "04A1B2C3", "type": "ISO14443"},
    "meterValue": [{"timestamp": "2026-11-22T03:00:00Z", "sampledValue": [
        {"value": 1234.5, "measurand": "Energy.Active.Import.Register",
         "unitOfMeasure": {"unit": "Wh"}},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L1"},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L2"},
        {"value": 16.0, "measurand": "Current.Import", "phase": "L3"},
        {"value": 11040.0, "measurand": "Power.Active.Import"},
    ]}],
}  # fmt: skip


def ours() -> str:
    rpc.validate("TransactionEvent", "Request", TRANSACTION_EVENT)
    return rpc.Call("c2b4d5e6-0001", "TransactionEvent", TRANSACTION_EVENT).frame()


def package_sync() -> str:
    """The package's validation work itself (jsonschema), without its thread hop."""
    call = Call(unique_id="c2b4d5e6-0001", action="TransactionEvent", payload=TRANSACTION_EVENT)
    _validate_payload(call, "2.0.1")
    return call.to_json()


_loop = asyncio.new_event_loop()


def package_default() -> str:
    """What the package does by default: validation in the loop's executor."""
    call = Call(unique_id="c2b4d5e6-0001", action="TransactionEvent", payload=TRANSACTION_EVENT)
    _loop.run_until_complete(validate_payload(call, "2.0.1"))
    return call.to_json()


def per_call_ms(fn: object, number: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number * 1000


async def round_trips(count: int) -> tuple[float, float]:
    """Median Heartbeat round trip (ms): our client's session, then the package's client."""
    from ocpp.v201 import ChargePoint
    from ocpp.v201 import call as ocpp_call

    from rig.csms import CsmsState, ocpp_csms
    from rig.ocpp_station import station

    state = CsmsState(interval=3600)
    async with ocpp_csms(state) as url:
        async with station(url) as st:
            await state.wait_for("StatusNotification")
            session = st.client._session  # type: ignore[attr-defined]
            ours = []
            for _ in range(count):
                started = time.perf_counter()
                await session.call("Heartbeat", {})
                ours.append((time.perf_counter() - started) * 1000)
        async with websockets.connect(url + "/PKG1", subprotocols=["ocpp2.0.1"]) as ws:
            client = ChargePoint("PKG1", ws)
            reader = asyncio.create_task(client.start())
            theirs = []
            for _ in range(count):
                started = time.perf_counter()
                await client.call(ocpp_call.Heartbeat())
                theirs.append((time.perf_counter() - started) * 1000)
            reader.cancel()
    return statistics.median(ours), statistics.median(theirs)


async def boot_and_rss() -> tuple[float, float]:
    """Seconds from exec of `charger sim` to its BootNotification at the CSMS; its RSS (MB)."""
    from rig.csms import CsmsState, ocpp_csms
    from rig.net import free_port
    from rig.processes import charger_config

    state = CsmsState(interval=3600)
    async with ocpp_csms(state) as url:
        with tempfile.TemporaryDirectory() as tmp:
            config = charger_config(
                Path(tmp),
                free_port(),
                broker="spawn",
                tail=f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n',
            )
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "charger",
                "sim",
                "--config",
                str(config),
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await state.wait_for("BootNotification", timeout_s=30)
                boot_s = time.perf_counter() - started
                await state.wait_for("StatusNotification")
                await asyncio.sleep(2)
                status = await asyncio.to_thread(Path(f"/proc/{process.pid}/status").read_text)
                rss_kb = int(
                    next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[
                        1
                    ]
                )
            finally:
                process.terminate()
                await asyncio.wait_for(process.wait(), 10)
    return boot_s, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    assert json.loads(ours())[3] == json.loads(package_default())[3]
    ours_ms = per_call_ms(ours, args.number)
    sync_ms = per_call_ms(package_sync, max(50, args.number // 20))
    default_ms = per_call_ms(package_default, max(50, args.number // 20))
    ours_rt, package_rt = asyncio.run(round_trips(200))
    boot_s, rss_mb = asyncio.run(boot_and_rss())
    result = {
        "bench": "ocpp",
        "message": "TransactionEventRequest",
        "ours_ms": round(ours_ms, 4),
        "ocpp_package_jsonschema_ms": round(sync_ms, 3),
        "ocpp_package_default_path_ms": round(default_ms, 3),
        "speedup_vs_default": round(default_ms / ours_ms, 1),
        "target_ms": 0.1,
        "heartbeat_round_trip_ms": round(ours_rt, 3),
        "ocpp_package_round_trip_ms": round(package_rt, 3),
        "start_to_boot_notification_s": round(boot_s, 3),
        "rss_mb_with_ocpp": round(rss_mb, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
