"""OCPP 2.0.1 client: the station's link to the CSMS, meeting the CS only on the bus.

This first part covers the connection (OCPP-J over WebSocket, subprotocol ocpp2.0.1,
HTTP Basic authentication of security profile 1, reconnect with the RetryBackOff
randomisation), provisioning's BootNotification with Accepted/Pending/Rejected (B01-B03),
Heartbeat (G02), StatusNotification per connector from the CS's `cp_status` (G01),
Authorize for the CS's `authorization` requests (C01), transactions (E01-E14) built from
what the CS reports and sent through the durable outbox, and remote start/stop
(F01-F03), with `websocket_status` on the bus.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from charger import api
from charger.api import Message
from charger.bus import Bus
from charger.log import event
from charger.protocols.ocpp.auth_cache import AuthCache
from charger.protocols.ocpp.authorization import Authorizer, group_of
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.local_list import LocalList
from charger.protocols.ocpp.measurands import sampled_values
from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.outbox import Outbox
from charger.protocols.ocpp.remote import RemoteOperations
from charger.protocols.ocpp.rpc import RpcError
from charger.protocols.ocpp.session import CallRejected, CallTimeout, Session
from charger.protocols.ocpp.tls import security_event
from charger.protocols.ocpp.transactions import TransactionManager, TxSettings
from charger.state.store import Store
from charger.tasks import spawn, wait_event

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

SUBPROTOCOL = "ocpp2.0.1"
TOPIC = "josev/cs"
DEFAULT_BOOT_RETRY_S = 30.0  # when the CSMS gives interval 0 with Pending/Rejected
_DATA_TRANSFER_TO_JOSEV = {
    "Accepted": "accepted",
    "Rejected": "rejected",
    "UnknownMessageId": "unknown_message_id",
    "UnknownVendorId": "unknown_vendor_id",
}

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
    connector_type: str = "cType2"
    phases: int = 3
    max_power_w: float = 11040.0  # the EVSE's rating: 16 A on three phases of 230 V


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
    ping_interval_s: float = 30.0  # OCPPCommCtrlr.WebSocketPingInterval
    # initial values of device model variables (whole seconds there); the device model
    # governs from then on, and the CSMS may change them
    retry_wait_minimum_s: float = 1.0  # OCPPCommCtrlr.RetryBackOffWaitMinimum
    retry_random_range_s: float = 2.0  # OCPPCommCtrlr.RetryBackOffRandomRange
    retry_repeat_times: int = 5  # OCPPCommCtrlr.RetryBackOffRepeatTimes
    message_attempts_tx: int = 3  # OCPPCommCtrlr.MessageAttempts (TransactionEvent)
    message_attempt_interval_tx_s: float = 10.0  # OCPPCommCtrlr.MessageAttemptInterval
    tx_updated_interval_s: float = 60.0  # SampledDataCtrlr.TxUpdatedInterval
    tls: ssl.SSLContext | None = None  # security profiles 2 and 3 (wss://)
    # TLS for another security profile (a NetworkConnectionProfile the CSMS sets, A05);
    # raises when the certificates for it are missing
    tls_factory: Callable[[int], ssl.SSLContext] | None = None


def build_device_model(settings: OcppSettings, store: Store | None = None) -> DeviceModel:
    values = {
        "call_timeout_s": str(int(settings.call_timeout_s)),
        "message_attempts_tx": str(settings.message_attempts_tx),
        "message_attempt_interval_tx_s": str(int(settings.message_attempt_interval_tx_s)),
        "retry_random_range_s": str(int(settings.retry_random_range_s)),
        "retry_repeat_times": str(settings.retry_repeat_times),
        "retry_wait_minimum_s": str(int(settings.retry_wait_minimum_s)),
        "ping_interval_s": str(int(settings.ping_interval_s)),
        "tx_updated_interval_s": str(int(settings.tx_updated_interval_s)),
        "basic_auth_password": settings.basic_auth_password,
        "identity": settings.identity,
        "vendor": settings.vendor,
        "model": settings.model,
        "security_profile": str(settings.security_profile),
    }
    evses = [
        (c.ocpp_evse_id, c.connector_id, c.connector_type, c.phases, c.max_power_w)
        for c in settings.connectors
    ]
    return DeviceModel.build(values, evses, store)


def connector_status(cp_state: str) -> str:
    """OCPP ConnectorStatusEnumType for an IEC 61851 state."""
    letter = cp_state[:1]
    if letter == "A":
        return "Available"
    if letter in "EF":
        return "Faulted"
    return "Occupied"


_STATION_STATE = "ocpp_station_state"
_CHARGING_PROFILES = "ocpp_charging_profiles"
MIN_RETRY_WAIT_S = 0.05  # a RetryBackOffWaitMinimum of 0 must not become a busy loop


def reconnect_delays(
    wait_minimum_s: float, random_range_s: float, repeat_times: int, rng: random.Random
) -> list[float]:
    """B04/B10: the wait doubles from RetryBackOffWaitMinimum for RetryBackOffRepeatTimes
    tries, then stays; each wait gets a random 0..RetryBackOffRandomRange added."""
    return [
        max(MIN_RETRY_WAIT_S, wait_minimum_s * 2 ** min(i, repeat_times))
        + rng.uniform(0, random_range_s)
        for i in range(repeat_times + 1)
    ]


class OcppClient:
    def __init__(
        self,
        bus: Bus,
        settings: OcppSettings,
        outbox: Outbox,
        *,
        rng: random.Random | None = None,
        connect: Callable[..., Any] = websockets.connect,
        device_model: DeviceModel | None = None,
        local_list: LocalList | None = None,
        auth_cache: AuthCache | None = None,
        network_profiles: NetworkProfiles | None = None,
        state_store: Store | None = None,
    ) -> None:
        self._bus = bus
        self._s = settings
        self._outbox = outbox
        self._rng = rng or random.Random()
        self._connect = connect
        self._session: Session | None = None
        self.registered = False  # BootNotification accepted on this connection
        self._boot_status: str | None = None  # the last BootNotification answer's status
        self.clock_offset_s = 0.0  # CSMS time minus ours, from Boot and Heartbeat
        self._connector_status: dict[tuple[int, int], str] = {
            (c.ocpp_evse_id, c.connector_id): "Available" for c in settings.connectors
        }
        self.tx = TransactionManager(
            TxSettings(),  # replaced from the device model's TxCtrlr at run()
            [(c.ocpp_evse_id, c.connector_id) for c in settings.connectors],
            now=self._timestamp,
        )
        self._writes: asyncio.Queue[tuple[int, dict[str, Any], dict[str, Any]]]
        self._writes = asyncio.Queue()
        self._last_periodic: dict[int, float] = {}
        self._unsettled: set[int] = set()
        self._answered: set[int] = set()  # outbox entries answered, deletion in progress
        self._unavailable: set[int] = set()  # EVSEs made inoperative by the CSMS
        self._cp_states: dict[int, str] = {}
        self._reported: dict[tuple[int, int], str] = {}  # statuses the CSMS acknowledged
        self._event_id = 0  # NotifyEvent eventId
        self._offline_since: float | None = None  # monotonic time the connection was lost
        self._reported_to: NetworkProfile | None = None  # the CSMS _reported refers to
        self._state = state_store  # what must survive a reset: availability, boot reason
        self._state_lock = asyncio.Lock()
        self.charging_profiles: dict[int, dict[str, Any]] = {}  # TxProfile per EVSE (F01)
        self._boot_reason = "PowerUp"  # this boot's
        self._next_boot_reason: str | None = None  # the next boot's, when not a power-up
        self._remote = RemoteOperations(bus, self, settings.call_timeout_s)
        self.dm = device_model if device_model is not None else build_device_model(settings)
        self._dm_changed = asyncio.Event()
        self.local_list = local_list if local_list is not None else LocalList(None)
        self.auth_cache = auth_cache if auth_cache is not None else AuthCache(None)
        self.authorizer = Authorizer(self.dm, self.local_list, self.auth_cache)
        self._groups: dict[int, dict[str, Any] | None] = {}  # groupIdToken of each EVSE's tx
        self._authorizations: dict[int, int] = {}  # per EVSE: how many so far (timeouts)
        # EVSEs whose transaction's idToken the CSMS refused, StopTxOnInvalidId false:
        # charging goes on up to MaxEnergyOnInvalidId (C12.FR.04, E05)
        self._invalid_token: set[int] = set()
        configured = NetworkProfile(1, settings.csms_url, settings.security_profile)
        self.networks = network_profiles or NetworkProfiles(None, configured)
        self._profile = configured  # the profile of the current or last connection
        self.dm.checks[("OCPPCommCtrlr", "NetworkConfigurationPriority")] = (
            self.networks.check_priority
        )
        self._loaded = asyncio.Event()  # device model and local list read from disk
        self._meters: dict[int, dict[str, Any]] = {}  # last meter_values data per EVSE
        self._dm_listeners: list[asyncio.Event] = []
        self.tx.sampler = self._sample
        self.tx.ended_values = self._take_ended_values
        self.monotonic = time.monotonic  # the clock of sampling intervals (tests set it)
        self.wall_clock = time.time  # the clock clock-aligned TxEnded samples follow
        # TxEndedInterval / AlignedDataCtrlr.TxEndedInterval samples of each EVSE's tx:
        # (meter values, monotonic time of the last periodic one, last clock slot)
        self._ended: dict[int, tuple[list[dict[str, Any]], float, int]] = {}

    # ------------------------------------------------------------------ bus

    def start(self) -> None:
        self._bus.subscribe(
            "cs/josev",
            self._on_cs_message,
            names={
                "cp_status",
                "authorization",
                "websocket_status",
                "cs_contactor_status",
                "meter_values",
                "data_transfer",
            },
        )
        self._publish_ws_status(connected=False)

    def _connector(self, evse_id: object) -> Connector | None:
        return next((c for c in self._s.connectors if c.evse_id == evse_id), None)

    def _on_cs_message(self, message: Message) -> None:
        connector = self._connector(message.data.get("evse_id"))
        if connector is not None and message.type == "update":
            evse = connector.ocpp_evse_id
            if message.name == "cp_status":
                self._emit(evse, self.tx.cp_state(evse, str(message.data["state"])))
                self._on_cp_status(connector, str(message.data["state"]))
                self._settle_soon(evse)
            elif message.name == "cs_contactor_status" and message.data["status"] != "error":
                self._emit(evse, self.tx.power_path(evse, message.data["status"] == "closed"))
                self._settle_soon(evse)
            elif message.name == "meter_values":
                self._meters[evse] = dict(message.data)
                self._on_meter(evse, float(message.data["total_active_energy_imported"]))
                self._limit_invalid_energy(connector)
        elif message.name == "websocket_status" and message.type == "request":
            self._bus.publish(message.reply(self._ws_status_data()))
        elif message.name == "data_transfer" and message.type == "request":
            spawn(self._data_transfer_to_csms(message), "ocpp data transfer")
        elif (
            message.name == "authorization"
            and message.type == "request"
            and self._s.answer_authorization
        ):
            spawn(self._authorize(message), "ocpp")

    def _ws_status_data(self) -> api.WebsocketStatus:
        if self._session is None:
            return {"status": "disconnected"}
        return {
            "status": "connected",
            "identity": self._s.identity,
            "csms_url": self._profile.url,
            "security_profile": self._s.security_profile,
        }

    def _publish_ws_status(self, *, connected: bool) -> None:
        data = self._ws_status_data() if connected else {"status": "disconnected"}
        self._bus.publish(api.update("websocket_status", TOPIC, data))

    # ------------------------------------------------------------------ transactions

    def _emit(self, evse: int, events: list[dict[str, Any]]) -> None:
        """Queues TransactionEvents for the writer, with the state each one leaves."""
        for payload in events:
            self._writes.put_nowait((evse, payload, self.tx.snapshot(evse)))
            if payload["eventType"] == "Ended":
                self._invalid_token.discard(evse)
                spawn(self._remote.transaction_ended(), "ocpp scheduled operations")

    async def _write_forever(self) -> None:
        """Commits queued events to the outbox one by one, in the order they happened."""
        while True:
            evse, payload, state = await self._writes.get()
            tx_id = payload["transactionInfo"]["transactionId"]
            if payload["eventType"] == "Ended":
                await self._outbox.put("TransactionEvent", payload, forget=tx_id)
            else:
                await self._outbox.put("TransactionEvent", payload, (tx_id, evse, state))

    def _sample(self, evse: int, which: str, context: str) -> list[dict[str, Any]]:
        """J01/J02: the configured measurands of the EVSE's last meter reading."""
        meter = self._meters.get(evse)
        if meter is None:
            return []
        variable = {
            "Started": ("SampledDataCtrlr", "TxStartedMeasurands"),
            "Ended": ("SampledDataCtrlr", "TxEndedMeasurands"),
            "Clock": ("AlignedDataCtrlr", "Measurands"),
        }.get(which, ("SampledDataCtrlr", "TxUpdatedMeasurands"))
        return sampled_values(meter, self.dm.members(*variable), context)

    async def _clock_aligned_forever(self) -> None:
        """J02: every AlignedDataCtrlr.Interval seconds, aligned to the wall clock."""
        changed = asyncio.Event()
        self._dm_listeners.append(changed)
        while True:
            interval = self.dm.integer("AlignedDataCtrlr", "Interval")
            changed.clear()
            wait = None if interval <= 0 else interval - time.time() % interval
            if await wait_event(changed, wait):
                continue  # the interval changed: start over
            for evse in self.evses():
                if self.tx.transaction_id(evse) is not None:
                    self._emit(evse, self.tx.clock(evse))
                elif self._session is not None and self.registered:
                    self._send_meter_values(self._session, evse, "Sample.Clock")

    def _settle_soon(self, evse: int) -> None:
        if evse not in self._unsettled:
            self._unsettled.add(evse)
            asyncio.get_running_loop().call_soon(self._settle, evse)

    def _settle(self, evse: int) -> None:
        self._unsettled.discard(evse)
        self._emit(evse, self.tx.settle(evse))

    def _on_meter(self, evse: int, energy_wh: float) -> None:
        now = self.monotonic()
        interval = self.dm.integer("SampledDataCtrlr", "TxUpdatedInterval")  # 0: none
        periodic = interval > 0 and now - self._last_periodic.get(evse, now) >= interval
        self._last_periodic.setdefault(evse, now)
        events = self.tx.meter(evse, energy_wh, periodic=periodic)
        if events:
            self._last_periodic[evse] = now
        self._emit(evse, events)
        if self.tx.transaction_id(evse) is not None:
            self._gather_ended_values(evse, now)

    def _gather_ended_values(self, evse: int, now: float) -> None:
        """Samples for the Ended event: every SampledDataCtrlr.TxEndedInterval seconds and
        at each boundary of AlignedDataCtrlr.TxEndedInterval on the wall clock (J01/J02)."""
        meter = self._meters.get(evse)
        if meter is None:
            return
        values, last, slot = self._ended.get(evse, ([], now, -1))

        def sample(component: str, context: str) -> None:
            measurands = self.dm.members(component, "TxEndedMeasurands")
            sampled = sampled_values(meter, measurands, context)
            if sampled:
                values.append({"timestamp": self._timestamp(), "sampledValue": sampled})

        periodic_s = self.dm.integer("SampledDataCtrlr", "TxEndedInterval")
        if periodic_s > 0 and now - last >= periodic_s:
            sample("SampledDataCtrlr", "Sample.Periodic")
            last = now
        aligned_s = self.dm.integer("AlignedDataCtrlr", "TxEndedInterval")
        if aligned_s > 0:
            current = int(self.wall_clock() // aligned_s)
            if slot >= 0 and current != slot:
                sample("AlignedDataCtrlr", "Sample.Clock")
            slot = current
        self._ended[evse] = (values, last, slot)

    def _take_ended_values(self, evse: int) -> list[dict[str, Any]]:
        values, _, _ = self._ended.pop(evse, ([], 0.0, -1))
        return values

    async def _restore(self) -> None:
        """After a reboot, transactions that were still open end with PowerLoss."""
        for tx_id, (evse, state) in (await self._outbox.transactions()).items():
            event(log, logging.WARNING, "ocpp_transaction_restored", transaction=tx_id)
            self._emit(evse, self.tx.restore(evse, tx_id, state))

    async def _send_outbox(self, session: Session) -> None:
        """E13: sends queued messages in order; an entry leaves only once answered."""
        while True:
            entry = await self._outbox.first()
            if entry is None:
                self._outbox.changed.clear()
                await self._outbox.changed.wait()
                continue
            try:
                reply = await session.call(entry.action, entry.payload)
            except (CallRejected, CallTimeout):
                # E13: a CALLERROR or no answer within the message timeout is a failed
                # attempt; a lost connection is not (the session ends before either)
                await self._outbox.attempted(entry.seq)
                attempts = self.dm.integer("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
                if entry.attempts + 1 >= attempts:
                    event(
                        log,
                        logging.ERROR,
                        "ocpp_message_dropped",
                        action=entry.action,
                        attempts=entry.attempts + 1,
                    )
                    await self._outbox.ack(entry.seq)
                else:
                    await asyncio.sleep(
                        self.dm.integer(
                            "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"
                        )
                        * (entry.attempts + 1)
                    )
                continue
            self._answered.add(entry.seq)  # at once: the CSMS may ask about it right now
            await self._outbox.ack(entry.seq)
            self._answered.discard(entry.seq)
            if entry.action == "TransactionEvent" and "idTokenInfo" in reply:
                await self._token_verdict(entry.payload, reply["idTokenInfo"])

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Restores, connects, boots, serves; reconnects with the RetryBackOff schedule.

        If any part fails, run() fails with it, so the supervisor logs it and starts
        again; what was restored from disk is restored only once per process.
        """
        if not self._loaded.is_set():
            await self.dm.load()
            await self.local_list.load()
            await self.auth_cache.load()
            await self.networks.load()
            await self._restore_station_state()
            self.dm.assign("LocalAuthListCtrlr", "Entries", str(len(self.local_list)))
            self._apply_device_model()
            await self._restore()
            await self._startup_security_event()
            self._loaded.set()
        parts = {
            asyncio.create_task(self._write_forever(), name="ocpp outbox writer"),
            asyncio.create_task(self._clock_aligned_forever(), name="ocpp aligned data"),
            asyncio.create_task(self._connect_forever(), name="ocpp connection"),
        }
        try:
            done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in parts:
                task.cancel()
            await asyncio.wait(parts, timeout=5.0)

    async def _connect_forever(self) -> None:
        """Connects by NetworkConfigurationPriority: NetworkProfileConnectionAttempts tries
        per profile (with the RetryBackOff schedule), then the next one (B10.FR.03/04)."""
        failures = attempts = index = 0
        while True:
            profiles = self.networks.ordered(
                self.dm.value("OCPPCommCtrlr", "NetworkConfigurationPriority")
            )
            profile = profiles[index % len(profiles)]
            try:
                await self._connection(profile)
                failures = attempts = 0
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
                    url=profile.url,
                    slot=profile.slot,
                    error=str(exc) or type(exc).__name__,
                )
                await self._security_event(exc)
            if self.registered and self._offline_since is None:
                self._offline_since = time.monotonic()
            self._session = None
            self.registered = False
            self.tx.online = False
            self._publish_ws_status(connected=False)
            attempts += 1
            if attempts >= max(
                1, self.dm.integer("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
            ):
                index, attempts = index + 1, 0
            delays = reconnect_delays(
                self.dm.integer("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
                self.dm.integer("OCPPCommCtrlr", "RetryBackOffRandomRange"),
                self.dm.integer("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
                self._rng,
            )
            delay = delays[min(failures, len(delays) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def _settle_profile(self, profile: NetworkProfile) -> None:
        """Booted over `profile`: it is the active one; a higher security profile is the
        new floor and the slots below it leave the priority list (A05.FR.05-07)."""
        self.dm.assign("OCPPCommCtrlr", "ActiveNetworkProfile", str(profile.slot))
        if profile.security_profile <= self.dm.integer("SecurityCtrlr", "SecurityProfile"):
            return
        await self.dm.save("SecurityCtrlr", "SecurityProfile", str(profile.security_profile))
        kept = [
            p.slot
            for p in self.networks.ordered(
                self.dm.value("OCPPCommCtrlr", "NetworkConfigurationPriority")
            )
            if p.security_profile >= profile.security_profile
        ]
        await self.dm.save(
            "OCPPCommCtrlr", "NetworkConfigurationPriority", ",".join(map(str, kept))
        )
        event(log, logging.INFO, "ocpp_security_upgraded", profile=profile.security_profile)

    async def _on_set_network_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B09: stores a connection profile in a slot (A05: never below the active level)."""
        problem = await self.networks.set(
            payload["configurationSlot"],
            payload["connectionData"],
            active=self._profile if self._session is not None else None,
            minimum_security=self.dm.integer("SecurityCtrlr", "SecurityProfile"),
            can_connect=self._can_connect,
        )
        if problem is None:
            return {"status": "Accepted"}
        event(log, logging.WARNING, "ocpp_network_profile_rejected", reason=problem)
        return {
            "status": "Rejected",
            "statusInfo": {"reasonCode": "InvalidValue", "additionalInfo": problem[:512]},
        }

    async def _security_event(self, error: BaseException) -> None:
        """A04: TLS failures become SecurityEventNotifications, queued durably."""
        kind = security_event(error)
        if kind is None:
            return
        event(log, logging.ERROR, "ocpp_security_event", type=kind, error=str(error))
        payload = {"type": kind, "timestamp": self._timestamp(), "techInfo": str(error)[:255]}
        await self._outbox.put("SecurityEventNotification", payload)

    async def _startup_security_event(self) -> None:
        """A04: every start of the firmware is a security event the CSMS hears of."""
        kind = "StartupOfTheDevice" if self._boot_reason == "PowerUp" else "ResetOrReboot"
        payload = {"type": kind, "timestamp": self._timestamp(), "techInfo": self._boot_reason}
        await self._outbox.put("SecurityEventNotification", payload)

    def _url(self, profile: NetworkProfile | None = None) -> str:
        return (profile or self._profile).url.rstrip("/") + "/" + self._s.identity

    def _tls(self, security_profile: int) -> ssl.SSLContext | None:
        """The TLS context for a security profile (None for profile 1); raises if none."""
        if security_profile < 2:
            return None
        if security_profile == self._s.security_profile and self._s.tls is not None:
            return self._s.tls
        if self._s.tls_factory is None:
            raise ValueError("no TLS configuration for this security profile")
        return self._s.tls_factory(security_profile)

    def _can_connect(self, security_profile: int) -> bool:
        try:
            self._tls(security_profile)
        except (ValueError, OSError):
            return False
        return True

    async def _connection(self, profile: NetworkProfile) -> None:
        self._profile = profile
        headers = {}
        if profile.security_profile in (1, 2):
            password = self.dm.value("SecurityCtrlr", "BasicAuthPassword")  # A01: may change
            token = f"{self._s.identity}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        async with self._connect(
            self._url(profile),
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=self._s.call_timeout_s,
            ssl=self._tls(profile.security_profile) if profile.url.startswith("wss://") else None,
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
        self._session, self._boot_status = session, None
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

    def _handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "RequestStartTransaction": self._on_request_start,
            "RequestStopTransaction": self._on_request_stop,
            "GetTransactionStatus": self._on_get_transaction_status,
            **self._remote.handlers(),
            "GetVariables": self._on_get_variables,
            "SetVariables": self._on_set_variables,
            "GetBaseReport": self._on_get_base_report,
            "GetReport": self._on_get_report,
            "SendLocalList": self._on_send_local_list,
            "GetLocalListVersion": self._on_get_local_list_version,
            "ClearCache": self._on_clear_cache,
            "SetNetworkProfile": self._on_set_network_profile,
        }
        return {action: self._unless_rejected(action, h) for action, h in handlers.items()}

    def _unless_rejected(self, action: str, handler: Handler) -> Handler:
        """B03 (TC_B_30): a station the CSMS rejected answers its calls SecurityError."""

        async def guarded(payload: dict[str, Any]) -> dict[str, Any]:
            if self._boot_status == "Rejected":
                raise RpcError(
                    "SecurityError",
                    f"{action}: refused, the CSMS rejected this station's BootNotification",
                )
            return await handler(payload)

        return guarded

    async def _on_send_local_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        """D01: full or differential update, versioned, persisted before the answer."""
        if self.dm.value("LocalAuthListCtrlr", "Enabled") != "true":
            return {"status": "Failed"}
        self._check_items(len(payload.get("localAuthorizationList", [])), None)
        status = await self.local_list.send(payload)
        self.dm.assign("LocalAuthListCtrlr", "Entries", str(len(self.local_list)))
        return {"status": status}

    async def _on_get_local_list_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        """D02: 0 when no list was ever sent (or the feature is off)."""
        enabled = self.dm.value("LocalAuthListCtrlr", "Enabled") == "true"
        return {"versionNumber": self.local_list.version if enabled else 0}

    async def _on_clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": await self.authorizer.clear_cache()}

    async def _token_verdict(self, payload: dict[str, Any], info: dict[str, Any]) -> None:
        """What the CSMS says about a transaction's idToken: cached (C10.FR.05); when it is
        not Accepted and StopTxOnInvalidId is set, the transaction is deauthorized (E06)."""
        await self.authorizer.remember(payload.get("idToken"), info)
        if info.get("status") == "Accepted":
            return
        tx_id = payload["transactionInfo"]["transactionId"]
        for c in self._s.connectors:
            if self.tx.transaction_id(c.ocpp_evse_id) != tx_id:
                continue
            if self.dm.value("TxCtrlr", "StopTxOnInvalidId") == "true":
                self._emit(c.ocpp_evse_id, self.tx.deauthorized(c.ocpp_evse_id))
                spawn(self._stop_charging(c.evse_id), "ocpp")
            else:
                self._invalid_token.add(c.ocpp_evse_id)
                self._limit_invalid_energy(c)

    def _limit_invalid_energy(self, connector: Connector) -> None:
        """The transaction stays, but the energy stops at MaxEnergyOnInvalidId Wh since
        its start (none set: at once): the CS stops charging, the EVSE suspends."""
        evse = connector.ocpp_evse_id
        if evse not in self._invalid_token:
            return
        limit = self.dm.integer("TxCtrlr", "MaxEnergyOnInvalidId")
        if self.tx.delivered_wh(evse) >= limit:
            self._invalid_token.discard(evse)
            event(log, logging.INFO, "ocpp_max_energy_on_invalid_id", evse=evse, wh=limit)
            spawn(self._stop_charging(connector.evse_id), "ocpp")

    # ------------------------------------------------------------------ device model

    def _apply_device_model(self) -> None:
        """Settings the device model governs, read again after every change."""
        self.tx.settings = TxSettings(
            self.dm.members("TxCtrlr", "TxStartPoint"), self.dm.members("TxCtrlr", "TxStopPoint")
        )

    def _check_items(self, count: int, kind: str | None) -> None:
        """kind: the DeviceDataCtrlr instance, or None for the local list's own limit."""
        limit = (
            self.dm.integer("LocalAuthListCtrlr", "ItemsPerMessage")
            if kind is None
            else self.dm.integer("DeviceDataCtrlr", "ItemsPerMessage", kind)
        )
        if count > limit:
            raise RpcError(
                "OccurrenceConstraintViolation",
                f"{count} items in one {kind or 'SendLocalList'} request, "
                f"ItemsPerMessage is {limit}",
            )

    async def _on_get_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_items(len(payload["getVariableData"]), "GetVariables")
        return {"getVariableResult": [self.dm.get(item) for item in payload["getVariableData"]]}

    async def _on_set_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_items(len(payload["setVariableData"]), "SetVariables")
        results = [await self.dm.set(item) for item in payload["setVariableData"]]
        self._apply_device_model()
        self._dm_changed.set()
        for listener in self._dm_listeners:
            listener.set()
        return {"setVariableResult": results}

    async def _on_get_base_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B07/B08: answers at once, then sends the report in NotifyReport pages."""
        if payload["reportBase"] not in ("ConfigurationInventory", "FullInventory"):
            return {"status": "NotSupported"}
        session = self._session
        if session is not None:
            entries = self.dm.report(payload["reportBase"])
            spawn(self._notify_report(session, payload["requestId"], entries), "ocpp report")
        return {"status": "Accepted"}

    async def _on_get_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B08: the variables matching componentCriteria and/or componentVariable."""
        wanted = payload.get("componentVariable", [])
        self._check_items(len(wanted), "GetReport")
        entries = self.dm.custom_report(payload.get("componentCriteria", []), wanted)
        if not entries:
            return {"status": "EmptyResultSet"}
        session = self._session
        if session is not None:
            spawn(self._notify_report(session, payload["requestId"], entries), "ocpp report")
        return {"status": "Accepted"}

    async def _notify_report(
        self, session: Session, request_id: int, entries: list[dict[str, Any]]
    ) -> None:
        size = self.dm.integer("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
        pages = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        generated = self._timestamp()
        for seq, page in enumerate(pages):
            message: dict[str, Any] = {
                "requestId": request_id,
                "generatedAt": generated,
                "seqNo": seq,
                "tbc": seq < len(pages) - 1,
            }
            if page:
                message["reportData"] = page
            with contextlib.suppress(CallTimeout, CallRejected):
                await session.call("NotifyReport", message)

    # ------------------------------------------------------------------ provisioning

    async def _boot_and_heartbeat(self, session: Session) -> None:
        interval = await self._boot(session)
        self.dm.assign("OCPPCommCtrlr", "HeartbeatInterval", str(int(interval)))
        await self._settle_profile(self._profile)
        if self._boot_reason != "PowerUp":
            self._boot_reason = "PowerUp"  # told; a later power cut is a power-up again
            await self._save_station_state()
        self.registered = True
        self.tx.online = True
        sender = asyncio.create_task(self._send_outbox(session))
        try:
            await self._catch_up_statuses(session)
            while True:
                # A changed HeartbeatInterval takes effect at once, not after the old one.
                self._dm_changed.clear()
                interval_s = self.dm.integer("OCPPCommCtrlr", "HeartbeatInterval")
                if await wait_event(self._dm_changed, interval_s):
                    continue
                with contextlib.suppress(CallTimeout, CallRejected):
                    reply = await session.call("Heartbeat", {})
                    self._sync_clock(reply["currentTime"])
        finally:
            sender.cancel()

    async def _boot(self, session: Session) -> float:
        """B01-B03: repeats BootNotification until Accepted; returns the heartbeat interval."""
        while True:
            try:
                reply = await session.call(
                    "BootNotification",
                    {
                        "reason": self._boot_reason,
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
            self._boot_status = reply["status"]
            interval = float(reply["interval"])
            event(log, logging.INFO, "ocpp_boot", status=reply["status"], interval_s=interval)
            if reply["status"] == "Accepted":
                return (
                    interval
                    if interval > 0
                    else self.dm.integer("OCPPCommCtrlr", "HeartbeatInterval")
                )
            # Pending or Rejected: send nothing else, try again after the interval
            await asyncio.sleep(interval if interval > 0 else DEFAULT_BOOT_RETRY_S)

    def _timestamp(self) -> str:
        """Now, on the CSMS's clock (G02: Heartbeat and BootNotification set it)."""
        return api.timestamp(datetime.now(UTC) + timedelta(seconds=self.clock_offset_s))

    def _sync_clock(self, csms_time: str) -> None:
        theirs = datetime.fromisoformat(csms_time.replace("Z", "+00:00"))
        self.clock_offset_s = (theirs - datetime.now(UTC)).total_seconds()

    # ------------------------------------------------------------------ availability

    def _on_cp_status(self, connector: Connector, state: str) -> None:
        self._cp_states[connector.ocpp_evse_id] = state
        key = (connector.ocpp_evse_id, connector.connector_id)
        status = connector_status(state)
        if connector.ocpp_evse_id in self._unavailable and status != "Faulted":
            status = "Unavailable"
        if self._connector_status.get(key) == status:
            return
        self._connector_status[key] = status
        session = self._session
        if session is not None and self.registered:
            spawn(self._status_notification(session, *key, status), "ocpp")

    async def _catch_up_statuses(self, session: Session) -> None:
        """B04: after an offline period longer than OfflineThreshold (and at boot) every
        connector's status; after a shorter one only the statuses that changed. A CSMS
        reached over another network profile has heard nothing yet: it gets them all."""
        offline_s = None
        if self._offline_since is not None:
            offline_s = time.monotonic() - self._offline_since
        self._offline_since = None
        everything = (
            offline_s is None
            or offline_s > self.dm.integer("OCPPCommCtrlr", "OfflineThreshold")
            or self._reported_to != self._profile
        )
        self._reported_to = self._profile
        for key, status in sorted(self._connector_status.items()):
            if everything or self._reported.get(key) != status:
                await self._status_notification(session, *key, status)

    async def _status_notification(
        self, session: Session, evse: int, connector: int, status: str
    ) -> None:
        with contextlib.suppress(CallTimeout, CallRejected):
            await session.call(
                "StatusNotification",
                {
                    "timestamp": self._timestamp(),
                    "connectorStatus": status,
                    "evseId": evse,
                    "connectorId": connector,
                },
            )
            self._reported[(evse, connector)] = status
        await self._notify_availability(session, evse, connector, status)

    async def _notify_availability(
        self, session: Session, evse: int, connector: int, status: str
    ) -> None:
        """The Connector's AvailabilityState in the device model, and its change as a
        NotifyEvent (trigger Delta), as G01/B04 pair it with StatusNotification."""
        self.dm.assign_at("Connector", "AvailabilityState", status, evse, connector)
        self._event_id += 1
        stamp = self._timestamp()
        with contextlib.suppress(CallTimeout, CallRejected):
            await session.call(
                "NotifyEvent",
                {
                    "generatedAt": stamp,
                    "seqNo": 0,
                    "eventData": [
                        {
                            "eventId": self._event_id,
                            "timestamp": stamp,
                            "trigger": "Delta",
                            "actualValue": status,
                            "eventNotificationType": "HardWiredNotification",
                            "component": {
                                "name": "Connector",
                                "evse": {"id": evse, "connectorId": connector},
                            },
                            "variable": {"name": "AvailabilityState"},
                        }
                    ],
                },
            )

    # ------------------------------------------------------------------ authorization

    async def _authorize(self, message: Message) -> None:
        token_type = str(message.data["token_type"])
        id_token = {
            "idToken": str(message.data.get("id_token", "")),
            "type": TOKEN_TYPES.get(token_type, "Local"),
        }
        await wait_event(self._loaded, self._s.call_timeout_s)  # decisions need what is on disk
        info = await self._decide(token_type, id_token)
        accepted = info is not None and info.get("status") == "Accepted"
        group = group_of(info)
        master = self.dm.value("AuthCtrlr", "MasterPassGroupId") or None
        if accepted and master is not None and group is not None and group["idToken"] == master:
            # C16.FR.02/03: a master pass stops every transaction and starts none
            self._bus.publish(message.reply({"status": "rejected"}))
            self._stop_all(reason="MasterPass")
            return
        connector = self._connector(message.data.get("evse_id"))
        evse = connector.ocpp_evse_id if connector is not None else None
        owner = None if evse is None else self.tx.id_token(evse)
        ongoing = evse is not None and self.tx.transaction_id(evse) is not None
        same_token = owner == id_token
        same_group = group is not None and evse is not None and group == self._groups.get(evse)
        if accepted and ongoing and owner is not None and not (same_token or same_group):
            accepted = False  # C01.FR.03: another driver's card neither stops nor takes over
        self._bus.publish(message.reply({"status": "accepted" if accepted else "rejected"}))
        if not accepted or connector is None or evse is None:
            return
        if ongoing and (same_token or same_group):
            # The same token (E07) or one of its group (C09.FR.03) ends the session, as
            # Josev does: stop_charging.
            self._emit(evse, self.tx.stop_authorized(evse))
            spawn(self._stop_charging(connector.evse_id), "ocpp")
        else:
            self._groups[evse] = group
            self._authorized(connector, id_token)

    def _authorized(
        self, connector: Connector, id_token: dict[str, Any], remote_start_id: int | None = None
    ) -> None:
        """An accepted token on an EVSE; without a cable it lapses after TxCtrlr.
        EVConnectionTimeOut (E03.FR.05, F02), and the CS is told to drop it too."""
        evse = connector.ocpp_evse_id
        self._emit(evse, self.tx.authorized(evse, id_token, remote_start_id))
        self._authorizations[evse] = generation = self._authorizations.get(evse, 0) + 1
        if not self.tx.awaiting_cable(evse):
            return

        def lapse() -> None:
            if self._authorizations.get(evse) != generation or not self.tx.awaiting_cable(evse):
                return  # plugged in, or authorized again since
            event(log, logging.INFO, "ocpp_ev_connection_timeout", evse=evse)
            self._emit(evse, self.tx.connection_timed_out(evse))
            spawn(self._stop_charging(connector.evse_id), "ocpp")

        timeout_s = self.dm.integer("TxCtrlr", "EVConnectionTimeOut")
        asyncio.get_running_loop().call_later(timeout_s, lapse)

    def _stop_all(self, reason: str) -> None:
        for c in self._s.connectors:
            if self.tx.transaction_id(c.ocpp_evse_id) is not None:
                self._emit(c.ocpp_evse_id, self.tx.stop_authorized(c.ocpp_evse_id, reason=reason))
                spawn(self._stop_charging(c.evse_id), "ocpp")

    async def _decide(self, token_type: str, id_token: dict[str, Any]) -> dict[str, Any] | None:
        online = self._session is not None and self.registered
        return await self.authorizer.decide(token_type, id_token, self._ask if online else None)

    async def _ask(self, id_token: dict[str, Any]) -> dict[str, Any] | None:
        """C01: AuthorizeRequest; None when it timed out or was refused."""
        session = self._session
        if session is None:
            return None
        try:
            reply = await session.call("Authorize", {"idToken": id_token})
        except (CallTimeout, CallRejected) as exc:
            event(log, logging.WARNING, "ocpp_authorize_failed", error=str(exc))
            return None
        info: dict[str, Any] = reply["idTokenInfo"]
        return info

    # ------------------------------------------------------------------ remote control

    async def _on_request_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        """F01/F02: the CSMS authorizes a token on an EVSE; the CS hears it on the bus."""
        wanted = payload.get("evseId")
        connector = next(
            (
                c
                for c in self._s.connectors
                if (wanted is None or c.ocpp_evse_id == wanted)
                # free, or plugged in first with a transaction not yet authorized (F02)
                and self.tx.id_token(c.ocpp_evse_id) is None
            ),
            None,
        )
        if connector is None:
            return {"status": "Rejected"}
        profile = payload.get("chargingProfile")
        if profile is not None and profile["chargingProfilePurpose"] != "TxProfile":
            return {  # F01.FR.12: only a TxProfile may come with a remote start
                "status": "Rejected",
                "statusInfo": {"reasonCode": "InvalidProfile"},
            }
        evse = connector.ocpp_evse_id
        if profile is not None:
            await self._store_tx_profile(evse, profile)
        self._authorized(connector, payload["idToken"], payload["remoteStartId"])
        self._bus.publish(
            api.update(
                "authorization",
                TOPIC,
                {
                    "evse_id": connector.evse_id,
                    "status": "accepted",
                    "id_token": payload["idToken"]["idToken"],
                    "token_type": "central",
                },
            )
        )
        result: dict[str, Any] = {"status": "Accepted"}
        if (tx_id := self.tx.transaction_id(evse)) is not None:
            result["transactionId"] = tx_id
        return result

    async def _on_request_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        """F03: end the transaction; the CS stops the energy transfer."""
        connector = next(
            (
                c
                for c in self._s.connectors
                if self.tx.transaction_id(c.ocpp_evse_id) == payload["transactionId"]
            ),
            None,
        )
        if connector is None:
            return {"status": "Rejected"}
        evse = connector.ocpp_evse_id
        self._emit(evse, self.tx.stop_authorized(evse, remote=True))
        spawn(self._stop_charging(connector.evse_id), "ocpp")
        return {"status": "Accepted"}

    async def _on_get_transaction_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        """E14: are messages of the transaction still queued, is it ongoing?"""
        tx_id = payload.get("transactionId")
        pending = [
            e
            for e in await self._outbox.pending()
            if e.action == "TransactionEvent"
            and e.seq not in self._answered
            and (tx_id is None or e.payload["transactionInfo"]["transactionId"] == tx_id)
        ]
        result: dict[str, Any] = {"messagesInQueue": bool(pending)}
        if tx_id is not None:
            result["ongoingIndicator"] = any(
                self.tx.transaction_id(c.ocpp_evse_id) == tx_id for c in self._s.connectors
            )
        return result

    # ------------------------------------------------------------------ remote.Station

    def evse_id(self, ocpp_evse_id: int) -> str | None:
        return next((c.evse_id for c in self._s.connectors if c.ocpp_evse_id == ocpp_evse_id), None)

    def has_connector(self, ocpp_evse_id: int, connector_id: int) -> bool:
        return any(
            c.ocpp_evse_id == ocpp_evse_id and c.connector_id == connector_id
            for c in self._s.connectors
        )

    def evses(self) -> list[int]:
        return sorted({c.ocpp_evse_id for c in self._s.connectors})

    def transaction_id(self, ocpp_evse_id: int) -> str | None:
        return self.tx.transaction_id(ocpp_evse_id)

    def end_for_reset(self, ocpp_evse_id: int) -> None:
        self._emit(ocpp_evse_id, self.tx.end_for_reset(ocpp_evse_id))

    async def _store_tx_profile(self, evse: int, profile: dict[str, Any]) -> None:
        """F01.FR.08: the TxProfile of a remote start, kept (on disk) for smart charging,
        which will apply it; until then the station charges at its own limits."""
        self.charging_profiles[evse] = profile
        if self._state is not None:
            stored = {str(e): p for e, p in self.charging_profiles.items()}
            await self._state.put(_CHARGING_PROFILES, stored)

    async def prepare_reset(self, reason: str) -> None:
        self._next_boot_reason = reason
        await self._save_station_state()

    async def _restore_station_state(self) -> None:
        """B11.FR.04 / G03: an EVSE made Unavailable stays so across a reset or power cut."""
        if self._state is None:
            return
        profiles = await self._state.get(_CHARGING_PROFILES)
        if isinstance(profiles, dict):
            self.charging_profiles = {int(e): p for e, p in profiles.items()}
        saved = await self._state.get(_STATION_STATE)
        if not isinstance(saved, dict):
            return
        self._boot_reason = str(saved.get("boot_reason") or "PowerUp")
        self._unavailable = {int(e) for e in saved.get("unavailable", [])}
        for (evse, connector), status in list(self._connector_status.items()):
            if evse in self._unavailable and status != "Faulted":
                self._connector_status[(evse, connector)] = "Unavailable"

    async def _save_station_state(self) -> None:
        if self._state is None:
            return
        async with self._state_lock:  # the last write holds the latest state
            await self._state.put(
                _STATION_STATE,
                {"unavailable": sorted(self._unavailable), "boot_reason": self._next_boot_reason},
            )

    def set_available(self, ocpp_evse_id: int, available: bool) -> None:
        """G03/G04: the connectors report Unavailable (or their real status again)."""
        if available:
            self._unavailable.discard(ocpp_evse_id)
        else:
            self._unavailable.add(ocpp_evse_id)
        spawn(self._save_station_state(), "ocpp availability")
        for c in self._s.connectors:
            if c.ocpp_evse_id == ocpp_evse_id:
                self._on_cp_status(c, self._cp_states.get(ocpp_evse_id, "A1"))

    def trigger(self, message: str, ocpp_evse_id: int | None) -> str:
        """F06: sends the requested message; returns the TriggerMessage answer."""
        session = self._session
        if session is None:
            return "Rejected"
        wanted = [e for e in self.evses() if ocpp_evse_id in (None, e)]
        if not wanted:
            return "Rejected"  # no such EVSE
        if message == "BootNotification":
            return "Rejected" if self.registered else "Accepted"  # F06.FR.17
        if message == "Heartbeat":
            spawn(self._call_quietly(session, "Heartbeat", {}), "ocpp trigger")
        elif message == "StatusNotification":
            for (evse, connector), status in sorted(self._connector_status.items()):
                if evse in wanted:
                    spawn(
                        self._status_notification(session, evse, connector, status),
                        "ocpp trigger",
                    )
        elif message == "TransactionEvent":
            for evse in wanted:
                self._emit(evse, self.tx.trigger(evse))
        elif message == "MeterValues":
            for evse in wanted:
                self._send_meter_values(session, evse, "Trigger")
        elif message in ("FirmwareStatusNotification", "LogStatusNotification"):
            # nothing of the kind is running (firmware and logs come later): Idle
            spawn(self._call_quietly(session, message, {"status": "Idle"}), "ocpp trigger")
        else:
            return "NotImplemented"
        return "Accepted"

    def _send_meter_values(self, session: Session, evse: int, context: str) -> None:
        """MeterValues with the AlignedDataCtrlr measurands (J02 outside a transaction,
        F06 on a trigger); nothing when no reading has come in yet."""
        samples = self._sample(evse, "Clock", context)
        if samples:
            reading = {"timestamp": self._timestamp(), "sampledValue": samples}
            payload = {"evseId": evse, "meterValue": [reading]}
            spawn(self._call_quietly(session, "MeterValues", payload), f"ocpp {context} values")

    async def _call_quietly(self, session: Session, action: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(CallTimeout, CallRejected):
            await session.call(action, payload)

    async def _data_transfer_to_csms(self, message: Message) -> None:
        """P02: the CS's data_transfer to the CSMS, the answer back on the bus."""
        status, answer = "rejected", None
        if self._session is not None and self.registered:
            payload: dict[str, Any] = {"vendorId": message.data["vendor_id"]}
            if "message_id" in message.data:
                payload["messageId"] = message.data["message_id"]
            if "data" in message.data:
                payload["data"] = message.data["data"]
            with contextlib.suppress(CallTimeout, CallRejected):
                reply = await self._session.call("DataTransfer", payload)
                status = _DATA_TRANSFER_TO_JOSEV[reply["status"]]
                answer = reply.get("data")
        data: dict[str, Any] = {"status": status}
        if answer is not None:
            data["data"] = answer
        self._bus.publish(message.reply(data))

    async def _stop_charging(self, evse_id: str) -> None:
        request = api.request("stop_charging", TOPIC, {"evse_id": evse_id})
        with contextlib.suppress(TimeoutError):
            await self._bus.request(request, self._s.call_timeout_s)
