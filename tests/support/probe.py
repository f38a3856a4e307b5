"""An MQTT client on the Josev topics of a broker: records and schema-checks everything the
charger publishes, sends what the test asks, and drives the simulated board (sim/cmd)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from charger.bus import api
from charger.protocols.mqtt.credentials import Credentials


@dataclass
class Probe:
    """An MQTT client on the Josev topics: records everything, sends what tests ask."""

    client: aiomqtt.Client
    # with a broker that admits only known roles: one client per role the test writes as
    writers: dict[str, aiomqtt.Client] = field(default_factory=dict)
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
        writer = self.writers.get(WRITER_ROLES.get(topic, ""), self.client)
        await writer.publish(topic, raw, qos=1)

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


# the role whose credentials may publish on a topic (charger/protocols/mqtt/credentials.py)
WRITER_ROLES = {"josev/cs": "josev", "cs/josev": "cs", "sim/cmd": "simctl"}


def _client(port: int, login: Credentials | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=login.username if login else None,
        password=login.password if login else None,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"probe-{uuid.uuid4().hex[:8]}",
        timeout=5.0,
    )


@contextlib.asynccontextmanager
async def probe_on(port: int, logins: dict[str, Credentials] | None = None) -> AsyncIterator[Probe]:
    """Anonymous on a test's own broker; with `logins` (the broker the charger spawned:
    `Charger.logins()`), it reads as `monitor` and writes each topic as its role."""
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            _client(port, logins["monitor"] if logins else None)
        )
        probe = Probe(client)
        for role in sorted(set(WRITER_ROLES.values()) & set(logins or {})):
            assert logins is not None
            probe.writers[role] = await stack.enter_async_context(_client(port, logins[role]))
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
