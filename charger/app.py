"""Composition root: builds the HAL, the bus, the services and the broker from a Config,
runs them on one event loop under supervision, and shuts them down cleanly.

Everything the app opens or starts is registered on one `AsyncExitStack`, so it is
closed in the reverse order whatever way the run ends: outputs safe first, then the
services and their tasks (the OCPP WebSocket says "going away"), the board, the stores,
and the broker last.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from cryptography import x509

from charger import __version__
from charger.bus import Bus
from charger.config import Config, EvseConfig
from charger.cs.controller import CsController, StationIdentity
from charger.hal.firmware import FirmwareInstaller
from charger.hal.interfaces import Board
from charger.protocols.iso15118.evse import EvseSetup
from charger.protocols.iso15118.service import SeccService, secc_settings
from charger.protocols.local_auth import LocalAuthorization
from charger.protocols.mqtt import credentials
from charger.protocols.mqtt.bridge import MqttBridge
from charger.protocols.mqtt.broker import MosquittoSupervisor
from charger.protocols.mqtt.connection import BrokerAddress
from charger.protocols.mqtt.settings import MqttConfig
from charger.protocols.ocpp.auth_cache import AuthCache
from charger.protocols.ocpp.client import OcppClient
from charger.protocols.ocpp.firmware import FirmwareOptions
from charger.protocols.ocpp.firmware_download import DownloadLimits
from charger.protocols.ocpp.firmware_signature import load_roots
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
from charger.runtime import scheduling, systemd
from charger.runtime.health import report_forever
from charger.runtime.log import event
from charger.runtime.scheduling import SchedulingConfig
from charger.runtime.store import Store, private_directory
from charger.runtime.tasks import TaskOwner, wait_event

if TYPE_CHECKING:  # the simulator is imported only when chosen
    from charger.sim.board import SimEvse
    from charger.sim.evcc.client import Link

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0  # how long start-up waits for the MQTT connections
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_RESTART = 75  # asks the CLI to re-exec the process (station reset)


class App:
    def __init__(
        self,
        config: Config,
        *,
        demo: bool = False,
        notifier: systemd.Notifier | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`monotonic`, `wall_clock`: the clocks of the CS controller's and the OCPP
        client's intervals and timestamps (a test rig passes its own)."""
        self.config = config
        self._monotonic, self._wall_clock = monotonic, wall_clock
        self.demo = demo
        self.bus = Bus(
            request_timeout_s=config.bus.request_timeout_s,
            validate_outgoing=config.bus.validate_local,
        )
        self.board: Board | None = None
        self.controller: CsController | None = None
        self._tasks = TaskOwner("app")
        self._notifier = notifier or systemd.Notifier(None)  # systemd: ready, watchdog
        self._broker = BrokerAddress()  # where our own MQTT clients connect, once known
        self._stop = asyncio.Event()
        self._exit_code = EXIT_OK
        self._bridge: MqttBridge | None = None  # for the health check after an update

    def request_stop(self, exit_code: int = EXIT_OK) -> None:
        self._exit_code = exit_code
        self._stop.set()

    async def run(self) -> int:
        cfg = self.config
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                self._notifier.ready(f"ready, {len(cfg.evses)} EVSE")
                if cfg.log.health_interval_s > 0:
                    state_dir, period_s = cfg.station.state_dir, cfg.log.health_interval_s
                    self._tasks.supervise("health", lambda: report_forever(state_dir, period_s))
                if self._notifier.watchdog_interval_s is not None:
                    # pinged from the event loop: a loop that hangs gets the unit restarted
                    self._tasks.supervise("systemd watchdog", self._notifier.run_watchdog)
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
                self._notifier.stopping()
                event(log, logging.INFO, "stopping", exit_code=self._exit_code)
        except Exception as exc:
            self._exit_code = EXIT_FAILURE  # the CLI reports `exc` and exits with this
            event(log, logging.ERROR, "failed", error=str(exc) or type(exc).__name__)
            raise
        finally:
            event(log, logging.INFO, "stopped", exit_code=self._exit_code)
        return self._exit_code

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        cfg = self.config
        apply_scheduling(cfg.scheduling)
        state_dir = cfg.station.state_dir
        await asyncio.to_thread(private_directory, state_dir)
        self._broker = await self._start_broker(stack)
        store = await _open(stack, Store, state_dir / "charger.db")
        if cfg.station.cs == "local":
            self.board = board = self._create_board()
            await board.start()
            stack.push_async_callback(board.stop)
        # Every service task has ended before the board stops and the stores close.
        stack.push_async_callback(self._tasks.close)
        if self.board is not None:
            await self._start_cs(stack, self.board, store)
        self._start_slac(stack)
        self._start_secc(stack)
        select_exi_codec(cfg.iso15118.exi_codec)
        if cfg.ocpp.enabled:
            await self._start_ocpp(stack, state_dir, store.moved_aside)
        if cfg.authorization.mode != "external":
            local = LocalAuthorization(
                self.bus,
                free=cfg.authorization.mode == "free",
                tokens=cfg.authorization.tokens,
            )
            local.start()
            stack.push_async_callback(local.close)
        bridge = self._bridge = MqttBridge(self.bus, self._broker)
        self._tasks.supervise("mqtt_bridge", bridge.run)
        stack.push_async_callback(bridge.flush)  # what shutting down reported goes out
        ready = [bridge.connected]
        if cfg.hal_backend == "sim":
            ready.append(self._start_sim())
        for connected in ready:
            await wait_event(connected, READY_TIMEOUT_S)
        stack.callback(self._drive_safe)  # the first thing on the way out

    async def _start_broker(self, stack: contextlib.AsyncExitStack) -> BrokerAddress:
        """The spawned broker (the last thing to stop), or the external one; returns where
        and as whom the charger's own clients connect."""
        mqtt, station = self.config.mqtt, self.config.station
        if mqtt.broker == "external":
            return BrokerAddress(mqtt.host, mqtt.port, credentials=await external_login(mqtt))
        creds = await asyncio.to_thread(credentials.load_or_create, station.state_dir)
        broker = MosquittoSupervisor(
            mqtt.mosquitto,
            mqtt.host,
            mqtt.port,
            station.state_dir / "run",
            creds,
            remote_cs=station.cs == "remote",
        )
        await broker.start()
        stack.push_async_callback(broker.stop)
        self._tasks.supervise("mosquitto", broker.run)
        return BrokerAddress(socket=broker.socket_path, credentials=creds["charger"])

    def _create_board(self) -> Board:
        """The configured backend; each is imported only when chosen (no sim in an image's
        run path, no RPi libraries on a PC), and gets only its own settings."""
        cfg = self.config
        if cfg.hal_backend == "sim":
            from charger.sim.board import create_board as create_sim_board

            return create_sim_board(cfg.evses, cfg.sim)
        from charger.hal.rpi import create_board as create_rpi_board

        return create_rpi_board(cfg.evses, cfg.rpi)

    def _start_sim(self) -> asyncio.Event:
        """The simulator's command service (and the demo loop); returns its `connected`."""
        from charger.sim.board import SimBoard
        from charger.sim.service import SimCommandService, run_demo

        board = self.board if isinstance(self.board, SimBoard) else None
        service = SimCommandService(board, self._broker)
        self._tasks.supervise("sim commands", service.run)
        if self.demo and board is not None:
            self._tasks.supervise("demo", lambda: run_demo(board))
        return service.connected

    async def _start_cs(self, stack: contextlib.AsyncExitStack, board: Board, store: Store) -> None:
        cfg = self.config
        identity = StationIdentity(cfg.station, cfg.ocpp, cfg.authorization.mode == "free")
        availability = await CsController.load_availability(store, [e.id for e in cfg.evses])
        self.controller = controller = CsController(
            identity,
            cfg.evses,
            board,
            self.bus,
            store,
            availability=availability,
            on_reset=lambda: self.request_stop(EXIT_RESTART),
            clock=self._monotonic,
        )
        controller.start()
        stack.push_async_callback(controller.close)
        # A crash drives every output safe first (contactor open, CP in state F).
        self._tasks.supervise("cs_controller", controller.run, on_crash=controller.drive_safe)

    def _start_slac(self, stack: contextlib.AsyncExitStack) -> None:
        for service in build_slac_services(self.config, self.board, self.bus):
            service.start()
            stack.push_async_callback(service.close)
            self._tasks.supervise(f"slac {service.evse_id}", service.run)

    def _start_secc(self, stack: contextlib.AsyncExitStack) -> None:
        links = self._sim_links()
        for service in build_secc_services(self.config, self.bus, links):
            service.start()
            stack.push_async_callback(service.close)
            self._tasks.supervise(f"secc {service.evse_id}", service.run)
        self._start_sim_evccs(links)

    def _sim_links(self) -> dict[int, Link]:
        """The simulated board's HLC EVSEs and the link their car's EVCC reaches the SECC
        by: the loopback interface, an SDP port each (docs/iso15118.md, "The simulated
        car"). Empty without a simulated board or without the SECC."""
        if self.config.hal_backend != "sim" or self.board is None:
            return {}
        if not self.config.iso15118.enabled:
            return {}
        from charger.sim.evcc.client import Link, free_sdp_port

        return {e.id: Link.loopback(free_sdp_port()) for e in self.config.evses if e.hlc}

    def _start_sim_evccs(self, links: dict[int, Link]) -> None:
        """The simulated cars' EVCCs: each runs its V2G sessions over its link."""
        from charger.sim.board import SimBoard
        from charger.sim.evcc.car import SimEvcc

        if not isinstance(self.board, SimBoard):
            return
        for evse_id, link in links.items():
            car = SimEvcc(self.board.evse(evse_id), link)
            self._tasks.supervise(f"sim evcc {evse_id}", car.run)

    async def _start_ocpp(
        self, stack: contextlib.AsyncExitStack, state_dir: Path, moved: Path | None
    ) -> None:
        cfg = self.config
        outbox = await _open(stack, Outbox, state_dir / "ocpp.db")
        dm_store = await _open(stack, Store, state_dir / "ocpp-dm.db")
        recovered = [p for p in (moved, outbox.moved_aside, dm_store.moved_aside) if p]
        settings = ocpp_settings(cfg)
        model = await asyncio.to_thread(build_device_model, settings, dm_store)
        installer = await self._firmware_installer()
        stack.push_async_callback(installer.close)
        client = OcppClient(
            self.bus,
            settings,
            outbox,
            device_model=model,
            local_list=LocalList(dm_store),
            auth_cache=AuthCache(dm_store, clock=self._wall_clock),
            network_profiles=NetworkProfiles(
                dm_store, NetworkProfile(1, settings.csms_url, settings.security_profile)
            ),
            state_store=dm_store,
            recovered_files=recovered,
            firmware=installer,
            firmware_options=await asyncio.to_thread(firmware_options, cfg),
            health=self._firmware_health,
            monotonic=self._monotonic,
            wall_clock=self._wall_clock,
        )
        client.start()
        stack.push_async_callback(client.close)
        self._tasks.supervise("ocpp", client.run)

    async def _firmware_installer(self) -> FirmwareInstaller:
        """RAUC over D-Bus on the board; the simulated RAUC (which restarts the process
        for a reboot) with the sim backend."""
        cfg = self.config
        if cfg.hal_backend == "sim":
            from charger.sim.rauc import SimRauc

            keyring = cfg.firmware.sim_keyring_file or cfg.firmware.manufacturer_root_file
            return await SimRauc.boot(
                cfg.station.state_dir / "sim-rauc",
                Path(keyring),
                lambda: self.request_stop(EXIT_RESTART),
            )
        from charger.hal.rauc import RaucInstaller

        return RaucInstaller()

    async def _firmware_health(self) -> str | None:
        """Is the new firmware fit to keep (checked once the CSMS accepted its boot)?
        The HAL answers without a fault (no RCD tripped, no contactor closed while all
        EVSEs are held free: a passive check, since injecting the RCD's test current
        here would trip it behind the CS controller's back) and the bus is mirrored to
        the broker. None when fit, else what is wrong."""
        if self.board is not None:
            for number, hw in self.board.evses.items():
                if hw.rcd.tripped():
                    return f"EVSE {number}: the RCD is tripped"
                if hw.contactor.feedback_closed():
                    return f"EVSE {number}: the contactor is closed with no session"
                hw.pilot.read()  # raises if the pilot cannot be read
        if self._bridge is not None and not self._bridge.connected.is_set():
            return "the MQTT bridge is not connected to the broker"
        return None

    def _drive_safe(self) -> None:
        """Contactors open and CP in state F before anything else stops."""
        if self.controller is not None:
            self.controller.shut_down()
        if self.board is not None:
            self.board.drive_safe()


