"""Test CSMSs on loopback: one built on the `ocpp` package, one that speaks raw frames;
and a TLS endpoint in front of a CSMS that serves, handshake by handshake, the
certificate and TLS versions a test asks for (the OCTT's TLS Test System)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import websockets
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response


@dataclass
class CsmsState:
    boot_status: str = "Accepted"
    boot_gate: asyncio.Event | None = None  # when given, BootNotification waits for it
    interval: int = 1
    authorize_status: str = "Accepted"
    # idTokenInfo per idToken for AuthorizeResponses (default: {"status": authorize_status})
    token_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    # idTokenInfo.status in TransactionEventResponses to events with an idToken (None: none)
    transaction_token_status: str | None = None
    # idTokenInfo per idToken in TransactionEventResponses (before transaction_token_status)
    transaction_token_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    reject_transaction_events: int = 0  # answer so many with a CALLERROR
    unanswered_transaction_events: int = 0  # leave so many without any answer
    refuse_connections: int = 0  # answer so many WebSocket handshakes 503
    name: str = "csms"
    # (name of the CSMS, outcome) of each handshake (CSMSs may share the list)
    connection_log: list[tuple[str, str]] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    connections: list[ServerConnection] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)  # where each connection came in
    stations: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # the CSMS's clock, for currentTime in Boot and Heartbeat answers (a rig moves it)
    wall_clock: Callable[[], float] = time.time

    def now(self) -> str:
        return now(datetime.fromtimestamp(self.wall_clock(), UTC))

    def note(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))
        self.changed.set()

    def attempted(self, endpoint: str, outcome: str) -> None:
        """A WebSocket handshake at `endpoint`: "accepted", "refused" or "unanswered"."""
        self.connection_log.append((endpoint, outcome))
        self.changed.set()

    def actions(self) -> list[str]:
        return [action for action, _ in self.received]

    async def wait_for(self, action: str, count: int = 1, timeout_s: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                matching = [p for a, p in self.received if a == action]
                if len(matching) >= count:
                    return matching[count - 1]
                self.changed.clear()
                await self.changed.wait()


def now(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _StationHandler(ChargePoint):
    def __init__(self, identity: str, ws: ServerConnection, state: CsmsState) -> None:
        super().__init__(identity, ws)
        self.state = state

    async def route_message(self, raw_msg: str | bytes) -> None:
        # A CSMS that never answers, rather than one that answers late: the
        # package handles one message at a time, so a late answer would hold
        # back the station's retries too.
        frame = json.loads(raw_msg)
        unanswered = self.state.unanswered_transaction_events
        if unanswered and frame[0] == 2 and frame[2] == "TransactionEvent":
            self.state.unanswered_transaction_events -= 1
            self.state.note("TransactionEvent", camel_to_snake_case(frame[3]))
            return
        await super().route_message(raw_msg)

    @on("BootNotification")
    async def on_boot(self, **payload: Any) -> Any:
        self.state.note("BootNotification", payload)
        if self.state.boot_gate is not None:
            await self.state.boot_gate.wait()
        return call_result.BootNotification(
            current_time=self.state.now(),
            interval=self.state.interval,
            status=self.state.boot_status,
        )

    @on("Heartbeat")
    async def on_heartbeat(self, **payload: Any) -> Any:
        self.state.note("Heartbeat", payload)
        return call_result.Heartbeat(current_time=self.state.now())

    @on("StatusNotification")
    async def on_status(self, **payload: Any) -> Any:
        self.state.note("StatusNotification", payload)
        return call_result.StatusNotification()

    @on("TransactionEvent")
    async def on_transaction_event(self, **payload: Any) -> Any:
        self.state.note("TransactionEvent", payload)
        if self.state.reject_transaction_events:
            self.state.reject_transaction_events -= 1
            raise InternalError(description="rejected by the test CSMS")
        token = (payload.get("id_token") or {}).get("id_token")
        if token in self.state.transaction_token_info:
            return call_result.TransactionEvent(
                id_token_info=self.state.transaction_token_info[token]
            )
        if self.state.transaction_token_status and payload.get("id_token"):
            return call_result.TransactionEvent(
                id_token_info={"status": self.state.transaction_token_status}
            )
        return call_result.TransactionEvent()

    @on("DataTransfer")
    async def on_data_transfer(self, **payload: Any) -> Any:
        self.state.note("DataTransfer", payload)
        return call_result.DataTransfer(status="Accepted", data={"echo": payload.get("data")})

    @on("NotifyReport")
    async def on_notify_report(self, **payload: Any) -> Any:
        self.state.note("NotifyReport", payload)
        return call_result.NotifyReport()

    @on("NotifyEvent")
    async def on_notify_event(self, **payload: Any) -> Any:
        self.state.note("NotifyEvent", payload)
        return call_result.NotifyEvent()

    @on("LogStatusNotification")
    async def on_log_status(self, **payload: Any) -> Any:
        self.state.note("LogStatusNotification", payload)
        return call_result.LogStatusNotification()

    @on("FirmwareStatusNotification")
    async def on_firmware_status(self, **payload: Any) -> Any:
        self.state.note("FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()

    @on("SecurityEventNotification")
    async def on_security_event(self, **payload: Any) -> Any:
        self.state.note("SecurityEventNotification", payload)
        return call_result.SecurityEventNotification()

    @on("MeterValues")
    async def on_meter_values(self, **payload: Any) -> Any:
        self.state.note("MeterValues", payload)
        return call_result.MeterValues()

    @on("Authorize")
    async def on_authorize(self, **payload: Any) -> Any:
        self.state.note("Authorize", payload)
        token = payload["id_token"]["id_token"]
        info = self.state.token_info.get(token, {"status": self.state.authorize_status})
        return call_result.Authorize(id_token_info=info)


@dataclass
class Endpoint:
    """Another address of the same CSMS (the OCTT's second TS endpoint): its own name in
    the connection log and its own way of (not) taking connections; what comes through
    it lands in the same CsmsState."""

    name: str
    refuse_connections: int = 0  # answer so many WebSocket handshakes 503
    silent: bool = False  # answer no handshake at all (the station's open timeout ends it)
    url: str = ""


@asynccontextmanager
async def ocpp_csms(
    state: CsmsState,
    port: int = 0,
    tls: ssl.SSLContext | None = None,
    endpoint: Endpoint | None = None,
) -> AsyncIterator[str]:
    """Serves on a free loopback port; yields the CSMS URL (without the station id).
    `endpoint`: serve `state` as that endpoint (several may share one state); without
    one, the state's own name and refuse_connections count."""

    async def handler(ws: ServerConnection) -> None:
        state.connections.append(ws)
        state.endpoints.append(endpoint.name if endpoint else state.name)
        state.headers.append(dict(ws.request.headers) if ws.request else {})
        identity = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        station = _StationHandler(identity, ws, state)
        state.stations.append(station)
        with suppress(websockets.ConnectionClosed):
            await station.start()

    async def admit(connection: ServerConnection, request: Request) -> Response | None:
        name = endpoint.name if endpoint else state.name
        refusing: CsmsState | Endpoint = endpoint if endpoint else state
        if endpoint is not None and endpoint.silent:
            state.attempted(name, "unanswered")
            await connection.wait_closed()  # until the station gives up
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "no answer\n")
        if refusing.refuse_connections > 0:
            refusing.refuse_connections -= 1
            state.attempted(name, "refused")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refused by the test\n")
        state.attempted(name, "accepted")
        return None

    async with websockets.serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp2.0.1"],
        ssl=tls,
        process_request=admit,
        open_timeout=None,  # a silent endpoint waits for the station to give up
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        url = f"{'wss' if tls else 'ws'}://127.0.0.1:{bound}/ocpp"
        if endpoint is not None:
            endpoint.url = url
        yield url


