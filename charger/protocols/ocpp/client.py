"""OCPP 2.0.1 client: the station's link to the CSMS, meeting the CS only on the bus.

It wires the parts together (the connection in `connection.py`, connector statuses in
`status.py`, the device model's messages in `variables.py`, meter values in
`meter_values.py`, remote operations in `remote.py`, authorization in
`authorization.py`) and does itself what joins them to the CS: BootNotification with
Accepted/Pending/Rejected (B01-B03) and Heartbeat (G02), Authorize for the CS's
`authorization` requests (C01), transactions (E01-E14) built from what the CS reports
and sent through the durable outbox, remote start/stop (F01-F03) and `websocket_status`
on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from charger.bus import Bus, api, messages
from charger.bus.api import Message
from charger.bus.messages import Topic
from charger.hal.firmware import FirmwareInstaller
from charger.protocols.ocpp.auth_cache import AuthCache
from charger.protocols.ocpp.authorization import Authorizer, group_of
from charger.protocols.ocpp.connection import CsmsConnection
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.event_ids import EventIds
from charger.protocols.ocpp.firmware import FirmwareOptions, FirmwareService, HealthCheck
from charger.protocols.ocpp.local_list import LocalList
from charger.protocols.ocpp.meter_values import MeterSampler
from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.outbox import Outbox, StorageFull
from charger.protocols.ocpp.remote import RemoteOperations
from charger.protocols.ocpp.rpc import RpcError
from charger.protocols.ocpp.security_log import SecurityLog, notified
from charger.protocols.ocpp.session import CallRejected, CallTimeout, Session
from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model
from charger.protocols.ocpp.status import StatusReporter
from charger.protocols.ocpp.transactions import TransactionManager, TxSettings
from charger.protocols.ocpp.variables import VariablesService
from charger.runtime.log import event
from charger.runtime.store import Store
from charger.runtime.tasks import TaskOwner, wait_event

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

GOING_AWAY_TIMEOUT_S = 2.0  # how long a shutdown waits for the CSMS's close frame
DEFAULT_BOOT_RETRY_S = 30.0  # when the CSMS gives interval 0 with Pending/Rejected
STORAGE_RETRY_MIN_S, STORAGE_RETRY_MAX_S = 1.0, 30.0  # a full disk is tried again
FINAL_READING_TIMEOUT_S = 2.0  # a meter answers in milliseconds; a silent one has no say
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


# RFID UIDs as OCPP 2.0.1 expects them (IdTokenEnumType): hexadecimal, 4 or 7 bytes for
# ISO 14443 (single- or double-size UID), 8 bytes for ISO 15693
_UID_FORMATS = {
    "ISO14443": (re.compile(r"[0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}"), "8 or 14 hexadecimal digits"),
    "ISO15693": (re.compile(r"[0-9A-Fa-f]{16}"), "16 hexadecimal digits"),
}


def malformed_token(id_token: dict[str, Any]) -> str | None:
    """What is wrong with an RFID token's format, or None."""
    rule = _UID_FORMATS.get(id_token["type"])
    if rule is None or rule[0].fullmatch(id_token["idToken"]):
        return None
    got = id_token["idToken"]
    return f"an {id_token['type']} token is {rule[1]}, not {len(got)} characters ({got[:3]}...)"


_STATION_STATE = "ocpp_station_state"
_CHARGING_PROFILES = "ocpp_charging_profiles"


_Write = tuple[int, dict[str, Any] | str, dict[str, Any]]  # see OcppClient._writes


@dataclass
class _Place:
    """A place held in an EVSE's write order (`OcppClient._hold`); its writes once
    released."""

    writes: list[_Write] | None = None


