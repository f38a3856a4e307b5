"""Spawns mosquitto on a local port and keeps it running (restarted when it dies).

The broker dies with the charger, even on kill -9: it runs under `setpriv --pdeathsig
TERM` (util-linux), so the kernel signals it when its parent goes. Started by root,
setpriv also makes it the `mosquitto` user: mosquitto dropping privileges by itself
would clear the parent-death signal. Its files are then in a private directory that user
owns (our state directory is for root only). A broker of ours left over from an earlier
run (recognised by the pid file we keep and its command line naming our config file) is
stopped at start instead of blocking the port for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import tempfile
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
        self._run_dir = run_dir
        self._pid_file = run_dir / "mosquitto.pid"
        self._conf_record = run_dir / "mosquitto.conf-path"  # where the last config was
        self._setpriv = shutil.which("setpriv")  # util-linux, on every Debian system
        self._user = _broker_user()
        self._private_dir: Path | None = None  # the broker user's own directory
        self._conf = run_dir / "mosquitto.conf"
        self._process: asyncio.subprocess.Process | None = None
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        await self._stop_leftover()
        if await port_open(self._host, self._port):
            raise BrokerError(
                f"{self._host}:{self._port} is already in use (another MQTT "
                "broker?); choose another [mqtt] port or set broker = "
                '"external" to use that one'
            )
        await asyncio.to_thread(self._write_config)
        await self._spawn()

    def _write_config(self) -> None:
        if self._user is not None:
            self._private_dir = Path(tempfile.mkdtemp(prefix="charger-mqtt-"))  # 0700
            os.chown(self._private_dir, self._user.pw_uid, self._user.pw_gid)
            self._conf = self._private_dir / "mosquitto.conf"
        self._conf.write_text(
            f"listener {self._port} {self._host}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        self._conf.chmod(0o600)
        if self._user is not None:
            os.chown(self._conf, self._user.pw_uid, self._user.pw_gid)
        self._conf_record.write_text(str(self._conf))

    async def _stop_leftover(self) -> None:
        """Stops a broker an earlier run of ours left behind (e.g. its parent was killed
        before it could stop it); a process that is not ours is left alone."""
        pid = self._leftover_pid()
        if pid is not None:
            event(log, logging.WARNING, "broker_leftover_stopped", pid=pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):  # up to 5 s for it to let go of the port
                    os.kill(pid, 0)
                    await asyncio.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):  # the files an earlier run left behind
            _remove_private_dir(Path(self._conf_record.read_text()).parent)

    def _leftover_pid(self) -> int | None:
        """The pid in our pid file, if that process runs our config (a reused pid is
        someone else's)."""
        try:
            pid = int(self._pid_file.read_text().strip())
            conf = self._conf_record.read_text().encode()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if conf in cmdline else None

    async def _spawn(self) -> None:
        command = [self._binary, "-c", str(self._conf)]
        if self._setpriv is not None:
            drop = []
            if self._user is not None:
                uid, gid = self._user.pw_uid, self._user.pw_gid
                drop = [f"--reuid={uid}", f"--regid={gid}", "--init-groups"]
            command = [self._setpriv, *drop, "--pdeathsig", "TERM", "--", *command]
        self._process = await asyncio.create_subprocess_exec(
            *command,
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
        # our pid file, not mosquitto's: run as root, mosquitto drops to its own user
        # before writing one and could not write into our private state directory
        # (setpriv execs mosquitto, so the child's pid is the broker's)
        await asyncio.to_thread(self._pid_file.write_text, f"{self._process.pid}\n")
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
        try:
            if process is not None and process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(5.0):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
        finally:
            if self._private_dir is not None:
                _remove_private_dir(self._private_dir)


def _broker_user() -> pwd.struct_passwd | None:
    """Run by root, the broker becomes the `mosquitto` user (Debian's package makes it)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        return None


def _remove_private_dir(folder: Path) -> None:
    if folder.name.startswith("charger-mqtt-") and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
