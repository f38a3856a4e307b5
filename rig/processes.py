"""Real processes on loopback: a mosquitto broker on a free port, and `charger sim` as a
subprocess with a config file written for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from charger.protocols.mqtt.broker import find_mosquitto
from charger.protocols.mqtt.credentials import ROLES, Credentials, read
from rig.net import free_port, wait_port

EVSE_ID = "DE*INT*E0001"
T = TypeVar("T")
READY_TIMEOUT_S = 20.0


class Broker:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [find_mosquitto("mosquitto"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@dataclass
class Charger:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    config_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout_s: float = READY_TIMEOUT_S, count: int = 1) -> None:
        self._wait(lambda log: log.count(needle) >= count or None, repr(needle), timeout_s)

    def first_line(self, *needles: str, timeout_s: float = READY_TIMEOUT_S) -> str:
        """The first log line holding every needle, once it is logged."""

        def found(log: str) -> str | None:
            return next((ln for ln in log.splitlines() if all(n in ln for n in needles)), None)

        return self._wait(found, " and ".join(map(repr, needles)), timeout_s)

    def _wait(self, check: Callable[[str], T | None], what: str, timeout_s: float) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (result := check(self.log())) is not None:
                return result
            if self.process.poll() is not None:
                raise AssertionError(f"charger exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{what} not logged within {timeout_s} s:\n{self.log()}")

    def logins(self) -> dict[str, Credentials]:
        """The bus roles' credentials of the broker this charger spawned."""
        state = self.config_path.parent / "state"
        return {role: c for role in ROLES if (c := read(state, role)) is not None}

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, as systemd stops it; killed if it has not ended within 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def charger_config(
    tmp: Path,
    port: int,
    *,
    broker: str = "external",
    extra: str = "",
    cs: str = "local",
    evse: str = "",
    tail: str = "",
) -> Path:
    path = tmp / "charger.toml"
    path.write_text(f"""
[station]
cs = "{cs}"
state_dir = "{tmp / "state"}"
meter_interval_s = 0.5
[log]
level = "debug"
[mqtt]
broker = "{broker}"
port = {port}
[bus]
request_timeout_s = 3
[hal]
backend = "sim"
[[evse]]
id = 1
evse_id = "{EVSE_ID}"
max_current_a = 32
{evse}
[sim]
ev_reaction_s = 0.05
ev_max_current_a = 16
time_scale = 50
{extra}
{tail}
""")
    return path


def launch_charger(config: Path, log_path: Path, port: int, args: tuple[str, ...] = ()) -> Charger:
    """Starts `charger sim --config CONFIG ARGS` logging to `log_path`; returns once it
    logged " ready " (stopping it if it does not)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "charger", "sim", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    charger = Charger(process, log_path, port, config)
    try:
        charger.wait_log(" ready ")
    except BaseException:
        charger.stop()
        raise
    return charger
