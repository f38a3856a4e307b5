"""OCPP 2.0.1 client: the station's link to the CSMS, meeting the CS only on the bus.

This first part covers the connection (OCPP-J over WebSocket, subprotocol ocpp2.0.1,
HTTP Basic authentication of security profile 1, reconnect with the RetryBackOff
randomisation), provisioning's BootNotification with Accepted/Pending/Rejected (B01-B03),
Heartbeat (G02), StatusNotification per connector from the CS's `cp_status` (G01), and
Authorize for the `authorization` requests of the CS (C01), with `websocket_status` on
the bus.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from charger import api
from charger.api import Message
from charger.bus import Bus
from charger.log import event
from charger.protocols.ocpp.session import CallRejected, CallTimeout, Session

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp2.0.1"
TOPIC = "josev/cs"
DEFAULT_BOOT_RETRY_S = 30.0  # when the CSMS gives interval 0 with Pending/Rejected

# Josev token types -> OCPP IdTokenEnumType
TOKEN_TYPES = {
    "ISO14443": "ISO14443",
    "ISO15693": "ISO15693",
    "key_code": "KeyCode",
    "local": "Local",
    "mac_address": "MacAddress",
    "e_maid": "eMAID",
    "central": "Central",
    "no_authorization": "NoAuthorization",
}


@dataclass(frozen=True, slots=True)
class Connector:
    evse_id: str  # the Josev API's string EVSE id
    ocpp_evse_id: int
    connector_id: int


@dataclass(frozen=True, slots=True)
class OcppSettings:
    csms_url: str
    identity: str
    basic_auth_password: str
    vendor: str
    model: str
    serial_number: str
    firmware_version: str
    connectors: tuple[Connector, ...]
    security_profile: int = 1
    answer_authorization: bool = True  # OCPP decides the CS's authorization requests
    call_timeout_s: float = 30.0  # OCPPCommCtrlr.MessageTimeout
    heartbeat_interval_s: float = 300.0  # until the CSMS sets one
    ping_interval_s: float = 30.0  # OCPPCommCtrlr.WebSocketPingInterval
    retry_wait_minimum_s: float = 1.0  # OCPPCommCtrlr.RetryBackOffWaitMinimum
    retry_random_range_s: float = 2.0  # OCPPCommCtrlr.RetryBackOffRandomRange
    retry_repeat_times: int = 5  # OCPPCommCtrlr.RetryBackOffRepeatTimes


def connector_status(cp_state: str) -> str:
    """OCPP ConnectorStatusEnumType for an IEC 61851 state."""
    letter = cp_state[:1]
    if letter == "A":
        return "Available"
    if letter in "EF":
        return "Faulted"
    return "Occupied"


def reconnect_delays(settings: OcppSettings, rng: random.Random) -> list[float]:
    """B04/B10: wait doubles from RetryBackOffWaitMinimum for RetryBackOffRepeatTimes tries,
    then stays; each wait gets a random 0..RetryBackOffRandomRange added."""
    return [
        settings.retry_wait_minimum_s * 2 ** min(i, settings.retry_repeat_times)
        + rng.uniform(0, settings.retry_random_range_s)
        for i in range(settings.retry_repeat_times + 1)
    ]


class OcppClient:
    def __init__(
        self,
        bus: Bus,
        settings: OcppSettings,
        *,
        rng: random.Random | None = None,
        connect: Callable[..., Any] = websockets.connect,
    ) -> None:
        self._bus = bus
        self._s = settings
        self._rng = rng or random.Random()
        self._connect = connect
        self._session: Session | None = None
        self.registered = False  # BootNotification accepted on this connection
        self.clock_offset_s = 0.0  # CSMS time minus ours, from Boot and Heartbeat
        self._connector_status: dict[tuple[int, int], str] = {
            (c.ocpp_evse_id, c.connector_id): "Available" for c in settings.connectors
        }
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ bus

    def start(self) -> None:
        self._bus.subscribe(
            "cs/josev",
            self._on_cs_message,
            names={"cp_status", "authorization", "websocket_status"},
        )
        self._publish_ws_status(connected=False)

    def _on_cs_message(self, message: Message) -> None:
        if message.name == "cp_status":
            self._on_cp_status(message)
        elif message.name == "websocket_status" and message.type == "request":
            self._bus.publish(message.reply(self._ws_status_data()))
        elif (
            message.name == "authorization"
            and message.type == "request"
            and self._s.answer_authorization
        ):
            self._spawn(self._authorize(message))

    def _ws_status_data(self) -> api.WebsocketStatus:
        if self._session is None:
            return {"status": "disconnected"}
        return {
            "status": "connected",
            "identity": self._s.identity,
            "csms_url": self._s.csms_url,
            "security_profile": self._s.security_profile,
        }

    def _publish_ws_status(self, *, connected: bool) -> None:
        data = self._ws_status_data() if connected else {"status": "disconnected"}
        self._bus.publish(api.update("websocket_status", TOPIC, data))

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connects, boots, serves; reconnects with the RetryBackOff schedule."""
        failures = 0
        while True:
            try:
                await self._connection()
                failures = 0
            except (
                OSError,
                TimeoutError,
                websockets.InvalidHandshake,
                websockets.ConnectionClosed,
            ) as exc:
                event(
                    log,
                    logging.WARNING,
                    "ocpp_disconnected",
                    url=self._s.csms_url,
                    error=str(exc) or type(exc).__name__,
                )
            self._session = None
            self.registered = False
            self._publish_ws_status(connected=False)
            delays = reconnect_delays(self._s, self._rng)
            delay = delays[min(failures, len(delays) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    def _url(self) -> str:
        return self._s.csms_url.rstrip("/") + "/" + self._s.identity

    async def _connection(self) -> None:
        headers = {}
        if self._s.security_profile in (1, 2):
            token = f"{self._s.identity}:{self._s.basic_auth_password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        async with self._connect(
            self._url(),
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=self._s.call_timeout_s,
            ping_interval=self._s.ping_interval_s,
            ping_timeout=self._s.call_timeout_s,
        ) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                raise websockets.InvalidHandshake(
                    f"the CSMS did not accept subprotocol {SUBPROTOCOL} (got {ws.subprotocol})"
                )
            await self._serve(ws)

    async def _serve(self, ws: ClientConnection) -> None:
        session = Session(ws, self._handlers(), call_timeout_s=self._s.call_timeout_s)
        self._session = session
        event(log, logging.INFO, "ocpp_connected", url=self._url())
        self._publish_ws_status(connected=True)
        reader = asyncio.create_task(session.serve())
        work = asyncio.create_task(self._boot_and_heartbeat(session))
        try:
            done, _ = await asyncio.wait({reader, work}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raises ConnectionClosed and friends
        finally:
            for task in (reader, work):
                task.cancel()
            await asyncio.gather(reader, work, return_exceptions=True)

    def _handlers(self) -> dict[str, Any]:
        return {}  # CSMS-initiated messages come with the next parts of the OCPP issue

    # ------------------------------------------------------------------ provisioning

    async def _boot_and_heartbeat(self, session: Session) -> None:
        interval = await self._boot(session)
        self.registered = True
        for (evse, connector), status in sorted(self._connector_status.items()):
            await self._status_notification(session, evse, connector, status)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(CallTimeout, CallRejected):
                reply = await session.call("Heartbeat", {})
                self._sync_clock(reply["currentTime"])

    async def _boot(self, session: Session) -> float:
        """B01-B03: repeats BootNotification until Accepted; returns the heartbeat interval."""
        while True:
            try:
                reply = await session.call(
                    "BootNotification",
                    {
                        "reason": "PowerUp",
                        "chargingStation": {
                            "model": self._s.model[:20],
                            "vendorName": self._s.vendor[:50],
                            "serialNumber": self._s.serial_number[:25],
                            "firmwareVersion": self._s.firmware_version[:50],
                        },
                    },
                )
            except (CallTimeout, CallRejected):
                await asyncio.sleep(DEFAULT_BOOT_RETRY_S)
                continue
            self._sync_clock(reply["currentTime"])
            interval = float(reply["interval"])
            event(log, logging.INFO, "ocpp_boot", status=reply["status"], interval_s=interval)
            if reply["status"] == "Accepted":
                return interval if interval > 0 else self._s.heartbeat_interval_s
            # Pending or Rejected: send nothing else, try again after the interval
            await asyncio.sleep(interval if interval > 0 else DEFAULT_BOOT_RETRY_S)

    def _sync_clock(self, csms_time: str) -> None:
        theirs = datetime.fromisoformat(csms_time.replace("Z", "+00:00"))
        self.clock_offset_s = (theirs - datetime.now(UTC)).total_seconds()

    # ------------------------------------------------------------------ availability

    def _on_cp_status(self, message: Message) -> None:
        connector = next(
            (c for c in self._s.connectors if c.evse_id == message.data["evse_id"]), None
        )
        if connector is None:
            return
        key = (connector.ocpp_evse_id, connector.connector_id)
        status = connector_status(str(message.data["state"]))
        if self._connector_status.get(key) == status:
            return
        self._connector_status[key] = status
        session = self._session
        if session is not None and self.registered:
            self._spawn(self._status_notification(session, *key, status))

    async def _status_notification(
        self, session: Session, evse: int, connector: int, status: str
    ) -> None:
        with contextlib.suppress(CallTimeout, CallRejected):
            await session.call(
                "StatusNotification",
                {
                    "timestamp": api.timestamp(),
                    "connectorStatus": status,
                    "evseId": evse,
                    "connectorId": connector,
                },
            )

    # ------------------------------------------------------------------ authorization

    async def _authorize(self, message: Message) -> None:
        token_type = str(message.data["token_type"])
        status = "rejected"
        if token_type == "no_authorization":
            status = "accepted"  # Josev API 1.6(4): free charging is accepted at once
        elif self._session is not None and self.registered:
            id_token = {
                "idToken": message.data.get("id_token", ""),
                "type": TOKEN_TYPES.get(token_type, "Local"),
            }
            try:
                reply = await self._session.call("Authorize", {"idToken": id_token})
                if reply["idTokenInfo"]["status"] == "Accepted":
                    status = "accepted"
            except (CallTimeout, CallRejected) as exc:
                event(log, logging.WARNING, "ocpp_authorize_failed", error=str(exc))
        self._bus.publish(message.reply({"status": status}))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
