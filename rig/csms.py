"""Test CSMSs on loopback: one built on the `ocpp` package, one that speaks raw frames."""

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
    # the name of the CSMS at each handshake, accepted or refused (CSMSs may share it)
    connection_log: list[str] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    connections: list[ServerConnection] = field(default_factory=list)
    stations: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # the CSMS's clock, for currentTime in Boot and Heartbeat answers (a rig moves it)
    wall_clock: Callable[[], float] = time.time

    def now(self) -> str:
        return now(datetime.fromtimestamp(self.wall_clock(), UTC))

    def note(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))
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


@asynccontextmanager
async def ocpp_csms(
    state: CsmsState, port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Serves on a free loopback port; yields the CSMS URL (without the station id)."""

    async def handler(ws: ServerConnection) -> None:
        state.connections.append(ws)
        state.headers.append(dict(ws.request.headers) if ws.request else {})
        identity = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        station = _StationHandler(identity, ws, state)
        state.stations.append(station)
        with suppress(websockets.ConnectionClosed):
            await station.start()

    def refuse(connection: ServerConnection, request: Request) -> Response | None:
        state.connection_log.append(state.name)
        if state.refuse_connections > 0:
            state.refuse_connections -= 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refused by the test\n")
        return None

    async with websockets.serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp2.0.1"],
        ssl=tls,
        process_request=refuse,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        yield f"{'wss' if tls else 'ws'}://127.0.0.1:{bound}/ocpp"


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
