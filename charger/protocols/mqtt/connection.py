"""One MQTT client connection kept up for as long as its owner runs.

`keep_connected` runs a session on a fresh connection, and reconnects with backoff
whenever the broker goes away; the MQTT bridge and the simulator's command service
each keep their own connection this way."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiomqtt

from charger.runtime.log import event

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
MQTT_TIMEOUT_S = 5.0


@asynccontextmanager
async def connect(host: str, port: int, client_name: str) -> AsyncIterator[aiomqtt.Client]:
    client = aiomqtt.Client(
        host,
        port,
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
    host: str,
    port: int,
    client_name: str,
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    connected: asyncio.Event,
) -> None:
    """Runs `session` on a connection, reconnecting with backoff. The session sets
    `connected` once it is ready; a session that got that far resets the backoff."""
    delay = INITIAL_BACKOFF_S
    while True:
        try:
            async with connect(host, port, client_name) as client:
                await session(client)
        except aiomqtt.MqttError as exc:
            event(
                log,
                logging.WARNING,
                "mqtt_disconnected",
                client=client_name,
                host=host,
                port=port,
                error=str(exc),
                retry_in_s=delay,
            )
        if connected.is_set():  # the session worked: start backing off afresh
            delay = INITIAL_BACKOFF_S
            connected.clear()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
