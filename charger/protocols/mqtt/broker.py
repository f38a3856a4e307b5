"""Spawns mosquitto for the bus and keeps it running (restarted when it dies).

The broker admits no anonymous client: each role (charger/protocols/mqtt/credentials.py)
logs in with its generated password and may publish only its side's topics; it also
bounds message size and per-client queues. It listens on a Unix socket in a private
directory, which the charger's own clients use: no other local user can put a broker
there, so the charger never talks to an impostor, even while ours restarts. Tools and
an OEM controller use the TCP listener on the configured host and port, with
credentials.

The broker dies with the charger, even on kill -9: it runs under `setpriv --pdeathsig
TERM` (util-linux), so the kernel signals it when its parent goes. Started by root,
setpriv also makes it the `mosquitto` user (mosquitto dropping privileges by itself would
clear the parent-death signal). Its files live in a private directory that its user owns.
A broker of ours left over from an earlier run (recognised by the pid file we keep and
its command line naming our config file) is stopped at start instead of blocking the
port for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from charger.bus.api import MAX_MESSAGE_BYTES
from charger.protocols.mqtt.credentials import Credentials, acl
from charger.runtime.log import event

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
RESTART_DELAY_S = 0.5
MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 4096  # the bus's largest message and MQTT headers
MAX_QUEUED_MESSAGES = 1000  # per client: a slow reader loses its oldest, not our memory
SOCKET_NAME = "mqtt.sock"


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


async def socket_accepts(path: Path) -> bool:
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class MosquittoSupervisor:
    def __init__(
        self,
        binary: str,
        host: str,
        port: int,
        run_dir: Path,
        credentials: dict[str, Credentials],
        *,
        remote_cs: bool = False,
    ) -> None:
        self._binary = find_mosquitto(binary)
        self._passwd_tool = find_mosquitto("mosquitto_passwd")
        self._host, self._port = host, port
        self._credentials = credentials
        self._remote_cs = remote_cs
        self._pid_file = run_dir / "mosquitto.pid"
        self._conf_record = run_dir / "mosquitto.conf-path"  # where the last config was
        self._setpriv = shutil.which("setpriv")  # util-linux, on every Debian system
        self._user = _broker_user()
        self._private_dir: Path | None = None  # the broker user's own directory
        self._process: asyncio.subprocess.Process | None = None
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def socket_path(self) -> Path:
        """The Unix socket of the charger's own clients (known once started)."""
        if self._private_dir is None:
            raise BrokerError("the broker has not been started")
        return self._private_dir / SOCKET_NAME

    @property
    def _conf(self) -> Path:
        return self.socket_path.with_name("mosquitto.conf")

    async def start(self) -> None:
        await self._stop_leftover()
        if await port_open(self._host, self._port):
            raise BrokerError(
                f"{self._host}:{self._port} is already in use (another MQTT "
                "broker?); choose another [mqtt] port or set broker = "
                '"external" to use that one'
            )
        await asyncio.to_thread(self._write_files)
        await self._spawn()

    def _write_files(self) -> None:
        """The private directory (0700, the broker user's), config, ACL and password file."""
        self._private_dir = Path(tempfile.mkdtemp(prefix="charger-mqtt-"))
        folder = self._private_dir
        passwd = folder / "passwd"
        self._private_file(
            passwd, "".join(f"{c.username}:{c.password}\n" for c in self._credentials.values())
        )
        done = subprocess.run(  # hashes the passwords in place
            [self._passwd_tool, "-U", str(passwd)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BrokerError(f"mosquitto_passwd failed on {passwd}: {done.stderr.strip()}")
        self._private_file(folder / "acl", acl(self._remote_cs))
        self._private_file(
            self._conf,
            f"per_listener_settings false\nallow_anonymous false\n"
            f"password_file {passwd}\nacl_file {folder / 'acl'}\n"
            f"max_packet_size {MAX_PACKET_BYTES}\nmax_queued_messages {MAX_QUEUED_MESSAGES}\n"
            f"persistence false\nset_tcp_nodelay true\n"  # no 40 ms Nagle wait per answer
            f"listener 0 {self.socket_path}\n"
            f"listener {self._port} {self._host}\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n",
        )
        self._conf_record.write_text(str(self._conf))
        if self._user is not None:  # last: mosquitto_passwd rewrote its file as root
            for path in (folder, *folder.iterdir()):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    @staticmethod
    def _private_file(path: Path, text: str) -> None:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)

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
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a stale socket of the last broker
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        # Our broker is up when the socket in its private directory accepts: nobody
        # else can create that socket (a TCP port could be someone else's).
        while not await socket_accepts(self.socket_path):
            if self._process.returncode is not None or loop.time() > deadline:
                raise BrokerError(
                    f"mosquitto did not start on {self.socket_path} and "
                    f"{self._host}:{self._port} (exit code {self._process.returncode})"
                )
            await asyncio.sleep(0.01)
        # our pid file, not mosquitto's: run as root, mosquitto would write one only as
        # its own user (setpriv execs mosquitto, so the child's pid is the broker's)
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
