"""The EVCC's asyncio shell: SDP client, the TCP (or TLS) connection to the SECC, V2GTP
framing, and one core driven on the loop's clock. The transport pieces are the SECC's
own (`charger.protocols.iso15118.sdp` for the SDP datagrams, `.v2gtp` for the framing).

A `Link` says where the SECC is found: on a PLC or veth link the SDP request goes to
ff02::1 on the interface and the SECC answers with its link-local address, as ISO
15118-2 has it; on the loopback interface (the simulator, `charger sim`) there is no
multicast, so the request goes to ::1 and the SDP port is the EVSE's own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from charger.protocols.iso15118 import sdp, v2gtp
from charger.protocols.iso15118.core import Outcome
from charger.protocols.iso15118.v2gtp import FrameReader, PayloadType, V2gtpError
from charger.runtime.log import event
from charger.sim.evcc.core import (
    SDP_INTERVAL_S,
    SDP_REQUESTS,
    Action,
    Draw,
    Ended,
    EvccCore,
    EvPower,
    Exchange,
    Pilot,
    Send,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
MAX_MESSAGE_BYTES = 65536
LOOPBACK = "lo"


@dataclass(frozen=True, slots=True)
class Link:
    """Where the car looks for the SECC."""

    interface: str
    sdp_address: str = sdp.MULTICAST_ADDRESS
    sdp_port: int = sdp.SDP_PORT

    @classmethod
    def loopback(cls, sdp_port: int) -> Link:
        """The simulated powerline: the loopback interface, SDP to ::1 on `sdp_port`."""
        return cls(LOOPBACK, "::1", sdp_port)


def free_sdp_port() -> int:
    """A UDP port free on ::1 now, for a simulated EVSE's SDP server."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        return int(probe.getsockname()[1])


class Car(Protocol):
    """What the EVCC's actions do to the car it sits in."""

    def pilot(self, state: str) -> None: ...

    def ev_power(self, on: bool) -> None: ...

    def draw(self, now: float, current_a: float, voltage_v: float) -> None: ...


@dataclass(slots=True)
class SessionResult:
    ended: Ended
    sdp: sdp.SdpResponse | None = None
    sdp_s: float | None = None  # first SDP request -> the response used
    started: float | None = None  # the connection stood (the core's clock)
    finished: float | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


