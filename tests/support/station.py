"""An in-process station for tests: simulated board, real bus, real controller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from charger import config
from charger.app import build_slac_services
from charger.bus import Bus, api
from charger.bus.api import Message
from charger.cs.controller import CsController, StationIdentity
from charger.protocols.local_auth import LocalAuthorization
from charger.runtime.store import Store
from charger.sim.board import SimBoard, create_board

EVSE_ID = "DE*TST*E0001"


def station_config(tmp_path: Path, extra: str = "", evse: str = "", sim: str = "") -> config.Config:
    text = f"""
[station]
state_dir = "{tmp_path}"
meter_interval_s = 0.2
connection_timeout_s = 30
[bus]
request_timeout_s = 2
[[evse]]
id = 1
evse_id = "{EVSE_ID}"
max_current_a = 32
{evse}
[sim]
ev_reaction_s = 0
ev_max_current_a = 16
time_scale = 100
{sim}
{extra}
"""
    return config.parse(__import__("tomllib").loads(text), "test")


# A DC EVSE (CCS) with SLAC, and a CCS car that does SLAC, on the simulated board.
DC_EVSE = """
kind = "dc"
hlc = true
connector_type = "cCCS2"
dc_max_voltage_v = 500
dc_min_voltage_v = 150
dc_max_current_a = 125
dc_max_power_w = 50000
dc_current_regulation_tolerance_a = 1
"""
DC_EV = """
ev_hlc = true
ev_soc_percent = 40
ev_battery_voltage_v = 400
ev_battery_resistance_ohm = 0.05
ev_dc_max_voltage_v = 450
"""


def dc_station_config(
    tmp_path: Path, extra: str = "", evse: str = "", sim: str = ""
) -> config.Config:
    """station_config with the EVSE made DC and the car a CCS car (battery 392 V at 40 %)."""
    return station_config(tmp_path, extra, evse=DC_EVSE + evse, sim=DC_EV + sim)


class FakeClock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> float:
        return self._loop.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Station:
    def __init__(self, cfg: config.Config, bus: Bus, board: SimBoard, store: Store) -> None:
        self.cfg, self.bus, self.board, self.store = cfg, bus, board, store
        self.messages: list[Message] = []
        self.resets = 0
        self.clock = FakeClock()
        bus.subscribe_all(self.messages.append)

    @property
    def ev(self) -> Any:
        return self.board.evse(1)

    async def wait_for(
        self, predicate: Callable[[Message], bool], timeout_s: float = 5.0, after: int = 0
    ) -> Message:
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.messages[after:]:
                    if predicate(message):
                        return message
                await asyncio.sleep(0.005)

    async def wait_state(self, state: str, after: int = 0) -> Message:
        return await self.wait_for(
            lambda m: m.name == "cp_status" and m.data["state"] == state, after=after
        )

    async def request(self, name: str, data: dict[str, Any]) -> Message:
        return await self.bus.request(api.request(name, "josev/cs", data), timeout_s=2.0)

    def names(self, after: int = 0) -> list[str]:
        return [f"{m.name}.{m.type}" for m in self.messages[after:]]


@contextlib.asynccontextmanager
async def running_station(cfg: config.Config) -> AsyncIterator[Station]:
    bus = Bus(request_timeout_s=2.0, validate_outgoing=True)
    board = create_board(cfg.evses, cfg.sim)
    store = Store(cfg.station.state_dir / "charger.db")
    station = Station(cfg, bus, board, store)
    identity = StationIdentity(cfg.station, cfg.ocpp, cfg.authorization.mode == "free")
    availability = await CsController.load_availability(store, [e.id for e in cfg.evses])

    def on_reset() -> None:
        station.resets += 1

    controller = CsController(
        identity,
        cfg.evses,
        board,
        bus,
        store,
        availability=availability,
        on_reset=on_reset,
        clock=station.clock,
    )
    local_auth = None
    if cfg.authorization.mode != "external":
        local_auth = LocalAuthorization(
            bus, free=cfg.authorization.mode == "free", tokens=cfg.authorization.tokens
        )
        local_auth.start()
    await board.start()
    controller.start()
    tasks = [asyncio.create_task(controller.run())]
    station.slac = build_slac_services(cfg, board, bus)  # type: ignore[attr-defined]
    for service in station.slac:  # type: ignore[attr-defined]
        service.start()
        tasks.append(asyncio.create_task(service.run()))
    station.controller = controller  # type: ignore[attr-defined]
    try:
        yield station
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await controller.close()
        for service in station.slac:  # type: ignore[attr-defined]
            await service.close()
        if local_auth is not None:
            await local_auth.close()
        await board.stop()
        store.close()
