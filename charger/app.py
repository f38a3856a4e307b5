"""Composition root: builds the HAL, the bus, the services and the broker from a Config,
runs them on one event loop under supervision, and shuts them down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from charger import __version__
from charger.bus import Bus
from charger.config import Config
from charger.hal import create_board
from charger.hal.interfaces import Board
from charger.runtime.log import event
from charger.protocols.local_auth import LocalAuthorization
from charger.protocols.mqtt.bridge import MqttBridge
from charger.protocols.mqtt.broker import MosquittoSupervisor
from charger.protocols.ocpp.auth_cache import AuthCache
from charger.protocols.ocpp.client import OcppClient
from charger.protocols.ocpp.local_list import LocalList
from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.outbox import Outbox
from charger.protocols.ocpp.settings import (
    Connector,
    OcppSettings,
    build_device_model,
)
from charger.protocols.ocpp.tls import client_context
from charger.protocols.slac.link import RawEthernet
from charger.protocols.slac.service import SlacService, SlacServiceSettings
from charger.cs.controller import CsController, StationIdentity
from charger.runtime.store import Store
from charger.runtime.supervise import supervise
from charger.runtime.tasks import wait_event

log = logging.getLogger(__name__)

# `charger sim --demo`: a car arrives, charges, stops and leaves, over and over.
DEMO_SCRIPT: tuple[tuple[float, dict[str, Any]], ...] = (
    (3.0, {"cmd": "plug_in"}),
    (30.0, {"cmd": "stop_charging"}),
    (4.0, {"cmd": "unplug"}),
    (1.0, {"cmd": "start_charging"}),
)

SHUTDOWN_TIMEOUT_S = 5.0
EXIT_OK = 0
EXIT_RESTART = 75  # asks the CLI to re-exec the process (station reset)


class App:
    def __init__(self, config: Config, *, demo: bool = False, validate_bus: bool = False) -> None:
        self.config = config
        self.demo = demo
        self.bus = Bus(validate_outgoing=validate_bus)
        self.board: Board | None = None
        self.controller: CsController | None = None
        self._stop = asyncio.Event()
        self._exit_code = EXIT_OK
        self._tasks: list[asyncio.Task[None]] = []

    def request_stop(self, exit_code: int = EXIT_OK) -> None:
        self._exit_code = exit_code
        self._stop.set()

    async def run(self) -> int:
        cfg = self.config
        store = await asyncio.to_thread(Store, cfg.station.state_dir / "charger.db")
        broker: MosquittoSupervisor | None = None
        try:
            if cfg.mqtt.broker == "spawn":
                broker = MosquittoSupervisor(
                    cfg.mqtt.mosquitto, cfg.mqtt.host, cfg.mqtt.port, cfg.station.state_dir / "run"
                )
                await broker.start()
                self._spawn("mosquitto", broker.run)
            if cfg.station.cs == "local":
                await self._start_cs(store)
            self._start_slac()
            select_exi_codec(cfg.iso15118.exi_codec)
            if cfg.ocpp.enabled:
                outbox = await asyncio.to_thread(Outbox, cfg.station.state_dir / "ocpp.db")
                settings = ocpp_settings(cfg)
                dm_store = await asyncio.to_thread(Store, cfg.station.state_dir / "ocpp-dm.db")
                model = await asyncio.to_thread(build_device_model, settings, dm_store)
                client = OcppClient(
                    self.bus,
                    settings,
                    outbox,
                    device_model=model,
                    local_list=LocalList(dm_store),
                    auth_cache=AuthCache(dm_store),
                    network_profiles=NetworkProfiles(
                        dm_store, NetworkProfile(1, settings.csms_url, settings.security_profile)
                    ),
                    state_store=dm_store,
                )
                client.start()
                self._spawn("ocpp", client.run)
            if cfg.authorization.mode != "external":
                LocalAuthorization(
                    self.bus,
                    free=cfg.authorization.mode == "free",
                    tokens=cfg.authorization.tokens,
                    request_timeout_s=cfg.mqtt.request_timeout_s,
                ).start()
            bridge = MqttBridge(
                self.bus,
                cfg.mqtt.host,
                cfg.mqtt.port,
                sim_commands=self.board.commands if self.board else None,
            )
            self._spawn("mqtt_bridge", bridge.run)
            await wait_event(bridge.connected, 10.0)
            if self.demo and self.board is not None and self.board.commands is not None:
                commands = self.board.commands
                self._spawn("demo", lambda: _run_demo(commands))
            event(
                log,
                logging.INFO,
                "ready",
                version=__version__,
                cs=cfg.station.cs,
                hal=cfg.hal_backend if cfg.station.cs == "local" else "none",
                mqtt=f"{cfg.mqtt.host}:{cfg.mqtt.port}",
                evses=len(cfg.evses),
            )
            await self._stop.wait()
        finally:
            await self._shutdown(broker, store)
        return self._exit_code

    async def _start_cs(self, store: Store) -> None:
        cfg = self.config
        self.board = board = create_board(cfg.hal_backend, cfg.evses, cfg.sim, cfg.rpi)
        await board.start()
        identity = StationIdentity(
            cfg.station, cfg.ocpp, cfg.authorization.mode == "free", cfg.mqtt.request_timeout_s
        )
        availability = await CsController.load_availability(store, [e.id for e in cfg.evses])
        self.controller = controller = CsController(
            identity,
            cfg.evses,
            board,
            self.bus,
            store,
            availability=availability,
            on_reset=lambda: self.request_stop(EXIT_RESTART),
        )
        controller.start()
        # A crash drives every output safe first (contactor open, CP in state F).
        self._spawn("cs_controller", controller.run, on_crash=controller.drive_safe)

    def _start_slac(self) -> None:
        for service in build_slac_services(self.config, self.board, self.bus):
            service.start()
            self._spawn(f"slac {service.evse_id}", service.run)

    def _spawn(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        self._tasks.append(asyncio.create_task(supervise(name, run, on_crash=on_crash), name=name))

    async def _shutdown(self, broker: MosquittoSupervisor | None, store: Store) -> None:
        if self.controller is not None:
            self.controller.drive_safe()
        if self.board is not None:
            self.board.drive_safe()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=SHUTDOWN_TIMEOUT_S)
            for task in stuck:
                event(log, logging.WARNING, "task_did_not_stop", task=task.get_name())
        if self.board is not None:
            await self.board.stop()
        if broker is not None:
            await broker.stop()
        store.close()
        event(log, logging.INFO, "stopped", exit_code=self._exit_code)


def ocpp_settings(config: Config) -> OcppSettings:
    ocpp, station = config.ocpp, config.station
    return OcppSettings(
        csms_url=ocpp.csms_url,
        identity=ocpp.identity or station.serial_number,
        basic_auth_password=ocpp.basic_auth_password,
        security_profile=ocpp.security_profile,
        vendor=station.vendor,
        model=station.model,
        serial_number=station.serial_number,
        firmware_version=__version__,
        connectors=tuple(
            Connector(
                e.evse_id,
                e.id,
                e.connector_id,
                e.connector_type,
                e.phases,
                e.max_current_a * e.phases * e.nominal_voltage_v,
            )
            for e in config.evses
        ),
        answer_authorization=config.authorization.mode == "external",
        tls=client_context(
            ocpp.security_profile,
            ocpp.ca_file or None,
            ocpp.client_cert_file or None,
            ocpp.client_key_file or None,
        )
        if ocpp.security_profile >= 2
        else None,
        tls_factory=lambda level: upgrade_context(config, level),
    )


def upgrade_context(config: Config, level: int) -> ssl.SSLContext:
    """TLS for a security profile the CSMS moves the station to (A05): only with a CSMS
    root configured (not the system's trust store) and, for profile 3, a client cert."""
    ocpp = config.ocpp
    if not ocpp.ca_file:
        raise ValueError("no CSMS root certificate configured (ocpp.ca_file)")
    return client_context(
        level, ocpp.ca_file, ocpp.client_cert_file or None, ocpp.client_key_file or None
    )


def select_exi_codec(choice: str) -> None:
    """The configured EXI codec; a vendor codec that fails to load leaves the built-in one."""
    from charger.protocols import exi

    try:
        exi.set_backend(choice)
    except Exception as exc:  # a vendor module can fail in any way; keep charging
        event(log, logging.ERROR, "exi_codec_unavailable", codec=choice, error=repr(exc))
        exi.set_backend("c")
    else:
        event(log, logging.INFO, "exi_codec", codec=exi.backend().name)


def build_slac_services(config: Config, board: Board | None, bus: Bus) -> list[SlacService]:
    """One SLAC service per HLC-capable EVSE, on the board's PLC link or a raw socket."""
    services = []
    for evse in (e for e in config.evses if e.hlc):
        plc = board.evses[evse.id].plc if board is not None else None
        transport = plc.frame_transport() if plc is not None else None
        services.append(
            SlacService(
                bus,
                transport or RawEthernet(evse.network_interface),
                SlacServiceSettings(
                    evse_id=evse.evse_id,
                    fallback_current_a=evse.max_current_a,
                    request_timeout_s=config.mqtt.request_timeout_s,
                    slac_init_s=config.slac.init_timeout_s,
                ),
                reset_modem=plc.reset_modem if plc is not None else None,
            )
        )
    return services


async def _run_demo(commands: Callable[[Mapping[str, Any]], dict[str, Any]]) -> None:
    while True:
        for delay_s, command in DEMO_SCRIPT:
            await asyncio.sleep(delay_s)
            state = commands(command)
            event(
                log,
                logging.INFO,
                "demo",
                cmd=command["cmd"],
                ev_state=state["ev"]["state"],
                soc_percent=state["ev"]["soc_percent"],
                energy_wh=state["energy_import_wh"],
            )


async def main(config: Config, *, demo: bool = False) -> int:
    app = App(config, demo=demo)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.request_stop)
    return await app.run()