# ---------------------------------------------------------------- the TLS endpoint


@dataclass
class Handshake:
    """One TLS handshake at the TLS endpoint, as the server saw it."""

    mode: str  # the server context it was served with
    completed: bool
    error: str  # why it failed; "" when it completed
    version: str | None  # "TLSv1.2", "TLSv1.3"
    cipher: str | None  # the suite agreed on
    offered: list[str]  # the client's suites the server has too (OpenSSL names)
    client_certificate: dict[str, Any] | None  # the verified peer certificate (profile 3)
    at: float  # loop time


@dataclass
class TlsFront:
    """A TLS endpoint that terminates each connection with the server context of the
    moment and relays what it decrypts to a plain CSMS (`backend`): the next handshakes
    take their mode from `plan`, in order, then `default`. A failed handshake ends
    with the alert OpenSSL made for it (a server limited to TLS 1.1 answers a TLS 1.2
    ClientHello with protocol_version), which the asyncio TLS transport would not send."""

    contexts: dict[str, ssl.SSLContext]
    backend: tuple[str, int]
    default: str = "valid"
    plan: list[str] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def wait_handshakes(self, count: int, timeout_s: float = 10) -> list[Handshake]:
        """Real time: until `count` handshakes were made (or failed)."""
        async with asyncio.timeout(timeout_s):
            while len(self.handshakes) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.handshakes

    def _record(self, handshake: Handshake) -> None:
        self.handshakes.append(handshake)
        self.changed.set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            tls = await self._handshake(reader, writer)
            if tls is not None:
                await self._relay(reader, writer, *tls)
        except (OSError, ssl.SSLError, EOFError):
            pass
        except asyncio.CancelledError:  # the endpoint closes: the connection task ends
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None:
        mode = self.plan.pop(0) if self.plan else self.default
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.contexts[mode].wrap_bio(incoming, outgoing, server_side=True)
        now = asyncio.get_running_loop().time
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                data = await reader.read(65536)
                if not data:
                    self._record(
                        Handshake(mode, False, "closed by the client", None, None, [], None, now())
                    )
                    return None
                incoming.write(data)
                continue
            except ssl.SSLError as exc:
                writer.write(outgoing.read())  # the alert
                await writer.drain()
                self._record(Handshake(mode, False, str(exc), None, None, [], None, now()))
                return None
            break
        writer.write(outgoing.read())
        cipher = tls.cipher()
        self._record(
            Handshake(
                mode,
                True,
                "",
                tls.version(),
                cipher[0] if cipher else None,
                [c[0] for c in tls.shared_ciphers() or []],
                tls.getpeercert() or None,
                now(),
            )
        )
        return tls, incoming, outgoing

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        back_reader, back_writer = await asyncio.open_connection(*self.backend)

        async def up() -> None:  # the station's bytes, decrypted, to the CSMS
            try:
                while True:
                    # what the handshake's last read brought along is in `incoming` already
                    while True:
                        try:
                            chunk = tls.read(65536)
                        except ssl.SSLWantReadError:
                            break
                        if not chunk:  # close_notify
                            return
                        back_writer.write(chunk)
                    writer.write(outgoing.read())
                    await back_writer.drain()
                    data = await reader.read(65536)
                    if not data:
                        return
                    incoming.write(data)
            except (OSError, ssl.SSLError):
                pass
            finally:
                back_writer.close()

        async def down() -> None:  # the CSMS's bytes, encrypted, to the station
            try:
                while data := await back_reader.read(65536):
                    tls.write(data)
                    writer.write(outgoing.read())
                    await writer.drain()
                with suppress(ssl.SSLError):
                    tls.unwrap()  # close_notify
                writer.write(outgoing.read())
            except (OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        await asyncio.gather(up(), down())


@asynccontextmanager
async def tls_front(
    contexts: dict[str, ssl.SSLContext], backend_url: str, host: str = "localhost"
) -> AsyncIterator[TlsFront]:
    """The TLS endpoint on a free loopback port, relaying to the plain CSMS at
    `backend_url` (ws://127.0.0.1:port/...); its `url` names `host` (the name the
    server certificate is for)."""
    backend_port = int(backend_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    front = TlsFront(contexts, ("127.0.0.1", backend_port))
    server = await asyncio.start_server(front._connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    front.url = f"wss://{host}:{port}/ocpp"
    try:
        yield front
    finally:
        server.close()
        for writer in front._writers:
            writer.close()
        if front._tasks:
            await asyncio.wait(front._tasks, timeout=1)
        for task in list(front._tasks):
            task.cancel()
        if front._tasks:
            await asyncio.wait(front._tasks, timeout=5)
        await server.wait_closed()


@dataclass
class RawCsms:
    """Answers BootNotification and the station's CALLs, and lets a test send raw frames."""

    url: str = ""
    replies: asyncio.Queue[list[Any]] = field(default_factory=asyncio.Queue)
    booted: asyncio.Event = field(default_factory=asyncio.Event)
    ws: ServerConnection | None = None

    async def send(self, frame: str) -> list[Any]:
        assert self.ws is not None
        await self.ws.send(frame)
        return await asyncio.wait_for(self.replies.get(), 5)


@asynccontextmanager
async def raw_csms() -> AsyncIterator[RawCsms]:
    csms = RawCsms()

    async def handler(ws: ServerConnection) -> None:
        csms.ws = ws
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] == 2:  # the station's CALL: accept whatever it is
                payload: dict[str, Any] = {}
                if frame[2] == "BootNotification":
                    payload = {"currentTime": now(), "interval": 300, "status": "Accepted"}
                    csms.booted.set()
                elif frame[2] == "Heartbeat":
                    payload = {"currentTime": now()}
                await ws.send(json.dumps([3, frame[1], payload]))
            else:
                await csms.replies.put(frame)

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        csms.url = f"ws://127.0.0.1:{port}/ocpp"
        yield csms
