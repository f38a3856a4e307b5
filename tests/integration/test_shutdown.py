"""How the whole firmware stops and what it leaves behind: SIGTERM while charging with a
CSMS (architecture issue: contactor open and reported, WebSocket 1001, exit 0), kill -9
(the spawned broker dies with it; reliability issue, defect 8), a broker left over by an
earlier run, and no credential in a debug-level log (OCPP issue, defect 7)."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.processes import Charger
from tests.support.polling import eventually
from tests.support.probe import probe_on

PASSWORD = "Very-S3cret-Basic-Auth-Pw"


def broker_pid(charger: Charger) -> int:
    line = next(x for x in charger.log().splitlines() if " broker_started " in x)
    return int(line.split("pid=")[1].split()[0])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie is gone too


async def test_sigterm_while_charging_opens_reports_and_says_going_away(
    start_charger: Callable[..., Charger],
) -> None:
    state = CsmsState(interval=300)
    port = free_port()
    async with ocpp_csms(state) as url:
        tail = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\nbasic_auth_password = "{PASSWORD}"\n'
        charger = start_charger(port, broker="spawn", tail=tail)
        broker = broker_pid(charger)
        async with probe_on(port, charger.logins()) as probe:
            await probe.sim("plug_in")
            await probe.wait_for(
                lambda t, m: m.get("name") == "cp_status" and m["data"]["state"] == "C2"
            )
            await eventually(lambda: len(state.connections) == 1)
            mark = probe.mark()
            charger.process.send_signal(signal.SIGTERM)
            report = await probe.wait_for(
                lambda t, m: m.get("name") == "cs_contactor_status" and m["type"] == "update",
                after=mark,
            )
        assert report["data"] == {
            "evse_id": report["data"]["evse_id"],
            "status": "opened",
            "info": "station shutting down",
        }
        assert await asyncio.to_thread(charger.process.wait, 10) == 0
        ws = state.connections[0]
        await eventually(lambda: ws.close_code is not None)
        assert (ws.close_code, ws.close_reason) == (1001, "going away")
    log = charger.log()
    assert "contactor evse=" in log and "closed=False reason=shutdown" in log
    assert log.rstrip().endswith("exit_code=0")
    assert gone(broker)
    # defect 7: the WebSocket library logged its handshake at debug level, blanked
    token = base64.b64encode(f"0000:{PASSWORD}".encode()).decode()
    assert "Authorization: Basic <redacted>" in log
    assert PASSWORD not in log and token not in log


async def test_kill_9_takes_the_spawned_broker_along_and_a_restart_works(
    start_charger: Callable[..., Charger],
) -> None:
    port = free_port()
    charger = start_charger(port, broker="spawn")
    broker = broker_pid(charger)
    charger.process.kill()
    charger.process.wait()
    await eventually(lambda: gone(broker))
    restarted = start_charger(port, broker="spawn")  # the port is free again
    assert broker_pid(restarted) != broker


async def test_a_broker_left_over_by_an_earlier_run_is_stopped_at_start(
    start_charger: Callable[..., Charger], tmp_path: Path
) -> None:
    port = free_port()
    first = start_charger(port, broker="spawn")
    run_dir = tmp_path / "state" / "run"
    first.process.kill()  # as if an older firmware without the parent-death signal died:
    first.process.wait()  # start a broker of ours that outlives it, by hand
    conf = (run_dir / "mosquitto.conf-path").read_text()  # still there after kill -9
    leftover = subprocess.Popen(  # noqa: ASYNC220 (a few ms, and it must outlive the call)
        ["mosquitto", "-c", conf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        (run_dir / "mosquitto.pid").write_text(f"{leftover.pid}\n")
        await eventually(lambda: _port_taken(port))
        second = start_charger(port, broker="spawn")
        assert f"broker_leftover_stopped pid={leftover.pid}" in second.log()
        assert leftover.wait(5) is not None
    finally:
        if leftover.poll() is None:
            leftover.kill()


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_systemd_hears_ready_watchdog_pings_and_stopping(
    start_charger: Callable[..., Charger], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit is Type=notify with WatchdogSec: the process says READY once started,
    pings from its event loop, and says STOPPING on SIGTERM."""
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(address))
        listener.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(address))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")  # pings every 0.2 s
        charger = start_charger(free_port(), broker="spawn")
        loop = asyncio.get_running_loop()
        heard: list[str] = []

        async def until(line: str) -> None:
            async with asyncio.timeout(10):
                while line not in heard:
                    datagram = await loop.sock_recv(listener, 4096)
                    heard.extend(datagram.decode().splitlines())

        await until("READY=1")
        await until("WATCHDOG=1")
        pings = heard.count("WATCHDOG=1")
        while heard.count("WATCHDOG=1") < pings + 2:  # and it goes on pinging
            heard.extend((await loop.sock_recv(listener, 4096)).decode().splitlines())
        charger.process.send_signal(signal.SIGTERM)
        await until("STOPPING=1")
    assert heard.index("READY=1") < heard.index("WATCHDOG=1") < heard.index("STOPPING=1")
