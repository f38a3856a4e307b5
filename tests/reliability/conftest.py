"""Fixtures of the reliability tests: the charger as a subprocess with the broker it
spawns (per-role logins, the production limits), floods from a separate process
(`python -m rig.flood`, role `josev`) and the simulator's commands (role `simctl`)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from rig.net import free_port
from rig.processes import EVSE_ID, Charger, charger_config, launch_charger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def charger(tmp_path: Path) -> Iterator[Charger]:
    """`charger sim` spawning its own broker, as on a station."""
    port = free_port()
    # the contactor may close again at once: the tests switch it many times a second
    config = charger_config(tmp_path, port, broker="spawn", evse="contactor_min_off_s = 0")
    started = launch_charger(config, tmp_path / "charger.log", port)
    yield started
    started.stop()


@dataclass
class Flood:
    process: asyncio.subprocess.Process

    async def next_event(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        assert line, "the flood process ended early"
        event: str = json.loads(line)["event"]
        return event

    async def ended(self) -> None:
        assert await self.next_event() == "flood_ended"

    async def result(self) -> dict[str, Any]:
        """The flood's result (`rig.flood`): sent, answered, recovery_ms, watched..."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        await self.process.wait()
        result: dict[str, Any] = json.loads(line)
        return result


StartFlood = Callable[..., Awaitable[Flood]]


@pytest.fixture
async def start_flood(charger: Charger) -> AsyncIterator[StartFlood]:
    """Starts `python -m rig.flood` against `charger` and returns once it floods (as
    `role`, on `topic`; by default a josev tool on josev/cs)."""
    floods: list[Flood] = []

    async def start(
        kind: str,
        *,
        rate: int = 10_000,
        seconds: float = 3.0,
        settle_s: float = 2.0,
        warmup_s: float = 0.0,
        keep_every: int = 0,
        role: str = "josev",
        topic: str = "josev/cs",
        answers_topic: str = "cs/josev",
    ) -> Flood:
        login = charger.logins()[role]
        spec = {
            "port": charger.port,
            "username": login.username,
            "password": login.password,
            "topic": topic,
            "answers_topic": answers_topic,
            "kind": kind,
            "rate": rate,
            "seconds": seconds,
            "settle_s": settle_s,
            "warmup_s": warmup_s,
            "keep_every": keep_every,
            "evse_id": EVSE_ID,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rig.flood",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(spec).encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()
        flood = Flood(process)
        floods.append(flood)
        assert await flood.next_event() == "flooding"
        return flood

    yield start
    for flood in floods:
        if flood.process.returncode is None:
            flood.process.kill()
            await flood.process.wait()


SimCommand = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def sim(charger: Charger) -> AsyncIterator[SimCommand]:
    """Sends a simulator command as `simctl` and returns its reply (asserted ok)."""
    login = charger.logins()["simctl"]
    replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
    async with aiomqtt.Client(
        "127.0.0.1",
        charger.port,
        username=login.username,
        password=login.password,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"simctl-test-{uuid.uuid4().hex[:8]}",
    ) as client:
        await client.subscribe("sim/reply", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                reply = json.loads(message.payload if isinstance(message.payload, bytes) else b"")
                waiter = replies.pop(reply.get("id"), None)
                if waiter is not None:
                    waiter.set_result(reply)

        async def command(cmd: str, timeout_s: float = 30.0, **args: Any) -> dict[str, Any]:
            cmd_id = str(uuid.uuid4())
            waiter = replies[cmd_id] = asyncio.get_running_loop().create_future()
            await client.publish("sim/cmd", json.dumps({"cmd": cmd, "id": cmd_id, **args}), qos=1)
            try:
                reply = await asyncio.wait_for(waiter, timeout_s)
            finally:
                replies.pop(cmd_id, None)
            assert reply["ok"], reply
            return reply

        task = asyncio.create_task(collect())
        try:
            yield command
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def charger_rss(charger: Charger) -> Callable[[], float]:
    """The charger's resident memory (MB) from /proc (its broker not included)."""
    return lambda: rss_mb(charger.process.pid)
