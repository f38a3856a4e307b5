"""An in-process OCPP station: the OCPP client on its own bus, without a CS; whoever uses
it plays the CS by publishing on the bus and watches what the client asks on josev/cs."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

from charger.bus import Bus
from charger.bus.api import Message
from charger.protocols.ocpp.client import OcppClient
from charger.protocols.ocpp.outbox import Outbox
from charger.protocols.ocpp.settings import Connector, OcppSettings

EVSE_ID = "DE*OCP*E0001"


def settings(url: str, **overrides: object) -> OcppSettings:
    base = OcppSettings(
        csms_url=url,
        identity="CS001",
        basic_auth_password="s3cret-password",
        vendor="OpenWallbox",
        model="Wallbox 22",
        serial_number="SN-42",
        firmware_version="0.1.0",
        connectors=(Connector(EVSE_ID, 1, 1),),
        retry_wait_minimum_s=0.05,
        retry_random_range_s=0.05,
        call_timeout_s=5,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


class Station:
    def __init__(self, bus: Bus, client: OcppClient) -> None:
        self.bus, self.client = bus, client
        self.messages: list[Message] = []
        bus.subscribe_all(self.messages.append, topic="josev/cs")

    async def wait_for_count(self, name: str, count: int) -> Message:
        async with asyncio.timeout(10):
            while True:
                found = [m for m in self.messages if m.name == name]
                if len(found) >= count:
                    return found[count - 1]
                await asyncio.sleep(0.01)

    async def wait_for(self, name: str, **data: object) -> Message:
        async with asyncio.timeout(10):
            while True:
                for m in self.messages:
                    if m.name == name and all(m.data.get(k) == v for k, v in data.items()):
                        return m
                await asyncio.sleep(0.01)


@asynccontextmanager
async def station(
    url: str,
    local_list: Any = None,
    auth_cache: Any = None,
    network_profiles: Any = None,
    state_store: Any = None,
    device_model: Any = None,
    connect: Any = websockets.connect,
    **overrides: object,
) -> AsyncIterator[Station]:
    bus = Bus(validate_outgoing=True)
    outbox = Outbox(Path(tempfile.mkdtemp()) / "ocpp.db")
    client = OcppClient(
        bus,
        settings(url, **overrides),
        outbox,
        rng=random.Random(1),
        local_list=local_list,
        auth_cache=auth_cache,
        network_profiles=network_profiles,
        state_store=state_store,
        device_model=device_model,
        connect=connect,
    )
    st = Station(bus, client)
    st.client = client  # type: ignore[attr-defined]
    client.start()
    task = asyncio.create_task(client.run())
    try:
        yield st
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        outbox.close()
