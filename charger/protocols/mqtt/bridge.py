"""Mirrors the bus to MQTT and injects what arrives from it.

Every message published on the bus by this process goes to the broker on its
`sender/receiver` topic. Messages from other clients on `+/+` are decoded, validated
against the Josev API schemas and injected into the bus; invalid ones are logged with
the reason and, where the message form has one, answered with an error response.
MQTT v5 "no local" subscriptions keep our own publications from coming back, so
nothing is delivered twice. `sim/cmd` carries JSON commands for the simulated board.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from typing import Any

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from charger import api
from charger.api import ApiError, Message
from charger.bus import Bus
from charger.hal.interfaces import CommandHandler
from charger.log import event

log = logging.getLogger(__name__)

SIM_COMMAND_TOPIC = "sim/cmd"
SIM_REPLY_TOPIC = "sim/reply"
OUTBOX_LIMIT = 10_000  # messages kept while the broker is away; the oldest go first
INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
MQTT_TIMEOUT_S = 5.0


class MqttBridge:
    def __init__(
        self,
        bus: Bus,
        host: str,
        port: int,
        *,
        sim_commands: CommandHandler | None = None,
    ) -> None:
        self._bus = bus
        self._host, self._port = host, port
        self._sim_commands = sim_commands
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._dropped = 0
        self.connected = asyncio.Event()
        bus.subscribe("#", self._on_bus_message)

    # ------------------------------------------------------------------ outgoing

    def _on_bus_message(self, message: Message) -> None:
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

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._outbox:
                topic, payload = self._outbox[0]
                await client.publish(topic, payload, qos=0, timeout=MQTT_TIMEOUT_S)
                self._outbox.popleft()  # only once handed to the client

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connects, and reconnects with backoff whenever the broker goes away."""
        delay = INITIAL_BACKOFF_S
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                event(
                    log,
                    logging.WARNING,
                    "mqtt_disconnected",
                    host=self._host,
                    port=self._port,
                    error=str(exc),
                    retry_in_s=delay,
                )
            if self.connected.is_set():  # the session worked: start backing off afresh
                delay = INITIAL_BACKOFF_S
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _session(self) -> None:
        client = aiomqtt.Client(
            self._host,
            self._port,
            protocol=aiomqtt.ProtocolVersion.V5,
            identifier=f"charger-{uuid.uuid4().hex[:12]}",
            timeout=MQTT_TIMEOUT_S,
            logger=logging.getLogger("aiomqtt"),
        )
        await client.__aenter__()
        try:
            no_local = SubscribeOptions(qos=1, noLocal=True)
            await client.subscribe("+/+", options=no_local, timeout=MQTT_TIMEOUT_S)
            self.connected.set()
            event(log, logging.INFO, "mqtt_connected", host=self._host, port=self._port)
            sender = asyncio.create_task(self._send(client))
            try:
                async for incoming in client.messages:
                    self._on_mqtt_message(str(incoming.topic), incoming.payload)
            finally:
                # A publish in flight can swallow the cancellation; do not wait forever.
                sender.cancel()
                await asyncio.wait({sender}, timeout=MQTT_TIMEOUT_S)
        finally:
            # aiomqtt waits for the broker's goodbye without a limit; we do not.
            try:
                async with asyncio.timeout(MQTT_TIMEOUT_S):
                    await client.__aexit__(None, None, None)
            except (TimeoutError, aiomqtt.MqttError):
                event(log, logging.WARNING, "mqtt_disconnect_unclean", host=self._host)

    # ------------------------------------------------------------------ incoming

    def _on_mqtt_message(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        if topic == SIM_COMMAND_TOPIC:
            self._sim_command(raw)
            return
        if topic.startswith("sim/"):
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
            envelope = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
        reply = api.error_response(envelope, topic, reason)
        if reply is not None:
            self._bus.publish(reply)

    def _sim_command(self, raw: bytes) -> None:
        command: Any = None
        reply: dict[str, Any]
        try:
            command = json.loads(raw)
            if not isinstance(command, dict):
                raise ValueError('a command is a JSON object such as {"cmd": "plug_in"}')
            if self._sim_commands is None:
                raise ValueError("this board takes no commands (hal backend is not sim)")
            reply = {"ok": True, "state": self._sim_commands(command)}
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            event(log, logging.WARNING, "sim_command_rejected", reason=str(exc))
            reply = {"ok": False, "error": str(exc)}
        if isinstance(command, dict) and "id" in command:
            reply["id"] = command["id"]
        self._enqueue(SIM_REPLY_TOPIC, json.dumps(reply).encode())