async def external_login(mqtt: MqttConfig) -> credentials.Credentials | None:
    """The credentials for an external broker: [mqtt] username and password_file."""
    if not mqtt.username:
        return None
    path = Path(mqtt.password_file)
    try:
        password = (await asyncio.to_thread(path.read_text, encoding="utf-8")).strip()
    except OSError as exc:
        raise ValueError(f"mqtt.password_file: {path}: cannot be read ({exc.strerror})") from None
    return credentials.Credentials(mqtt.username, password)


class _Closeable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closeable)


async def _open(stack: contextlib.AsyncExitStack, opener: Callable[[Path], C], path: Path) -> C:
    """Opens a SQLite-backed store off the loop and registers its close."""
    opened = await asyncio.to_thread(opener, path)
    stack.callback(opened.close)
    return opened


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


def firmware_options(config: Config) -> FirmwareOptions:
    """`[firmware]` as the OCPP client takes it (blocking: reads the manufacturer root).
    A root file that cannot be read is logged; every secure update is then refused."""
    fw = config.firmware
    roots: tuple[x509.Certificate, ...] = ()
    if fw.manufacturer_root_file:
        try:
            roots = load_roots(Path(fw.manufacturer_root_file).read_bytes())
        except (OSError, ValueError) as exc:
            event(
                log,
                logging.ERROR,
                "firmware_root_unreadable",
                path=fw.manufacturer_root_file,
                error=str(exc),
            )
    return FirmwareOptions(
        directory=config.station.state_dir / "firmware",
        roots=roots,
        allow_unsigned=fw.allow_unsigned,
        limits=DownloadLimits(
            max_bytes=fw.max_size_mb * 1024 * 1024,
            connect_timeout_s=fw.connect_timeout_s,
            read_timeout_s=fw.read_timeout_s,
        ),
        retries=fw.retries,
        retry_interval_s=fw.retry_interval_s,
        health_timeout_s=fw.health_timeout_s,
        firmware_version=__version__,
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
                    slac_init_s=config.slac.init_timeout_s,
                ),
                reset_modem=plc.reset_modem if plc is not None else None,
            )
        )
    return services


