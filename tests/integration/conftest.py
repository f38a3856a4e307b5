"""Real parts for integration tests: a mosquitto broker on a free port, the charger as a
subprocess, and an MQTT client that plays Josev (or the CS) and drives the sim board."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from charger.bus import api
from charger.protocols.mqtt.broker import find_mosquitto

pytestmark = pytest.mark.integration
EVSE_ID = "DE*INT*E0001"
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Waits until `check` holds, looking again every 10 ms; the timeout fails the test."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    if b.process is not None and b.process.poll() is None:
        b.kill()


@dataclass
class Charger:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    config_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout_s: float = READY_TIMEOUT_S, count: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log().count(needle) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"charger exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not logged within {timeout_s} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.process.poll() is None


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


@pytest.fixture
def start_charger(tmp_path: Path) -> Iterator[Callable[..., Charger]]:
    started: list[Charger] = []

    def start(
        port: int,
        *,
        broker: str = "external",
        extra: str = "",
        cs: str = "local",
        evse: str = "",
        tail: str = "",
        args: tuple[str, ...] = (),
    ) -> Charger:
        config = charger_config(
            tmp_path, port, broker=broker, extra=extra, cs=cs, evse=evse, tail=tail
        )
        log_path = tmp_path / f"charger-{len(started)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "charger", "sim", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
            env=env,
        )
        charger = Charger(process, log_path, port, config)
        started.append(charger)
        charger.wait_log(" ready ")
        return charger

    yield start
    for charger in started:
        if charger.process.poll() is None:
            charger.process.send_signal(signal.SIGTERM)
            try:
                charger.process.wait(10)
            except subprocess.TimeoutExpired:
                charger.process.kill()


@dataclass
class Probe:
    """An MQTT client on the Josev topics: records everything, sends what tests ask."""

    client: aiomqtt.Client
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: set[bytes] = field(default_factory=set)
    invalid: list[str] = field(default_factory=list)

    def record(self, topic: str, payload: bytes) -> None:
        try:
            decoded = json.loads(payload)
        except ValueError:
            decoded = {"raw": payload.decode(errors="replace")}
        # Everything the charger publishes on the Josev topics must meet the schemas.
        if not topic.startswith("sim/") and payload not in self.sent:
            try:
                api.validate(decoded)
            except api.ApiError as exc:
                self.invalid.append(f"{topic}: {exc}")
        self.messages.append((topic, decoded))

    async def wait_for(
        self,
        predicate: Callable[[str, dict[str, Any]], bool],
        timeout_s: float = 10.0,
        after: int = 0,
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for topic, message in self.messages[after:]:
                        if predicate(topic, message):
                            return message
                    await asyncio.sleep(0.01)
        except TimeoutError:
            seen = "\n".join(f"{t} {json.dumps(m)[:200]}" for t, m in self.messages[after:])
            raise AssertionError(
                f"no matching message within {timeout_s} s; saw:\n{seen}"
            ) from None

    async def wait_message(self, name: str, after: int = 0, **data: Any) -> dict[str, Any]:
        def match(topic: str, message: dict[str, Any]) -> bool:
            body = message.get("data")
            return (
                message.get("name") == name
                and isinstance(body, dict)
                and all(body.get(k) == v for k, v in data.items())
            )

        return await self.wait_for(match, after=after)

    def mark(self) -> int:
        return len(self.messages)

    async def publish(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.sent.add(raw)
        await self.client.publish(topic, raw)

    async def request(
        self, name: str, data: dict[str, Any], topic: str = "josev/cs"
    ) -> dict[str, Any]:
        msg_id = str(uuid.uuid4())
        mark = self.mark()
        await self.publish(topic, {"id": msg_id, "name": name, "type": "request", "data": data})
        return await self.wait_for(
            lambda t, m: m.get("id") == msg_id and m.get("type") == "response", after=mark
        )

    async def sim(self, cmd: str, **args: Any) -> dict[str, Any]:
        cmd_id = str(uuid.uuid4())
        mark = self.mark()
        await self.publish("sim/cmd", {"cmd": cmd, "id": cmd_id, **args})
        reply = await self.wait_for(
            lambda t, m: t == "sim/reply" and m.get("id") == cmd_id, after=mark
        )
        assert reply["ok"], reply
        return reply

    def names(self, after: int = 0, topic: str | None = None) -> list[str]:
        return [
            f"{m.get('name')}.{m.get('type')}"
            for t, m in self.messages[after:]
            if topic is None or t == topic
        ]


@contextlib.asynccontextmanager
async def probe_on(port: int) -> AsyncIterator[Probe]:
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=f"probe-{uuid.uuid4().hex[:8]}", timeout=5.0
    ) as client:
        probe = Probe(client)
        await client.subscribe("+/+")

        async def collect() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                probe.record(str(message.topic), payload)

        task = asyncio.create_task(collect())
        try:
            yield probe
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert probe.invalid == [], "the charger published schema-invalid messages"
