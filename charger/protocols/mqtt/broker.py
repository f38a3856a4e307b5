"""Spawns mosquitto on a local port and keeps it running (restarted when it dies)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from charger.runtime.log import event

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
RESTART_DELAY_S = 0.5


class BrokerError(RuntimeError):
    pass


def find_mosquitto(name: str) -> str:
    # Debian installs the broker in /usr/sbin, which a normal user's PATH often lacks.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError(
            f"mosquitto binary {name!r} not found in PATH or /usr/sbin "
            "(install the Debian package 'mosquitto' or set mqtt.mosquitto)"
        )
    return found


async def port_open(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class MosquittoSupervisor:
    def __init__(self, binary: str, host: str, port: int, run_dir: Path) -> None:
        self._binary = find_mosquitto(binary)
        self._host, self._port = host, port
        self._conf = run_dir / "mosquitto.conf"
        self._process: asyncio.subprocess.Process | None = None
        run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        if await port_open(self._host, self._port):
            raise BrokerError(
                f"{self._host}:{self._port} is already in use (another MQTT "
                "broker?); choose another [mqtt] port or set broker = "
                '"external" to use that one'
            )
        self._conf.write_text(
            f"listener {self._port} {self._host}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        await self._spawn()

    async def _spawn(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            self._binary,
            "-c",
            str(self._conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not await port_open(self._host, self._port):
            if self._process.returncode is not None or loop.time() > deadline:
                raise BrokerError(
                    f"mosquitto did not start on {self._host}:{self._port} "
                    f"(exit code {self._process.returncode})"
                )
            await asyncio.sleep(0.05)
        event(log, logging.INFO, "broker_started", pid=self._process.pid, port=self._port)

    async def run(self) -> None:
        """Waits for the broker to exit and starts it again."""
        while True:
            assert self._process is not None
            code = await self._process.wait()
            event(log, logging.WARNING, "broker_exited", code=code, restart_in_s=RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)
            await self._spawn()

    async def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(5.0):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
