"""The ISO 15118 SECC service for one EVSE: the asyncio shell around the session cores.

It listens on the EVSE's PLC interface — SDP on UDP 15118 (bound last, once the rest is
ready), a TCP server and, when configured, a TLS server on the link-local address —
and runs one V2G session at a time (a second connection meanwhile is closed at once).
Every bus message about the EVSE is folded into the `EvseView` the cores read.

Each session owns a `TaskOwner` (its bus requests), closed when the session ends or the
EV is unplugged. When a session ends:

- completed: the charging session ends at the CS as well (stop_charging);
- paused: nothing changes on the CP (5 % stays; the EV resumes with its session ID);
- failed: the power path is opened first — the CP goes to state F (cp_pwm fault_state),
  which makes the CS open the contactor at once, and the SECC waits for the CS to report
  it opened — and only then is the connection closed. After T_step_EF the CP returns to
  5 % for the EV to try again (ISO 15118-3, C_sequ_retry times); after that an AC EVSE
  offers basic charging (nominal duty cycle) unless the car asked for DC.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charger.bus import Bus, RequestTimeout, messages
from charger.bus.api import Form, Message
from charger.bus.messages import Topic
from charger.protocols.iso15118 import sdp, v2gtp
from charger.protocols.iso15118.core import (
    Action,
    Context,
    CoreSettings,
    End,
    Outcome,
    Publish,
    Request,
    Send,
)
from charger.protocols.iso15118.evse import EvseSetup, EvseView
from charger.protocols.iso15118.sap import Priority, V2gProtocol
from charger.protocols.iso15118.schedules import LimitsSchedules, ScheduleProvider
from charger.protocols.iso15118.session import CORES, SessionSettings, V2gSession
from charger.protocols.iso15118.settings import Iso15118Config
from charger.protocols.iso15118.tls import HANDSHAKE_TIMEOUT_S, TlsFiles, server_context
from charger.protocols.iso15118.v2gtp import FrameReader, V2gtpError
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

T_STEP_EF_S = 4.0  # ISO 15118-3: state E/F held at least this long before 5 % again
C_SEQU_RETRY = 2  # ISO 15118-3: retries of the whole sequence after a failure
CONTACTOR_WAIT_S = 3.0  # how long a failed session waits for the CS to report "opened"
INTERFACE_POLL_S = 2.0  # how often the SECC looks for its interface's address
STATS_KEPT = 20_000  # response times kept per message type (for `charger secc`)


@dataclass(frozen=True, slots=True)
class SeccSettings:
    session: SessionSettings = field(default_factory=SessionSettings)
    core: CoreSettings = field(default_factory=CoreSettings)
    tls: str = "off"  # off | offer | require
    tls_files: TlsFiles | None = None
    max_message_bytes: int = 8192
    basic_fallback: bool = True
    retries: int = C_SEQU_RETRY
    step_ef_s: float = T_STEP_EF_S
    contactor_wait_s: float = CONTACTOR_WAIT_S
    log_every_message: bool = True  # else the charging loop is logged at debug level
    sdp_port: int = sdp.SDP_PORT


@dataclass(slots=True)
class Timing:
    """Response times of one message type: request in -> response written."""

    total_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=STATS_KEPT)
    )
    core_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=STATS_KEPT)
    )


_LOOP_RESPONSES = frozenset({"CurrentDemandRes", "ChargingStatusRes"})


class _Connection(asyncio.Protocol):
    """One TCP/TLS connection: V2GTP framing, the session, its timer and tasks."""

    def __init__(self, service: SeccService, tls: bool) -> None:
        self._service = service
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.session: V2gSession | None = None
        self.owner: TaskOwner | None = None
        self.closed = asyncio.Event()
        self._reader = FrameReader(max_payload=service.settings.max_message_bytes)
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        self._service.connected(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.ended is not None:
            return
        received = time.perf_counter()
        now = self._service.clock()
        try:
            frames = self._reader.feed(data)
        except V2gtpError as exc:
            session.abort(now, f"V2GTP header: {exc}")
            self.apply(session.drain(), received)
            return
        for frame in frames:
            session.receive(now, frame)
            self.apply(session.drain(), received)
            if session.ended is not None:
                return
        self.schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if self._timer is not None:
            self._timer.cancel()
        session = self.session
        if session is not None and session.ended is None:
            reason = "the EV closed the connection" if exc is None else f"connection lost: {exc}"
            session.abort(self._service.clock(), reason)
            self.apply(session.drain(), time.perf_counter())

    # ------------------------------------------------------------------ session

    def start(self, session: V2gSession, owner: TaskOwner) -> None:
        self.session, self.owner = session, owner
        self.schedule()

    def schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        session = self.session
        deadline = None if session is None else session.next_deadline()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self._service.clock())
        self._timer = loop.call_at(loop.time() + delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        session = self.session
        if session is None or session.ended is not None:
            return
        session.tick(self._service.clock())
        self.apply(session.drain(), time.perf_counter())
        if session.ended is None:
            self.schedule()

    def apply(self, actions: list[Action], received: float) -> None:
        for action in actions:
            if isinstance(action, Send):
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(v2gtp.encode(action.payload_type, action.payload))
                self._service.sent(action, time.perf_counter() - received, self)
            elif isinstance(action, Publish):
                self._service.bus.publish(action.message)
            elif isinstance(action, Request):
                if self.owner is not None:
                    self.owner.spawn(self._service.request(action.message), action.message.name)
            else:
                self._service.session_ended(self, action)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class SeccService:
    def __init__(
        self,
        bus: Bus,
        setup: EvseSetup,
        settings: SeccSettings,
        *,
        schedules: ScheduleProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_session_end: Callable[[End], None] | None = None,
        on_message: Callable[[Send], None] | None = None,
        wait_for_interface: bool = True,
    ) -> None:
        self.bus = bus
        self.setup = setup
        self.settings = settings
        self.clock = clock
        self.view = EvseView(setup.evse_id)
        self.ctx = Context(
            setup,
            self.view,
            schedules or LimitsSchedules(),
            settings.core,
            wall_clock=wall_clock,
        )
        self.timings: dict[str, Timing] = {}
        self._on_session_end = on_session_end
        self._on_message = on_message
        self._wait_for_interface = wait_for_interface
        self._tasks = TaskOwner(f"secc {setup.evse_id}")
        self._active: _Connection | None = None
        self._connections: set[_Connection] = set()
        self._sessions = 0
        self._failures = 0  # failed sessions since plug-in (ISO 15118-3 retries)
        self._retry: asyncio.Task[None] | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._sdp: sdp.SdpServer | None = None
        self.ports: dict[str, int] = {}
        self.address: str | None = None
        self.ready = asyncio.Event()

    @property
    def evse_id(self) -> str:
        return self.setup.evse_id

    # ------------------------------------------------------------------ lifecycle

    _FOLDED: tuple[Form[Any], ...] = (
        messages.CS_STATUS_AND_LIMITS_RESPONSE,
        messages.CS_STATUS_AND_LIMITS_UPDATE,
        messages.AUTHORIZATION_REQUEST,
        messages.AUTHORIZATION_RESPONSE,
        messages.AUTHORIZATION_UPDATE,
        messages.CP_STATUS_UPDATE,
        messages.CS_CONTACTOR_STATUS_RESPONSE,
        messages.CS_CONTACTOR_STATUS_UPDATE,
        messages.CABLE_CHECK_RESPONSE,
        messages.POWER_ELECTRONICS_SETPOINT_RESPONSE,
        messages.METER_VALUES_RESPONSE,
        messages.METER_VALUES_UPDATE,
        messages.STOP_CHARGING_REQUEST,
    )

    def start(self) -> None:
        for form in self._FOLDED:
            self.bus.subscribe(form, self._fold, owner=self._tasks)
        self.bus.subscribe(
            messages.STOP_CHARGING_REQUEST,
            self._remote_stop,
            owner=self._tasks,
            topic=Topic.OCPP_ISO15118,
        )

    async def close(self) -> None:
        for connection in list(self._connections):
            if connection.session is not None and connection.session.ended is None:
                connection.session.abort(self.clock(), "the SECC is stopping")
                connection.apply(connection.session.drain(), time.perf_counter())
            connection.close()
        self._close_servers()
        await self._tasks.close()
        for connection in list(self._connections):
            if connection.owner is not None:
                await connection.owner.close()

    async def run(self) -> None:
        """Serves until cancelled; raises OSError when the interface cannot be used."""
        iface = self.setup.interface
        try:
            self.address = await self._link_local_address(iface)
            tls_context = None
            if self.settings.tls != "off":
                if self.settings.tls_files is None:
                    raise OSError("TLS is configured but no certificate chain and key are")
                tls_context = await asyncio.to_thread(server_context, self.settings.tls_files)
            self.ports["tcp"] = await self._listen(None)
            if tls_context is not None:
                self.ports["tls"] = await self._listen(tls_context)
            self._tasks.spawn(
                self.request(messages.CS_STATUS_AND_LIMITS_REQUEST.make({})), "limits"
            )
            self._sdp = await sdp.SdpServer.open(
                iface, self.address, self._answer_sdp, port=self.settings.sdp_port
            )
            event(
                log,
                logging.INFO,
                "secc_ready",
                evse=self.evse_id,
                iface=iface,
                address=self.address,
                tcp_port=self.ports.get("tcp"),
                tls_port=self.ports.get("tls"),
                tls=self.settings.tls,
                protocols=",".join(p.value for p in self.settings.session.protocols),
            )
            self.ready.set()
            await asyncio.Event().wait()
        finally:
            self.ready.clear()
            self._close_servers()

    async def _link_local_address(self, iface: str) -> str:
        """The interface's link-local address; waits for it to appear (a PLC modem's
        interface comes up late) unless told not to."""
        waiting = False
        while True:
            try:
                return await asyncio.to_thread(sdp.link_local_address, iface)
            except OSError as exc:
                if not self._wait_for_interface:
                    raise
                if not waiting:
                    event(log, logging.WARNING, "secc_waiting_for_interface", error=str(exc))
                    waiting = True
                await asyncio.sleep(INTERFACE_POLL_S)

    def _close_servers(self) -> None:
        if self._sdp is not None:
            self._sdp.close()
            self._sdp = None
        for server in self._servers:
            server.close()
        self._servers.clear()

    async def _listen(self, tls: Any) -> int:
        loop = asyncio.get_running_loop()
        assert self.address is not None
        link_local = ipaddress.IPv6Address(self.address).is_link_local
        # (a scope names the interface of a link-local address; ::1 takes none)
        host = f"{self.address}%{self.setup.interface}" if link_local else self.address
        ports = random.sample(sdp.TCP_PORT_RANGE, 64)
        for port in ports:
            try:
                server = await loop.create_server(
                    functools.partial(_Connection, self, tls is not None),
                    host=host,
                    port=port,
                    family=socket.AF_INET6,
                    ssl=tls,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if tls is not None else None,
                    reuse_address=True,
                )
            except OSError:
                continue
            self._servers.append(server)
            return port
        raise OSError(f"no free TCP port in {sdp.TCP_PORT_RANGE} on {host}")

    def _answer_sdp(self, request: sdp.SdpRequest) -> tuple[int, sdp.Security] | None:
        security = sdp.choose_security(request.security, self.settings.tls)
        if security is sdp.Security.TLS and "tls" in self.ports:
            return self.ports["tls"], security
        if security is sdp.Security.NONE and self.settings.tls != "require":
            return self.ports["tcp"], security
        return None

    # ------------------------------------------------------------------ bus

    def _fold(self, message: Message[Any]) -> None:
        was_plugged = self.view.plugged
        if not self.view.apply(message, self.clock()):
            return
        if was_plugged and not self.view.plugged:
            self._unplugged()

    def _unplugged(self) -> None:
        self.ctx.paused = None
        self._failures = 0
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        active = self._active
        if active is not None and active.session is not None and active.session.ended is None:
            active.session.abort(self.clock(), "the EV was unplugged")
            active.apply(active.session.drain(), time.perf_counter())

    async def _remote_stop(self, message: Message[messages.StopChargingRequest]) -> None:
        """stop_charging from OCPP to ISO 15118: the EV is told to stop (StopCharging in
        the next response); without a session the CS is asked to stop instead."""
        if message.data["evse_id"] != self.evse_id:
            return
        status = "accepted"
        if self._active is None:
            request = messages.STOP_CHARGING_REQUEST.make({"evse_id": self.evse_id})
            try:
                reply = await self.bus.request(request)
                status = reply.data["status"]
            except RequestTimeout:
                status = "rejected"
        data: messages.StopChargingResponse = {"evse_id": self.evse_id, "status": status}
        self.bus.publish(messages.STOP_CHARGING_RESPONSE.answer(message, data))

    async def request(self, message: Message[Any]) -> Message[Any] | None:
        """A bus request whose response the view folds; None (logged) on a timeout."""
        try:
            return await self.bus.request(message)
        except RequestTimeout:
            event(log, logging.WARNING, "secc_bus_timeout", evse=self.evse_id, name=message.name)
            return None

    def _cp_pwm(self, *, hlc: bool, fault: bool = False, current: float | None = None) -> Any:
        data: messages.CpPwmRequest = {
            "evse_id": self.evse_id,
            "hlc": hlc,
            "error_state": False,
            "fault_state": fault,
        }
        if not hlc:
            data["current"] = round(current or 0.0, 1)
        return self.request(messages.CP_PWM_REQUEST.make(data))

    # ------------------------------------------------------------------ sessions

    def connected(self, connection: _Connection) -> None:
        self._connections.add(connection)
        connection.closed.clear()
        if self._active is not None:
            event(
                log,
                logging.WARNING,
                "v2g_connection_refused",
                evse=self.evse_id,
                peer=connection.peer,
                reason="a V2G session is running on this EVSE",
            )
            connection.close()
            self._connections.discard(connection)
            return
        self._sessions += 1
        self._active = connection
        owner = TaskOwner(f"v2g {self.evse_id} #{self._sessions}")
        session = V2gSession(self.ctx, self.settings.session, self.clock())
        event(
            log,
            logging.INFO,
            "v2g_connected",
            evse=self.evse_id,
            peer=connection.peer,
            tls=connection.tls,
            session=self._sessions,
        )
        connection.start(session, owner)

    def sent(self, send: Send, elapsed_s: float, connection: _Connection) -> None:
        if self._on_message is not None:
            self._on_message(send)
        timing = self.timings.setdefault(send.request, Timing())
        timing.total_s.append(elapsed_s)
        timing.core_s.append(send.core_s)
        quiet = send.response in _LOOP_RESPONSES and not self.settings.log_every_message
        level = logging.DEBUG if quiet else logging.INFO
        protocol = connection.session.protocol if connection.session else None
        limit = CORES[protocol].PERFORMANCE_S.get(send.response) if protocol else None
        if limit is not None and elapsed_s > limit:
            level = logging.WARNING
        event(
            log,
            level,
            "v2g_message",
            evse=self.evse_id,
            request=send.request,
            response=send.response,
            code=send.code,
            response_ms=round(elapsed_s * 1000, 3),
            core_us=round(send.core_s * 1e6, 1),
        )

    def session_ended(self, connection: _Connection, end: End) -> None:
        if end.outcome is not Outcome.FAILED and self._active is connection:
            self._active = None  # the next car may connect while this one lingers
        level = logging.INFO if end.outcome is not Outcome.FAILED else logging.WARNING
        event(
            log,
            level,
            "v2g_session_end",
            evse=self.evse_id,
            outcome=end.outcome.value,
            reason=end.reason,
        )
        self._tasks.spawn(self._finish(connection, end), "session end")

    async def _finish(self, connection: _Connection, end: End) -> None:
        try:
            if end.outcome is Outcome.FAILED:
                await self._open_power_path(end.reason)
            elif end.outcome is Outcome.COMPLETED:
                await self._terminated()
            if end.linger_s > 0 and not connection.closed.is_set():
                try:
                    async with asyncio.timeout(end.linger_s):
                        await connection.closed.wait()
                except TimeoutError:
                    event(log, logging.INFO, "v2g_close_after_linger", evse=self.evse_id)
            connection.close()
            if connection.owner is not None:
                await connection.owner.close()
        finally:
            self._connections.discard(connection)
            if self._active is connection:
                self._active = None
        if end.outcome is Outcome.FAILED:
            self._failures += 1
            if self.view.plugged and self._retry is None:
                self._retry = self._tasks.spawn(self._after_failure(end), "after failure")
        elif end.outcome is Outcome.COMPLETED:
            self._failures = 0
        if self._on_session_end is not None:
            self._on_session_end(end)

    async def _open_power_path(self, reason: str) -> None:
        """A failed session: CP to state F (the CS opens the contactor at once), then
        wait for the CS to report the contactor opened. Before the connection closes."""
        if not self.view.plugged:
            return
        await self._cp_pwm(hlc=True, fault=True)
        opened = await self._contactor_opened(self.settings.contactor_wait_s)
        event(
            log,
            logging.WARNING if opened else logging.ERROR,
            "v2g_power_path_opened" if opened else "v2g_power_path_not_confirmed",
            evse=self.evse_id,
            contactor=self.view.contactor,
            reason=reason,
        )

    async def _contactor_opened(self, timeout_s: float) -> bool:
        deadline = self.clock() + timeout_s
        while True:
            reply = await self.request(
                messages.CS_CONTACTOR_STATUS_REQUEST.make({"evse_id": self.evse_id})
            )
            if reply is not None and reply.data["status"] == "opened":
                return True
            if self.clock() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def _terminated(self) -> None:
        """A terminated session ends the charging session at the CS too (stop_charging:
        the PWM goes off and the contactor opens once the EV leaves C; DC: the output
        stays on through WeldingDetection up to here)."""
        reply = await self.request(messages.STOP_CHARGING_REQUEST.make({"evse_id": self.evse_id}))
        event(
            log,
            logging.INFO,
            "v2g_charging_stopped",
            evse=self.evse_id,
            status=None if reply is None else reply.data["status"],
        )

    async def _after_failure(self, end: End) -> None:
        """ISO 15118-3 after a failed session: state F for T_step_EF, then 5 % again
        (the EV retries), C_sequ_retry times; then basic charging where the car can."""
        try:
            await asyncio.sleep(self.settings.step_ef_s)
            if not self.view.plugged:
                return
            if self._failures <= self.settings.retries:
                event(log, logging.INFO, "v2g_retry", evse=self.evse_id, failures=self._failures)
                await self._cp_pwm(hlc=True)
                return
            if self.settings.basic_fallback and self.setup.ac_phases and not end.dc:
                current = self._basic_current()
                event(
                    log, logging.WARNING, "v2g_basic_charging", evse=self.evse_id, current_a=current
                )
                await self._cp_pwm(hlc=False, current=current)
            else:
                event(
                    log, logging.WARNING, "v2g_gave_up", evse=self.evse_id, failures=self._failures
                )
                await self._cp_pwm(hlc=False, current=0.0)
        finally:
            self._retry = None

    def _basic_current(self) -> float:
        ac = self.view.ac
        if ac is None:
            return 0.0
        phases = ac["max_current"]
        return float(min(phases["l1"], *(v for v in (phases["l2"], phases["l3"]) if v > 0)))


def secc_settings(config: Iso15118Config) -> SeccSettings:
    """What the SECC service is built with, from the section."""
    tls_files = None
    if config.tls != "off":
        tls_files = TlsFiles(
            Path(config.tls_cert_chain),
            Path(config.tls_key),
            Path(config.tls_key_password_file) if config.tls_key_password_file else None,
        )
    return SeccSettings(
        session=SessionSettings(
            protocols=tuple(V2gProtocol(p) for p in config.protocols),
            priority=Priority(config.priority),
        ),
        core=CoreSettings(receipt_required=config.receipt_required),
        tls=config.tls,
        tls_files=tls_files,
        max_message_bytes=config.max_message_bytes,
        basic_fallback=config.basic_fallback,
        log_every_message=config.log_charging_loop,
    )
