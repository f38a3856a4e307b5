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