def secc_evse(evse: EvseConfig, interface: str | None = None) -> EvseSetup:
    """The EVSE as the SECC offers it."""
    dc = evse.kind == "dc"
    return EvseSetup(
        evse.evse_id,
        interface or evse.network_interface,
        ac_phases=0 if dc else evse.phases,
        dc=dc,
        nominal_voltage_v=evse.nominal_voltage_v,
    )


def build_secc_services(
    config: Config, bus: Bus, sim_links: Mapping[int, Link] | None = None
) -> list[SeccService]:
    """One ISO 15118 SECC per HLC-capable EVSE, on its network interface; an EVSE of the
    simulated board in `sim_links` (by id) on its simulated link instead."""
    if not config.iso15118.enabled:
        return []
    settings = secc_settings(config.iso15118)
    services = []
    for evse in (e for e in config.evses if e.hlc):
        link = (sim_links or {}).get(evse.id)
        if link is None:
            services.append(SeccService(bus, secc_evse(evse), settings))
        else:
            sim_settings = dataclasses.replace(settings, sdp_port=link.sdp_port)
            services.append(SeccService(bus, secc_evse(evse, link.interface), sim_settings))
    return services


def apply_scheduling(config: SchedulingConfig) -> None:
    """The event loop's thread as `[scheduling]` asks (before anything is spawned)."""
    problem = scheduling.apply_realtime_priority(config.realtime_priority)
    if problem is not None:
        event(log, logging.WARNING, "scheduling_refused", problem=problem)
    event(log, logging.INFO, "scheduling", policy=scheduling.describe())


