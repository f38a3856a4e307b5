"""One MQTT client connection kept up for as long as its owner runs.

`keep_connected` runs a session on a fresh connection, and reconnects with backoff
whenever the broker goes away; the MQTT bridge and the simulator's command service
each keep their own connection this way. A `BrokerAddress` says where the broker is
(TCP host and port, or a Unix socket) and which credentials to log in with."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from charger.protocols.mqtt.credentials import Credentials
from charger.runtime.log import event

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
MQTT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str = "127.0.0.1"
    port: int = 1883
    socket: Path | None = None  # a Unix socket instead of TCP
    credentials: Credentials | None = None

    def __str__(self) -> str:
        return str(self.socket) if self.socket is not None else f"{self.host}:{self.port}"


@asynccontextmanager
async def connect(address: BrokerAddress, client_name: str) -> AsyncIterator[aiomqtt.Client]:
    creds = address.credentials
    client = aiomqtt.Client(
        str(address.socket) if address.socket is not None else address.host,
        address.port,
        transport="unix" if address.socket is not None else "tcp",
        username=creds.username if creds else None,
        password=creds.password if creds else None,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"{client_name}-{uuid.uuid4().hex[:12]}",
        timeout=MQTT_TIMEOUT_S,
        logger=logging.getLogger("aiomqtt"),
    )
    await client.__aenter__()
    try:
        yield client
    finally:
        # aiomqtt waits for the broker's goodbye without a limit; we do not.
        try:
            async with asyncio.timeout(MQTT_TIMEOUT_S):
                await client.__aexit__(None, None, None)
        except (TimeoutError, aiomqtt.MqttError):
            event(log, logging.WARNING, "mqtt_disconnect_unclean", client=client_name)


async def keep_connected(
    address: BrokerAddress,
    client_name: str,
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    connected: asyncio.Event,
) -> None:
    """Runs `session` on a connection, reconnecting with backoff. The session sets
    `connected` once it is ready; a session that got that far resets the backoff."""
    delay = INITIAL_BACKOFF_S
    while True:
        try:
            async with connect(address, client_name) as client:
                await session(client)
        except aiomqtt.MqttError as exc:
            event(
                log,
                logging.WARNING,
                "mqtt_disconnected",
                client=client_name,
                broker=str(address),
                error=str(exc),
                retry_in_s=delay,
            )
        if connected.is_set():  # the session worked: start backing off afresh
            delay = INITIAL_BACKOFF_S
            connected.clear()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
