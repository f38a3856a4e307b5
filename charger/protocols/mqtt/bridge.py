"""Mirrors the bus to MQTT and injects what arrives from it.

Every message published on the bus by this process goes to the broker on its
`sender/receiver` topic. Messages from other clients on `+/+` are decoded, validated
against the Josev API schemas and injected into the bus; invalid ones are logged with
the reason and, where the message form has one, answered with an error response.
MQTT v5 "no local" subscriptions keep our own publications from coming back, so
nothing is delivered twice. Topics outside the Josev API (the simulator's `sim/...`)
belong to other clients and are ignored here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from charger.bus import Bus, api
from charger.bus.api import ApiError, Message
from charger.bus.messages import FORMS
from charger.protocols.mqtt.connection import MQTT_TIMEOUT_S, BrokerAddress, keep_connected
from charger.runtime.log import event
from charger.runtime.tasks import wait_event

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 1.0
OUTBOX_LIMIT = 10_000  # messages kept while the broker is away; the oldest go first
# The parties of the Josev API (josev, cs, ocpp, ...), from the schemas' topics: a topic
# between two of them is ours to check; any other (the simulator's sim/...) is not.
API_PARTIES = frozenset(p for form in FORMS.values() for t in form.topics for p in t.split("/"))


class MqttBridge:
    def __init__(self, bus: Bus, broker: BrokerAddress) -> None:
        self._bus = bus
        self._broker = broker
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()  # set whenever the outbox has been emptied
        self._dropped = 0
        self.connected = asyncio.Event()
        bus.subscribe_all(self._on_bus_message)

    # ------------------------------------------------------------------ outgoing

    def _on_bus_message(self, message: Message[Any]) -> None:
        if message.origin == "mqtt":
            return  # came from the broker; sending it back would duplicate it
        self._enqueue(message.topic, message.to_json())

    def _enqueue(self, topic: str, payload: bytes) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                event(log, logging.WARNING, "mqtt_outbox_full", dropped=self._dropped)
        self._outbox.append((topic, payload))
        self._wakeup.set()

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Waits (at most `timeout_s`) until what was published so far has left."""
        if not self.connected.is_set():
            return
        if self._outbox:
            self._drained.clear()
            await wait_event(self._drained, timeout_s)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                topic, payload = self._outbox[0]
                await client.publish(topic, payload, qos=0, timeout=MQTT_TIMEOUT_S)
                self._outbox.popleft()  # only once handed to the client
            self._drained.set()

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connects, and reconnects with backoff whenever the broker goes away."""
        await keep_connected(self._broker, "charger", self._session, self.connected)

    async def _session(self, client: aiomqtt.Client) -> None:
        no_local = SubscribeOptions(qos=1, noLocal=True)
        await client.subscribe("+/+", options=no_local, timeout=MQTT_TIMEOUT_S)
        self.connected.set()
        event(log, logging.INFO, "mqtt_connected", broker=str(self._broker))
        sender = asyncio.create_task(self._send(client))
        try:
            async for incoming in client.messages:
                self._on_mqtt_message(str(incoming.topic), incoming.payload)
        finally:
            # A publish in flight can swallow the cancellation; do not wait forever.
            sender.cancel()
            await asyncio.wait({sender}, timeout=MQTT_TIMEOUT_S)

    # ------------------------------------------------------------------ incoming

    def _on_mqtt_message(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        if not API_PARTIES.issuperset(topic.split("/")):
            return
        try:
            message = api.parse(raw, topic)
        except ApiError as exc:
            self._reject(topic, raw, str(exc))
            return
        self._bus.publish(message)

    def _reject(self, topic: str, raw: bytes, reason: str) -> None:
        event(
            log,
            logging.WARNING,
            "mqtt_message_rejected",
            topic=topic,
            reason=reason,
            payload=raw[:200].decode(errors="replace"),
        )
        try:
            envelope = api.decode(raw)
        except ApiError:
            return
        reply = api.error_response(envelope, topic, reason)
        if reply is not None:
            self._bus.publish(reply)