async def run_secc(config: Config, interface: str, *, loop: bool) -> int:
    """`charger secc`: the first EVSE's SECC on `interface` with the simulated power path
    behind it (`secc_station`); see `protocols.iso15118.standalone`."""
    from charger.protocols.iso15118 import standalone

    apply_scheduling(config.scheduling)
    async with secc_station(config, interface) as station:
        return await standalone.serve(
            station.bus,
            secc_evse(station.evse, interface),
            dataclasses.replace(secc_settings(config.iso15118), log_every_message=True),
            station.car,
            loop=loop,
        )


@dataclasses.dataclass(frozen=True)
class SeccStation:
    bus: Bus
    evse: EvseConfig
    board: Board
    car: _SimCar


@contextlib.asynccontextmanager
async def secc_station(
    config: Config, interface: str, *, validate: bool = False
) -> AsyncIterator[SeccStation]:
    """The power path `charger secc` puts behind the SECC: the simulated board and the CS
    controller for the first EVSE (made HLC, on `interface`) on one bus, with the built-in
    authorization (an allow-list, else free: no CSMS here) and the board's car standing
    in for the EV. The CS keeps its state in a temporary directory."""
    import tempfile

    from charger.sim.board import create_board as create_sim_board

    evse_cfg = dataclasses.replace(config.evses[0], hlc=True, network_interface=interface)
    bus = Bus(request_timeout_s=config.bus.request_timeout_s, validate_outgoing=validate)
    board = create_sim_board((evse_cfg,), config.sim)
    with tempfile.TemporaryDirectory(prefix="charger-secc-") as state:
        store = await asyncio.to_thread(Store, Path(state) / "charger.db")
        tasks = TaskOwner("secc station")
        identity = StationIdentity(config.station, config.ocpp, config.authorization.mode == "free")
        controller = CsController(
            identity, (evse_cfg,), board, bus, store, availability={}, on_reset=lambda: None
        )
        local = LocalAuthorization(
            bus,
            free=config.authorization.mode != "allow_list",
            tokens=config.authorization.tokens,
        )
        try:
            await board.start()
            controller.start()
            local.start()
            tasks.supervise("cs_controller", controller.run, on_crash=controller.drive_safe)
            yield SeccStation(bus, evse_cfg, board, _SimCar(board.evse(evse_cfg.id)))
        finally:
            controller.shut_down()
            await tasks.close()
            await local.close()
            await controller.close()
            await board.stop()
            store.close()


class _SimCar:
    """The simulated board's car as the EV at the far end of `charger secc`'s link: it
    is plugged in and follows the V2G session — the pilot of an AC car (the EV at the far
    end speaks ISO 15118, not the simulated car's own EVCC, so its S2 is set here), the
    contactor of a DC one (which closes S2 at 5 % by itself)."""

    def __init__(self, sim: SimEvse) -> None:
        self._sim = sim

    def plug(self, plugged: bool) -> None:
        if plugged:
            self._sim.plug_in()
        else:
            self._sim.unplug()

    def ev_state(self, state: str) -> None:
        ev = self._sim.ev
        if self._sim.dc is None and ev.plugged and ev.s2_state != state:
            ev.s2_state = state
            self._sim._pilot_changed()  # (the far end's EVCC, not the board's, decides)

    def ev_power(self, on: bool) -> None:
        if self._sim.dc is not None and self._sim.ev.plugged:
            self._sim.set_ev_contactor(on)


async def main(config: Config, *, demo: bool = False) -> int:
    app = App(config, demo=demo, notifier=systemd.from_environ(os.environ, os.getpid()))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.request_stop)
    return await app.run()