async def discover(
    link: Link,
    security: sdp.Security,
    *,
    attempts: int = SDP_REQUESTS,
    interval_s: float = SDP_INTERVAL_S,
) -> tuple[sdp.SdpResponse, float]:
    """SDP as an EV does it: the request every `interval_s` until a response comes;
    returns it and how long it took. Raises TimeoutError after `attempts` requests."""
    loop = asyncio.get_running_loop()
    index = socket.if_nametoindex(link.interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.interface.encode())
        sock.bind(("::", 0))
        sock.setblocking(False)
        request = sdp.request(security)
        started = time.perf_counter()
        for _ in range(attempts):
            await loop.sock_sendto(sock, request, (link.sdp_address, link.sdp_port, 0, index))
            deadline = loop.time() + interval_s
            while (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        data, peer = await loop.sock_recvfrom(sock, 64)
                except TimeoutError:
                    break
                try:
                    answer = sdp.parse_response(data)
                except V2gtpError as exc:
                    event(
                        log, logging.WARNING, "sim_evcc_sdp_ignored", peer=peer[0], reason=str(exc)
                    )
                    continue
                return answer, time.perf_counter() - started
        raise TimeoutError(f"no SDP response to {attempts} requests on {link.interface}")
    finally:
        sock.close()


class _Connection(asyncio.Protocol):
    def __init__(self, session: EvccSession) -> None:
        self._session = session
        self._reader = FrameReader(max_payload=MAX_MESSAGE_BYTES)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        session = self._session
        try:
            frames = self._reader.feed(data)
        except V2gtpError as exc:
            session.abort(f"V2GTP header from the SECC: {exc}")
            return
        for frame in frames:
            if frame.payload_type != PayloadType.EXI:
                session.abort(f"V2GTP payload type 0x{frame.payload_type:04X} from the SECC")
                return
            session.received(frame.payload)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "the SECC closed the connection" if exc is None else f"connection lost: {exc}"
        self._session.abort(reason)

    def write(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(v2gtp.encode(PayloadType.EXI, payload))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class EvccSession:
    """One V2G communication session: SDP, the connection, the core until it ends.

    `run()` returns the result once the core has ended and the connection is closed;
    `abort(reason)` ends it early (the car was unplugged, the link went down).
    """

    def __init__(
        self,
        link: Link,
        core: EvccCore,
        car: Car,
        *,
        tls: ssl.SSLContext | None = None,
        name: str = "",
        on_message: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.link = link
        self.core = core
        self.car = car
        self.tls = tls
        self.name = name
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._connection: _Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()
        self._reported = 0

    def now(self) -> float:
        return self._loop.time()

    async def run(self) -> SessionResult:
        core = self.core
        result = SessionResult(Ended(Outcome.FAILED, "not started", core.session_id))
        try:
            security = sdp.Security.TLS if self.tls is not None else sdp.Security.NONE
            try:
                answer, result.sdp_s = await discover(
                    self.link,
                    security,
                    attempts=core.settings.sdp_requests,
                    interval_s=core.settings.sdp_interval_s,
                )
            except (OSError, TimeoutError) as exc:
                core.abort(self.now(), f"SDP: {exc}")
                return self._result(result)
            result.sdp = answer
            event(
                log,
                logging.INFO,
                "sim_evcc_sdp",
                car=self.name,
                address=answer.address,
                port=answer.port,
                security=answer.security.name,
                ms=round(result.sdp_s * 1000, 1),
            )
            if answer.security is not security or answer.transport is not sdp.Transport.TCP:
                core.abort(
                    self.now(), f"SDP answered {answer.security.name} over {answer.transport.name}"
                )
                return self._result(result)
            link_local = ipaddress.IPv6Address(answer.address).is_link_local
            host = f"{answer.address}%{self.link.interface}" if link_local else answer.address
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    _, connection = await self._loop.create_connection(
                        lambda: _Connection(self),
                        host,
                        answer.port,
                        ssl=self.tls,
                        server_hostname="" if self.tls is not None else None,
                    )
            except (OSError, TimeoutError) as exc:
                core.abort(self.now(), f"connecting to [{host}]:{answer.port}: {exc!r}")
                return self._result(result)
            self._connection = connection
            result.started = self.now()
            core.start(result.started)
            self._apply()
            await self._done.wait()
            return self._result(result)
        finally:
            if self._timer is not None:
                self._timer.cancel()
            if self._connection is not None:
                self._connection.close()
            if core.ended is None:  # cancelled: the car stops taking energy all the same
                core.abort(self.now(), "the car's EVCC stopped")
                self._apply()

    def _result(self, result: SessionResult) -> SessionResult:
        self._apply()
        assert self.core.ended is not None
        result.ended = self.core.ended
        result.finished = self.now()
        result.exchanges = list(self.core.exchanges)
        return result

    def received(self, payload: bytes) -> None:
        self.core.receive(self.now(), payload)
        self._apply()

    def abort(self, reason: str) -> None:
        if self.core.ended is None:
            self.core.abort(self.now(), reason)
            self._apply()

    def _tick(self) -> None:
        self._timer = None
        self.core.tick(self.now())
        self._apply()

    def _apply(self) -> None:
        for action in self.core.drain():
            self._do(action)
        new = self.core.received - self._reported
        if new > 0 and self._on_message is not None:
            for exchange in list(self.core.exchanges)[-new:]:
                self._on_message(exchange)
        self._reported = self.core.received
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._tick)

    def _do(self, action: Action) -> None:
        if isinstance(action, Send):
            if self._connection is not None:
                self._connection.write(action.payload)
        elif isinstance(action, Pilot):
            self.car.pilot(action.state)
        elif isinstance(action, EvPower):
            self.car.ev_power(action.on)
        elif isinstance(action, Draw):
            self.car.draw(self.now(), action.current_a, action.voltage_v)
        else:
            if self._connection is not None:
                self._connection.close()
            self._done.set()