_HeldWrite = _Write | _Place


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
        recovered_files: Sequence[Path] = (),
        # the A/B installer of UpdateFirmware (none: updates are refused) and the new
        # firmware's check after an update (firmware.py)
        firmware: FirmwareInstaller | None = None,
        firmware_options: FirmwareOptions | None = None,
        health: HealthCheck | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`recovered_files`: state databases found corrupt at start and moved aside (to
        these paths); the CSMS hears of each with the start's security events.
        `monotonic`, `wall_clock`: the clocks of intervals and of timestamps (the event
        loop's clock and the system time; a test rig passes its own)."""
        self._wall_clock = wall_clock
        self._bus = bus
        self._s = settings
        self._outbox = outbox
        self._tasks = TaskOwner("ocpp")
        self._session: Session | None = None
        self.registered = False  # BootNotification accepted on this connection
        self._boot_status: str | None = None  # the last BootNotification answer's status
        self._accepted_by: NetworkProfile | None = None  # whose CSMS accepted this boot
        self.clock_offset_s = 0.0  # CSMS time minus ours, from Boot and Heartbeat
        self.tx = TransactionManager(
            TxSettings(),  # replaced from the device model's TxCtrlr at run()
            [(c.ocpp_evse_id, c.connector_id) for c in settings.connectors],
            now=self._timestamp,
        )
        # (EVSE, a TransactionEvent or the id of the transaction whose state alone changed,
        # the state it leaves)
        self._writes: asyncio.Queue[_Write]
        self._writes = asyncio.Queue()
        self._unsettled: set[int] = set()
        self._answered: set[int] = set()  # outbox entries answered, deletion in progress
        self._state = state_store  # what must survive a reset: availability, boot reason
        self._state_lock = asyncio.Lock()
        self.charging_profiles: dict[int, dict[str, Any]] = {}  # TxProfile per EVSE (F01)
        self._boot_reason = "PowerUp"  # this boot's
        self._boot_now = asyncio.Event()  # a TriggerMessage BootNotification while Pending
        # clear while a BootNotification awaits its answer (or, Accepted, the registration)
        self._boot_settled = asyncio.Event()
        self._boot_settled.set()
        self._next_boot_reason: str | None = None  # the next boot's, when not a power-up
        self._remote = RemoteOperations(bus, self, settings.call_timeout_s, self._tasks)
        self.dm = device_model if device_model is not None else build_device_model(settings)
        self.dm.clock = self._timestamp  # ClockCtrlr.DateTime: the CSMS-synchronised time
        self._dm_changed = asyncio.Event()
        self.local_list = local_list if local_list is not None else LocalList(None)
        self.auth_cache = auth_cache if auth_cache is not None else AuthCache(None)
        self.authorizer = Authorizer(self.dm, self.local_list, self.auth_cache)
        self._groups: dict[int, dict[str, Any] | None] = {}  # groupIdToken of each EVSE's tx
        self._authorizations: dict[int, int] = {}  # per EVSE: how many so far (timeouts)
        # EVSEs whose transaction's idToken the CSMS refused, StopTxOnInvalidId false:
        # charging goes on up to MaxEnergyOnInvalidId (C12.FR.04, E05)
        self._invalid_token: set[int] = set()
        # stop_energy: the futures waiting for an EVSE's Ended event to be committed, and
        # the Ended events of each EVSE queued, not yet committed to the outbox
        self._ended_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._ended_queued: dict[int, int] = {}
        # EVSEs whose writes wait behind a place held for an event still being made
        # (`_hold`): the held places (None) and the writes queued after them, in order
        self._held: dict[int, list[_HeldWrite]] = {}
        self._learning = False  # the CS is telling the state the station started in
        configured = NetworkProfile(1, settings.csms_url, settings.security_profile)
        self.networks = network_profiles or NetworkProfiles(None, configured)
        self.link = CsmsConnection(
            settings, self.dm, self.networks, self._queue_security_event, rng=rng, connect=connect
        )
        self.status = StatusReporter(
            self.dm,
            [(c.ocpp_evse_id, c.connector_id) for c in settings.connectors],
            self._timestamp,
            self._registered_session,
            self._tasks,
            in_transaction=lambda evse: self.tx.transaction_id(evse) is not None,
        )
        self.event_ids = self.status.event_ids = EventIds(state_store)
        self._storage_error: str | None = None  # set while the outbox cannot write
        self._recovered_files = tuple(recovered_files)
        self._loaded = asyncio.Event()  # device model and local list read from disk
        self._dm_listeners: list[asyncio.Event] = [self._dm_changed]  # set on each change
        self.security_log = SecurityLog(state_store)
        self.variables = VariablesService(
            self.dm,
            self._timestamp,
            lambda: self._session,
            self._device_model_changed,
            self._tasks,
            security_changed=self._security_reconfigured,
        )
        self.meter = MeterSampler(
            self.dm, self.tx, self._emit, self._timestamp, self._registered_session, self._tasks
        )
        self._dm_listeners.append(self.meter.replan)
        self._dm_listeners.append(self.link.dm_changed)  # A01: a new password reconnects
        self.link.exchanges_settled = self._exchanges_settled  # ... once they are
        self.firmware = FirmwareService(
            bus,
            self,
            self.dm,
            firmware,
            firmware_options or FirmwareOptions(firmware_version=settings.firmware_version),
            self._tasks,
            session=self._registered_session,
            now=lambda: datetime.now(UTC) + timedelta(seconds=self.clock_offset_s),
            security_event=self._queue_security_event,
            health=health,
            store=state_store,
            call_timeout_s=settings.call_timeout_s,
        )
        self.meter.monotonic, self.meter.clock = monotonic, self._station_time
        self.meter.timestamp_at, self.meter.hold = self._timestamp_at, self._hold
        self.meter.read, self.meter.take = self._read_meter, self._meter_reading
        self.status.monotonic = monotonic

    # ------------------------------------------------------------------ bus

    def start(self) -> None:
        bus, tasks = self._bus, self._tasks
        bus.subscribe(messages.CP_STATUS_UPDATE, self._on_cp_status, owner=tasks)
        bus.subscribe(messages.CS_CONTACTOR_STATUS_UPDATE, self._on_contactor, owner=tasks)
        bus.subscribe(messages.METER_VALUES_UPDATE, self._on_meter_values, owner=tasks)
        bus.subscribe(messages.WEBSOCKET_STATUS_REQUEST, self._on_ws_status, owner=tasks)
        bus.subscribe(
            messages.DATA_TRANSFER_REQUEST,
            self._data_transfer_to_csms,
            owner=tasks,
            topic=Topic.CS_JOSEV,
        )
        if self._s.answer_authorization:
            bus.subscribe(messages.AUTHORIZATION_REQUEST, self._authorize, owner=tasks)
        self._publish_ws_status(connected=False)
        self._learn_cp_states()

    def _learn_cp_states(self) -> None:
        """The CS published its start-up cp_status before this client subscribed: the
        boot-time query (cs_parameters) has it publish each EVSE's state again, before
        its answer. What an in-process CS says so, within the query's delivery (the bus
        delivers synchronously), is the state the station started in, not a plug-in: an
        EV left plugged in across a reboot is Occupied, but starts no transaction by
        TxStartPoint EVConnected (that condition became true before, E01). A remote CS
        answers later; what it sends then counts as news. Nobody waits for the answer."""
        self._learning = True
        try:
            self._bus.publish(messages.CS_PARAMETERS_REQUEST.make({}))
        finally:
            self._learning = False

    async def close(self) -> None:
        """Stops every task the client started (the connection's own end with run())."""
        await self._tasks.close()

    def _connector(self, evse_id: object) -> Connector | None:
        return next((c for c in self._s.connectors if c.evse_id == evse_id), None)

    def _on_cp_status(self, message: Message[messages.CpStatusUpdate]) -> None:
        if (connector := self._connector(message.data["evse_id"])) is None:
            return
        evse, state = connector.ocpp_evse_id, message.data["state"]
        self._emit(evse, self.tx.cp_state(evse, state, held=self._learning))
        self.status.cp_status(evse, state)
        self._settle_soon(evse)

    def _on_contactor(self, message: Message[messages.CsContactorStatusUpdate]) -> None:
        connector = self._connector(message.data["evse_id"])
        if connector is None or message.data["status"] == "error":
            return
        evse = connector.ocpp_evse_id
        closed = message.data["status"] == "closed"
        self._emit(evse, self.tx.power_path(evse, closed))
        if not closed and self.tx.ending(evse):
            self._tasks.spawn(self._finish_after_reading(connector), "end of a stopped transaction")
        self._settle_soon(evse)

    async def _finish_after_reading(self, connector: Connector) -> None:
        """A stopped transaction's Ended event, once the power path has opened: with a
        meter reading asked for now, so all the energy of the session is in it."""
        evse = connector.ocpp_evse_id
        # a silent meter: the Ended event goes with the last reading
        if (reading := await self._read_meter(evse)) is not None:
            self._meter_reading(evse, reading)
        self._emit(evse, self.tx.finish(evse))

    async def _read_meter(self, ocpp_evse_id: int) -> dict[str, Any] | None:
        """A reading of the EVSE's meter asked for now; None when it does not answer."""
        evse_id = self.evse_id(ocpp_evse_id)
        if evse_id is None:
            return None
        request = messages.METER_VALUES_REQUEST.make(
            {"evse_id": evse_id, "timestamp": self._timestamp()}
        )
        try:
            reply = await self._bus.request(request, FINAL_READING_TIMEOUT_S)
        except TimeoutError:
            event(log, logging.WARNING, "ocpp_no_meter_reading", evse=ocpp_evse_id)
            return None
        if reply.data.get("total_active_energy_imported") is None:
            return None
        return dict(reply.data)

    def _stopped(self, evse: int, events: list[dict[str, Any]]) -> None:
        """Events of a stop; if it ended the transaction while the power path is closed,
        the Ended event follows the opening (`_finish_after_reading`) or, at the latest,
        the message timeout."""
        self._emit(evse, events)
        if self.tx.ending(evse):
            loop = asyncio.get_running_loop()
            tx_id = self.tx.transaction_id(evse)
            loop.call_later(self._s.call_timeout_s, self._finish_if_still_ending, evse, tx_id)

    def _finish_if_still_ending(self, evse: int, tx_id: str | None) -> None:
        """The power path never reported open (a welded contactor, a silent CS): the
        stopped transaction ends with what is known rather than never."""
        if self.tx.ending(evse) and self.tx.transaction_id(evse) == tx_id:
            event(log, logging.WARNING, "ocpp_end_without_open_power_path", evse=evse)
            self._emit(evse, self.tx.finish(evse))

    def _on_meter_values(self, message: Message[messages.MeterValuesUpdate]) -> None:
        if (connector := self._connector(message.data.get("evse_id"))) is None:
            return
        self._meter_reading(connector.ocpp_evse_id, dict(message.data))

    def _meter_reading(self, evse: int, data: dict[str, Any]) -> None:
        """Every reading of an EVSE's meter, reported by the CS or asked for (a final or
        a clock-aligned one): its events, kept with the open transaction, and the
        MaxEnergyOnInvalidId limit checked."""
        self.meter.reading(evse, data)
        if (tx_id := self.tx.transaction_id(evse)) is not None:
            # kept with the transaction, so a PowerLoss Ended after a power cut has it
            self._put_write((evse, tx_id, self.tx.snapshot(evse)))
        if (connector := self._connector(self.evse_id(evse))) is not None:
            self._limit_invalid_energy(connector)

    def _on_ws_status(self, message: Message[messages.WebsocketStatusRequest]) -> None:
        reply = messages.WEBSOCKET_STATUS_RESPONSE.answer(message, self._ws_status_data())
        self._bus.publish(reply)

    def _ws_status_data(self) -> messages.WebsocketStatusUpdate:
        if self._session is None:
            return {"status": "disconnected"}
        return {
            "status": "connected",
            "identity": self._s.identity,
            "csms_url": self.link.profile.url,
            "security_profile": self._s.security_profile,
        }

    def _publish_ws_status(self, *, connected: bool) -> None:
        data = self._ws_status_data() if connected else {"status": "disconnected"}
        self._bus.publish(messages.WEBSOCKET_STATUS_UPDATE.make(data))

    # ------------------------------------------------------------------ transactions

    def _emit(self, evse: int, events: list[dict[str, Any]]) -> None:
        """Queues TransactionEvents for the writer, with the state each one leaves."""
        for payload in events:
            self._put_write((evse, payload, self.tx.snapshot(evse)))
            if payload["eventType"] == "Started":
                self.meter.transaction_started(evse)
            if payload["eventType"] == "Ended":
                self._invalid_token.discard(evse)
                self._groups.pop(evse, None)  # the group stopped with its transaction
                self._tasks.spawn(self._remote.transaction_ended(), "scheduled operations")
                self.firmware.transaction_ended()

    def _put_write(self, write: _Write) -> None:
        """Queues a write for the writer, behind a place held for its EVSE if any."""
        evse, payload, _ = write
        if isinstance(payload, dict) and payload["eventType"] == "Ended":
            self._ended_queued[evse] = self._ended_queued.get(evse, 0) + 1
        if evse in self._held:
            self._held[evse].append(write)
        else:
            self._writes.put_nowait(write)

    def _hold(self, evse: int) -> Callable[[list[dict[str, Any]]], None]:
        """Holds a place in the EVSE's write order for events made now and completed
        later (a clock-aligned event waits for its reading, MeterSampler): the EVSE's
        writes queued meanwhile wait behind it, so the events keep the order of their
        seqNo. Returns what queues the completed events in that place."""
        state = self.tx.snapshot(evse)  # the state the events leave, as of now
        held = self._held.setdefault(evse, [])
        place = _Place()
        held.append(place)

        def release(events: list[dict[str, Any]]) -> None:
            place.writes = [(evse, payload, state) for payload in events]
            while held and not (isinstance(held[0], _Place) and held[0].writes is None):
                first = held.pop(0)
                writes = (first.writes or []) if isinstance(first, _Place) else [first]
                for write in writes:
                    self._writes.put_nowait(write)
            if not held and self._held.get(evse) is held:
                del self._held[evse]

        return release

    async def _write_forever(self) -> None:
        """Commits queued events to the outbox one by one, in the order they happened.
        A full disk holds the queue (nothing is dropped, seqNo stays continuous) and is
        retried with backoff; charging goes on meanwhile."""
        while True:
            evse, payload, state = await self._writes.get()
            delay = STORAGE_RETRY_MIN_S
            while True:
                try:
                    await self._write(evse, payload, state)
                except StorageFull as exc:
                    if isinstance(payload, str):
                        break  # a reading only: the next one will do
                    self._storage_problem(str(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, STORAGE_RETRY_MAX_S)
                else:
                    if self._storage_error is not None:
                        self._storage_problem(None)
                    if isinstance(payload, dict) and payload["eventType"] == "Ended":
                        self._ended_committed(evse)
                    break

    def _ended_committed(self, evse: int) -> None:
        """An Ended event of the EVSE is in the outbox: once no other is on its way, the
        resets waiting for it go on (`stop_energy`)."""
        self._ended_queued[evse] -= 1
        if self._ended_queued[evse] > 0 or self.tx.ending(evse):
            return
        del self._ended_queued[evse]
        for waiter in self._ended_waiters.pop(evse, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _write(self, evse: int, payload: dict[str, Any] | str, state: dict[str, Any]) -> None:
        if isinstance(payload, str):  # the open transaction's new meter reading
            await self._outbox.save_transaction(payload, state)
            return
        tx_id = payload["transactionInfo"]["transactionId"]
        if payload["eventType"] == "Ended":
            await self._outbox.put("TransactionEvent", payload, forget=tx_id)
        else:
            await self._outbox.put("TransactionEvent", payload, (tx_id, evse, state))

    async def _ack(self, seq: int) -> None:
        """Removes an answered entry; while the disk fails, it stays and goes out again
        (the same event twice, which the CSMS recognises by its seqNo)."""
        try:
            await self._outbox.ack(seq)
        except StorageFull as exc:
            self._storage_problem(str(exc))
            await asyncio.sleep(STORAGE_RETRY_MIN_S)

    def _storage_problem(self, error: str | None) -> None:
        """Reports a full (or failing) disk once when it starts and once when it ends: in
        the log, as notify_event on the bus, and to the CSMS as a NotifyEvent of the
        station's Problem variable."""
        if (error is None) == (self._storage_error is None):
            return
        self._storage_error = error
        if error is not None:
            event(log, logging.ERROR, "ocpp_storage_failing", error=error)
        else:
            event(log, logging.INFO, "ocpp_storage_recovered")
            self._tasks.spawn(asyncio.to_thread(self._outbox.reserve_space), "outbox reserve")
        self._tasks.spawn(self._notify_problem(error), "storage problem report")

    async def _notify_problem(self, error: str | None) -> None:
        code = "StorageFull" if error is not None else "StorageRecovered"
        stamp, event_id = self._timestamp(), await self.event_ids.next()
        data: messages.NotifyEventUpdate = {
            "event_id": event_id,
            "timestamp": stamp,
            "tech_code": code,
            "tech_info": (error or "")[:500],
        }
        self._bus.publish(messages.NOTIFY_EVENT_UPDATE.make(data))
        if (session := self._registered_session()) is not None:
            report = {
                "eventId": event_id,
                "timestamp": stamp,
                "trigger": "Alerting" if error is not None else "Delta",
                "actualValue": "true" if error is not None else "false",
                "techCode": code,
                "eventNotificationType": "HardWiredMonitor",
                "component": {"name": "ChargingStation"},
                "variable": {"name": "Problem"},
            }
            if error is not None:
                report["techInfo"] = error[:500]
            payload = {"generatedAt": stamp, "seqNo": 0, "eventData": [report]}
            await session.call_quietly("NotifyEvent", payload)

    def _settle_soon(self, evse: int) -> None:
        if evse not in self._unsettled:
            self._unsettled.add(evse)
            asyncio.get_running_loop().call_soon(self._settle, evse)

    def _settle(self, evse: int) -> None:
        self._unsettled.discard(evse)
        self._emit(evse, self.tx.settle(evse))

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
                with contextlib.suppress(StorageFull):  # counted in memory below anyway
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
                    await self._ack(entry.seq)
                else:
                    await asyncio.sleep(
                        self.dm.integer(
                            "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"
                        )
                        * (entry.attempts + 1)
                    )
                continue
            self._answered.add(entry.seq)  # at once: the CSMS may ask about it right now
            await self._ack(entry.seq)
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
            await self.firmware.restore()
            if self.firmware.rebooted_for_update:
                self._boot_reason = "FirmwareUpdate"
            self.dm.assign("LocalAuthListCtrlr", "Entries", str(len(self.local_list)))
            self._apply_device_model()
            await self._restore()
            await self._startup_security_event()
            self._loaded.set()
        parts = {
            asyncio.create_task(self._write_forever(), name="ocpp outbox writer"),
            asyncio.create_task(
                self.meter.clock_aligned_forever(self.evses()), name="ocpp aligned data"
            ),
            asyncio.create_task(
                self.link.run(self._serve, self._connection_lost), name="ocpp connection"
            ),
        }
        try:
            done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in parts:
                task.cancel()
            await asyncio.wait(parts, timeout=5.0)

    def _registered_session(self) -> Session | None:
        return self._session if self.registered else None

    def _connection_lost(self) -> None:
        if self.registered:
            self.status.went_offline()
        self._session = None
        self.registered = False
        self._boot_settled.set()
        self.tx.online = False
        self._publish_ws_status(connected=False)

    async def _startup_security_event(self) -> None:
        """A04: every start of the firmware is a security event the CSMS hears of."""
        kind = "StartupOfTheDevice" if self._boot_reason == "PowerUp" else "ResetOrReboot"
        events = [(kind, self._boot_reason)]
        # not one of the spec's listed types (none fits): a corrupt state file was moved
        # aside and the station started afresh with defaults, which the operator must know
        events += [("StateDatabaseRecovered", f"moved aside: {p}") for p in self._recovered_files]
        for kind, info in events:
            await self._queue_security_event(kind, info)

    async def _queue_security_event(self, kind: str, info: str) -> None:
        """A security event (A04): kept in the security log; a critical one (Part 2
        Appendix "Security events") is also committed to the outbox and sent in order."""
        stamp = self._timestamp()
        await self.security_log.record(kind, stamp, info)
        if not notified(kind):
            return
        payload = {"type": kind, "timestamp": stamp, "techInfo": info[:255]}
        try:
            await self._outbox.put("SecurityEventNotification", payload)
        except StorageFull as exc:
            self._storage_problem(str(exc))

    async def _security_reconfigured(self, what: str) -> None:
        """A01 and the other SecurityCtrlr settings: ReconfigurationOfSecurityParameters,
        not critical, so in the security log only; `what` names the variable, never its
        value."""
        await self._queue_security_event("ReconfigurationOfSecurityParameters", what)

    async def _exchanges_settled(self) -> None:
        if self._session is not None:
            await self._session.settled()

    async def _serve(self, ws: ClientConnection) -> None:
        session = Session(
            ws, self._handlers(), call_timeout_s=self._s.call_timeout_s, tasks=self._tasks
        )
        resumed = self._accepted_by == self.link.profile
        self._session, self._boot_status = session, "Accepted" if resumed else None
        self._boot_settled.clear()  # until registered (or refused): see `_decide`
        event(log, logging.INFO, "ocpp_connected", url=self.link.url())
        self._publish_ws_status(connected=True)
        reader = asyncio.create_task(session.serve())
        work = asyncio.create_task(self._boot_and_heartbeat(session))
        try:
            done, _ = await asyncio.wait({reader, work}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raises ConnectionClosed and friends
        except asyncio.CancelledError:
            # The station is shutting down: say so (1001), not "internal error" (1011).
            with contextlib.suppress(Exception):
                async with asyncio.timeout(GOING_AWAY_TIMEOUT_S):
                    await ws.close(code=1001, reason="going away")
            raise
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
            **self.variables.handlers(),
            **self.firmware.handlers(),
            "SendLocalList": self._on_send_local_list,
            "GetLocalListVersion": self._on_get_local_list_version,
            "ClearCache": self._on_clear_cache,
            "SetNetworkProfile": self.link.on_set_network_profile,
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
        self.variables.check_items(len(payload.get("localAuthorizationList", [])), None)
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
                self._stopped(c.ocpp_evse_id, self.tx.deauthorized(c.ocpp_evse_id))
                self._tasks.spawn(self._stop_charging(c.evse_id), "stop charging")
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
            self._tasks.spawn(self._stop_charging(connector.evse_id), "stop charging")

    # ------------------------------------------------------------------ device model

    def _device_model_changed(self) -> None:
        self._apply_device_model()
        for listener in self._dm_listeners:
            listener.set()

    def _apply_device_model(self) -> None:
        """Settings the device model governs, read again after every change."""
        self.tx.settings = TxSettings(
            self.dm.members("TxCtrlr", "TxStartPoint"), self.dm.members("TxCtrlr", "TxStopPoint")
        )

    # ------------------------------------------------------------------ provisioning

    async def _boot_and_heartbeat(self, session: Session) -> None:
        if self._accepted_by != self.link.profile:
            # B01: once per start and CSMS; back with the CSMS that accepted this start,
            # the station carries on without one (B04, TC_B_51/57, TC_E_40)
            interval = await self._boot(session)
            self.dm.assign("OCPPCommCtrlr", "HeartbeatInterval", str(int(interval)))
            await self.link.settle()
            self._accepted_by = self.link.profile
            if self._boot_reason != "PowerUp":
                self._boot_reason = "PowerUp"  # told; a later power cut is a power-up again
                await self._save_station_state()
        self.registered = True
        self._boot_settled.set()
        self.tx.online = True
        self.firmware.registered()
        sender = asyncio.create_task(self._send_outbox(session))
        try:
            await self.status.catch_up(session, self.link.profile)
            while True:
                # A changed HeartbeatInterval takes effect at once, not after the old one.
                self._dm_changed.clear()
                interval_s = self.dm.integer("OCPPCommCtrlr", "HeartbeatInterval")
                if await wait_event(self._dm_changed, interval_s):
                    continue
                reply = await session.call_quietly("Heartbeat", {})
                if reply is not None:
                    self._sync_clock(reply["currentTime"])
        finally:
            sender.cancel()

    async def _boot(self, session: Session) -> float:
        """B01-B03: repeats BootNotification until Accepted; returns the heartbeat interval."""
        while True:
            self._boot_settled.clear()
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
                self._boot_settled.set()
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
            # Pending or Rejected: send nothing else, try again after the interval, or
            # at once when the CSMS triggers it (Pending: F06.FR.17, TC_B_02 step 15)
            self._boot_settled.set()
            self._boot_now.clear()
            await wait_event(self._boot_now, interval if interval > 0 else DEFAULT_BOOT_RETRY_S)

    def _station_time(self) -> float:
        """Now, on the CSMS's clock (G02: Heartbeat and BootNotification set it), in
        seconds since the epoch: the station's time wherever it tells one."""
        return self._wall_clock() + self.clock_offset_s

    def _timestamp_at(self, seconds: float) -> str:
        """An instant of the station's time (`_station_time`) as an OCPP timestamp."""
        return api.timestamp(datetime.fromtimestamp(seconds, UTC))

    def _timestamp(self) -> str:
        return self._timestamp_at(self._station_time())

    def _sync_clock(self, csms_time: str) -> None:
        theirs = datetime.fromisoformat(csms_time.replace("Z", "+00:00")).timestamp()
        offset_s, self.clock_offset_s = self.clock_offset_s, theirs - self._wall_clock()
        if offset_s != self.clock_offset_s:
            self.meter.replan.set()  # the clock-aligned boundaries move with the clock

    # ------------------------------------------------------------------ availability

    # ------------------------------------------------------------------ authorization

    async def _authorize(self, message: Message[messages.AuthorizationRequest]) -> None:
        token_type = str(message.data["token_type"])
        id_token = {
            "idToken": str(message.data.get("id_token", "")),
            "type": TOKEN_TYPES.get(token_type, "Local"),
        }
        if (problem := malformed_token(id_token)) is not None:
            # refused here: a CSMS answers a malformed token with a CALLERROR, no verdict
            event(log, logging.WARNING, "token_refused", token_type=token_type, reason=problem)
            self._bus.publish(message.reply({"status": "rejected"}))
            return
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
        if ongoing and same_token:
            accepted = True  # E07: its own idToken ends a transaction, even one found Invalid
        if accepted and ongoing and owner is not None and not (same_token or same_group):
            accepted = False  # C01.FR.03: another driver's card neither stops nor takes over
        self._bus.publish(message.reply({"status": "accepted" if accepted else "rejected"}))
        if not accepted or connector is None or evse is None:
            return
        if ongoing and (same_token or same_group):
            # The same token (E07) or one of its group (C09.FR.03) ends the session, as
            # Josev does: stop_charging.
            self._stopped(evse, self.tx.stop_authorized(evse))
            self._tasks.spawn(self._stop_charging(connector.evse_id), "stop charging")
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
            self._groups.pop(evse, None)  # the lapsed authorization's group goes with it
            self._emit(evse, self.tx.connection_timed_out(evse))
            self._tasks.spawn(self._stop_charging(connector.evse_id), "stop charging")

        timeout_s = self.dm.integer("TxCtrlr", "EVConnectionTimeOut")
        asyncio.get_running_loop().call_later(timeout_s, lapse)

    def _stop_all(self, reason: str) -> None:
        for c in self._s.connectors:
            if self.tx.transaction_id(c.ocpp_evse_id) is not None:
                self._stopped(
                    c.ocpp_evse_id, self.tx.stop_authorized(c.ocpp_evse_id, reason=reason)
                )
                self._tasks.spawn(self._stop_charging(c.evse_id), "stop charging")

    async def _decide(self, token_type: str, id_token: dict[str, Any]) -> dict[str, Any] | None:
        if self._session is not None:
            # connected, the BootNotification on its way: a card presented in those
            # milliseconds waits for the CSMS rather than meeting the offline rules
            await wait_event(self._boot_settled, self._s.call_timeout_s)
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
        """F01/F02: the CSMS authorizes a token on an EVSE; the CS hears it on the bus.
        Not before the boot is accepted: while it is Pending the station takes its
        configuration, but starts no transaction (B02.FR.02/03, TC_B_02 step 12)."""
        if self._boot_status != "Accepted":
            return {"status": "Rejected"}
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
        self._groups[evse] = payload.get("groupIdToken")  # F01: the group it starts with
        self._authorized(connector, payload["idToken"], payload["remoteStartId"])
        self._bus.publish(
            messages.AUTHORIZATION_UPDATE.make(
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
        self._stopped(evse, self.tx.stop_authorized(evse, remote=True))
        self._tasks.spawn(self._stop_charging(connector.evse_id), "stop charging")
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
        """B12: the transaction ends for an Immediate reset; while energy flows, its
        Ended event follows the opening of the power path (the CS's reset, or
        `stop_energy`)."""
        self._stopped(ocpp_evse_id, self.tx.end_for_reset(ocpp_evse_id))

    async def stop_energy(self, ocpp_evse_id: int) -> None:
        """Stops the energy transfer of an ending transaction and returns once its Ended
        event is committed to the outbox, so it survives the reset that follows (at the
        latest after the message timeout, `_stopped`, and the final reading's)."""
        evse_id = self.evse_id(ocpp_evse_id)
        if evse_id is None:
            return
        if self.tx.ending(ocpp_evse_id):
            self._tasks.spawn(self._stop_charging(evse_id), "stop charging")
        elif not self._ended_queued.get(ocpp_evse_id):
            return  # no Ended event on its way
        ended = asyncio.get_running_loop().create_future()
        waiters = self._ended_waiters.setdefault(ocpp_evse_id, [])
        waiters.append(ended)
        try:
            async with asyncio.timeout(self._s.call_timeout_s + FINAL_READING_TIMEOUT_S):
                await ended
        except TimeoutError:
            event(log, logging.WARNING, "ocpp_reset_before_ended_committed", evse=ocpp_evse_id)
        finally:
            if ended in waiters:
                waiters.remove(ended)
            if not waiters and self._ended_waiters.get(ocpp_evse_id) is waiters:
                del self._ended_waiters[ocpp_evse_id]

    async def _store_tx_profile(self, evse: int, profile: dict[str, Any]) -> None:
        """F01.FR.08: the TxProfile of a remote start, kept (on disk) for smart charging,
        which will apply it; until then the station charges at its own limits."""
        self.charging_profiles[evse] = profile
        if self._state is not None:
            stored = {str(e): p for e, p in self.charging_profiles.items()}
            await self._state.put(_CHARGING_PROFILES, stored)

    def reset_retries(self) -> int:
        return self.dm.integer("OCPPCommCtrlr", "ResetRetries")

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
        self.status.restore_unavailable({int(e) for e in saved.get("unavailable", [])})

    async def _save_station_state(self) -> None:
        if self._state is None:
            return
        async with self._state_lock:  # the last write holds the latest state
            await self._state.put(
                _STATION_STATE,
                {
                    "unavailable": sorted(self.status.unavailable),
                    "boot_reason": self._next_boot_reason,
                },
            )

    def set_available(
        self, ocpp_evse_id: int, available: bool, *, report_unchanged: bool = False
    ) -> None:
        """G03/G04: the connectors report Unavailable (or their real status again);
        `report_unchanged`: also those whose status stays (StatusReporter.set_available)."""
        self.status.set_available(ocpp_evse_id, available, report_unchanged=report_unchanged)
        self._tasks.spawn(self._save_station_state(), "save availability")

    def schedule_unavailable(self, ocpp_evse_ids: list[int]) -> None:
        self.status.scheduled_unavailable.update(ocpp_evse_ids)

    def unschedule_unavailable(self, ocpp_evse_ids: list[int]) -> None:
        self.status.scheduled_unavailable.difference_update(ocpp_evse_ids)

    def trigger(
        self, message: str, ocpp_evse_id: int | None, connector_id: int | None = None
    ) -> str:
        """F06: sends the requested message; returns the TriggerMessage answer."""
        session = self._session
        if session is None:
            return "Rejected"
        wanted = [e for e in self.evses() if ocpp_evse_id in (None, e)]
        if not wanted:
            return "Rejected"  # no such EVSE
        if connector_id is not None and not (
            ocpp_evse_id is not None and self.has_connector(ocpp_evse_id, connector_id)
        ):
            return "Rejected"  # no such connector
        if message == "BootNotification":
            if self.registered:
                return "Rejected"  # F06.FR.17
            self._boot_now.set()  # the Pending boot's next BootNotification goes now
            return "Accepted"
        if message == "Heartbeat":
            self._tasks.spawn(session.call_quietly("Heartbeat", {}), "triggered Heartbeat")
        elif message == "StatusNotification":
            self.status.trigger(session, wanted, connector_id)
        elif message == "TransactionEvent":
            for evse in wanted:
                self._emit(evse, self.tx.trigger(evse))
        elif message == "MeterValues":
            for evse in wanted:
                self.meter.send(session, evse, "Trigger")
        elif message == "FirmwareStatusNotification":
            self.firmware.trigger(session)  # the last status sent (L01.FR.25, .26)
        elif message == "LogStatusNotification":
            # no log upload runs (it comes later): Idle
            self._tasks.spawn(session.call_quietly(message, {"status": "Idle"}), "triggered status")
        else:
            return "NotImplemented"
        return "Accepted"

    async def _data_transfer_to_csms(self, message: Message[messages.DataTransferRequest]) -> None:
        """P02: the CS's data_transfer to the CSMS, the answer back on the bus."""
        session, reply = self._registered_session(), None
        if session is not None:
            payload: dict[str, Any] = {"vendorId": message.data["vendor_id"]}
            if "message_id" in message.data:
                payload["messageId"] = message.data["message_id"]
            if "data" in message.data:
                payload["data"] = message.data["data"]
            reply = await session.call_quietly("DataTransfer", payload)
        data: dict[str, Any] = {"status": "rejected"}
        if reply is not None:
            data["status"] = _DATA_TRANSFER_TO_JOSEV[reply["status"]]
            if "data" in reply:
                data["data"] = reply["data"]
        self._bus.publish(message.reply(data))

    async def _stop_charging(self, evse_id: str) -> None:
        request = messages.STOP_CHARGING_REQUEST.make({"evse_id": evse_id})
        with contextlib.suppress(TimeoutError):
            await self._bus.request(request, self._s.call_timeout_s)
