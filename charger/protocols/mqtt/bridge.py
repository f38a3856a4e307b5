"""Mirrors the bus to MQTT and injects what arrives from it, through bounded queues.

Every message published on the bus by this process goes to the broker on its
`sender/receiver` topic. Messages other clients publish on the Josev API topics are
decoded, validated against the schemas and injected into the bus; invalid ones are
logged with the reason and, where the message form has one, answered with an error
response. MQTT v5 "no local" subscriptions keep our own publications from coming back,
so nothing is delivered twice. The simulator's `sim/...` topics are not subscribed.

Flow control (docs/reliability.md, "A flood on the bus") — every queue between the
broker and the services is bounded, each with its policy:

Who sends. MQTT tells a subscriber nothing about the client that published. The topic
names the sending side (`josev` on josev/cs, `cs` on cs/josev, ...), and the broker's
ACL lets only that side's role publish there (credentials.py: josev/cs is the `josev`
role's, cs/josev the `cs` role's in remote mode; the charger's own role writes every
API topic but "no local" hides its own messages). So a *sender* here is the topic's
first level: a role, not a client. Two tools logged in as `josev` share one budget;
nothing on MQTT could tell them apart.

Incoming. The link reads at most 16 KiB per event-loop turn and hands each message to
`_on_mqtt_message` at once, which decodes, validates and classifies it and puts it in
its sender's queue (at most `INBOX_MESSAGES` messages and `INBOX_BYTES` bytes). A
worker injects queued messages into the bus, the senders in turn, each within its
budget (`SENDER_RATE_PER_S` messages a second, `SENDER_BURST` at once), in slices of
at most `SLICE_S` before the loop gets its turn back; it waits while the outbox is
above `OUTBOX_HIGH` (the answers to what it injects must have room). A sender's
queue that is full drops, oldest first:
- read-only requests (`QUERIES`): they go unanswered;
- snapshot updates (`SNAPSHOTS`), whose newest says all: a newer one of the same form
  and EVSE always replaces a queued older one (coalesced);
- invalid requests waiting for their error response.
Everything else — requests that act (cp_pwm, stop_charging, cs_contactor_status, ...),
responses, and event updates (authorization, cp_status, cs_contactor_status,
notify_event, ...) — is never dropped here: while only such messages overfill a queue,
the bridge stops reading the socket (backpressure: the broker holds what comes, within
its per-client limit of `broker.MAX_QUEUED_MESSAGES`) until every queue is half empty.

Outgoing. What the process publishes waits in the outbox (at most `OUTBOX_MESSAGES` and
`OUTBOX_BYTES`) until the socket takes it. A snapshot update replaces a queued older
one of the same form, topic and EVSE. Responses, requests and every other update
(cp_status, cs_contactor_status, ...) are never coalesced; if the outbox is full they
go only when no snapshot is left to drop — a hard memory bound reached only when the
broker is away for long, each such loss logged as an error.

Everything dropped, coalesced or rejected is counted (`stats()`); the first drop of
each sender per `REPORT_S` window is logged at once, rejected messages are logged in
full up to `REJECTS_LOGGED` per sender and window, and the counts are summed up in one
line per sender (`mqtt_bus_pressure`; `mqtt_outbox_pressure` for the outbox) a second
after the last of them, or every `REPORT_S` while they go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from charger.bus import Bus, api
from charger.bus.api import ApiError, Message
from charger.bus.messages import FORMS
from charger.protocols.mqtt.connection import MQTT_TIMEOUT_S, BrokerAddress, Link, keep_linked
from charger.runtime.log import event
from charger.runtime.ratelimit import LogBudget, TokenBucket
from charger.runtime.tasks import wait_event

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 1.0
# The Josev API topics; each one's first level is its sender.
API_TOPICS = tuple(sorted({t for form in FORMS.values() for t in form.topics}))
# Requests that only read: under a flood the oldest may go unanswered.
QUERIES = frozenset(
    {
        "cs_status_and_limits",
        "cs_parameters",
        "device_model",
        "meter_values",
        "service_status",
        "websocket_status",
    }
)
# Updates that carry a whole state: a newer one (same form, topic, EVSE) says all.
SNAPSHOTS = frozenset(
    {
        "cs_status_and_limits",
        "meter_values",
        "display_params",
        "cost_updated",
        "service_status",
        "websocket_status",
    }
)
INBOX_MESSAGES = 256  # per sender
INBOX_BYTES = 2 * 1024 * 1024  # per sender, as received
SENDER_RATE_PER_S = 5000.0
SENDER_BURST = 500.0
SLICE_S = 0.002  # the worker gives the loop back at least this often
OUTBOX_MESSAGES = 10_000
OUTBOX_BYTES = 4 * 1024 * 1024
OUTBOX_HIGH = 1000  # above it the worker injects nothing (while connected)...
OUTBOX_LOW = 250  # ...until it is down to this
WRITE_BATCH_BYTES = 64 * 1024
REPORT_S = 10.0  # the window of the log budgets, and of summaries while a flood lasts
REPORT_QUIET_S = 1.0  # a summary follows this long after the last rejection or drop
REJECTS_LOGGED = 10  # per sender and window, in full


@dataclass(slots=True, eq=False)
class _Entry:
    """A message waiting in a queue; `alive` is cleared when it is dropped or taken."""

    size: int
    droppable: bool
    key: tuple[str, str, Any] | None  # snapshots: what a newer one replaces
    message: Message[Any] | None = None  # incoming: to inject
    topic: str = ""  # incoming invalid request: where its error response goes...
    envelope: Any = None  # ...its decoded envelope...
    reason: str = ""  # ...and what is wrong with it
    payload: bytes = b""  # outgoing
    alive: bool = True


class _Queue:
    """FIFO of entries with a bound in messages and bytes. A snapshot replaces a queued
    one with its key; over the bound the oldest droppable entry goes. Dropped entries
    are only marked; the deques are compacted when the dead outnumber the living."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._entries: deque[_Entry] = deque()
        self._droppable: deque[_Entry] = deque()
        self._latest: dict[tuple[str, str, Any], _Entry] = {}
        self.count = 0
        self.bytes = 0
        self.kept = 0  # entries that are never dropped

    def __len__(self) -> int:
        return self.count

    @property
    def over(self) -> bool:
        return self.count > self.max_messages or self.bytes > self.max_bytes

    @property
    def below_half(self) -> bool:
        return self.count <= self.max_messages // 2 and self.bytes <= self.max_bytes // 2

    def push(self, entry: _Entry) -> tuple[int, list[_Entry]]:
        """Queues `entry`; returns (entries coalesced, entries dropped for room)."""
        coalesced = 0
        if entry.key is not None:
            older = self._latest.get(entry.key)
            if older is not None and older.alive:
                self._remove(older)
                coalesced = 1
            self._latest[entry.key] = entry
        self._entries.append(entry)
        self.count += 1
        self.bytes += entry.size
        if entry.droppable:
            self._droppable.append(entry)
        else:
            self.kept += 1
        dropped = []
        while self.over:
            victim = self._oldest_droppable()
            if victim is None:
                break
            self._remove(victim)
            dropped.append(victim)
        if len(self._entries) > 2 * self.count + 64:
            self._entries = deque(e for e in self._entries if e.alive)
        if len(self._droppable) > 2 * self.count + 64:
            self._droppable = deque(e for e in self._droppable if e.alive)
        return coalesced, dropped

    def pop(self) -> _Entry | None:
        while self._entries:
            entry = self._entries.popleft()
            if entry.alive:
                self._remove(entry)
                return entry
        return None

    def _oldest_droppable(self) -> _Entry | None:
        while self._droppable:
            entry = self._droppable.popleft()
            if entry.alive:
                return entry
        return None

    def _remove(self, entry: _Entry) -> None:
        entry.alive = False
        self.count -= 1
        self.bytes -= entry.size
        if not entry.droppable:
            self.kept -= 1
        if entry.key is not None and self._latest.get(entry.key) is entry:
            del self._latest[entry.key]


@dataclass
class _Tally:
    received: int = 0
    rejected: int = 0
    dropped: int = 0
    coalesced: int = 0
    paused: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "coalesced": self.coalesced,
            "paused": self.paused,
        }


@dataclass
class _OutTally:
    sent: int = 0
    coalesced: int = 0
    dropped: int = 0  # snapshot updates dropped for room
    dropped_kept: int = 0  # the hard bound's losses


@dataclass(eq=False)
class _Sender:
    name: str
    queue: _Queue = field(default_factory=lambda: _Queue(INBOX_MESSAGES, INBOX_BYTES))
    budget: TokenBucket = field(
        default_factory=lambda: TokenBucket(SENDER_RATE_PER_S, SENDER_BURST)
    )
    tally: _Tally = field(default_factory=_Tally)
    reported: _Tally = field(default_factory=_Tally)  # the tally at the last report
    rejects: LogBudget = field(default_factory=lambda: LogBudget(REJECTS_LOGGED, REPORT_S))
    drops: LogBudget = field(default_factory=lambda: LogBudget(1, REPORT_S))


class MqttBridge:
    def __init__(self, bus: Bus, broker: BrokerAddress) -> None:
        self._bus = bus
        self._broker = broker
        self._senders = {
            name: _Sender(name) for name in sorted({t.split("/")[0] for t in API_TOPICS})
        }
        self._turns = deque(self._senders.values())  # whose turn it is, round robin
        self._inbox_ready = asyncio.Event()  # set while any sender's queue holds something
        self._outbox = _Queue(OUTBOX_MESSAGES, OUTBOX_BYTES)
        self._outbox_ready = asyncio.Event()
        self._outbox_room = asyncio.Event()  # cleared above OUTBOX_HIGH until OUTBOX_LOW
        self._outbox_room.set()
        self._drained = asyncio.Event()  # set whenever the outbox has been emptied
        self._out = _OutTally()
        self._out_reported = _OutTally()
        self._out_drops = LogBudget(1, REPORT_S)
        self._link: Link | None = None
        self.connected = asyncio.Event()
        bus.subscribe_all(self._on_bus_message)

    def stats(self) -> dict[str, Any]:
        """Counters since start: per sender (received, rejected, dropped, coalesced,
        paused), the outbox's (sent, coalesced, dropped, dropped_kept) and queue sizes."""
        return {
            "senders": {n: s.tally.as_dict() for n, s in self._senders.items()},
            "inbox": sum(len(s.queue) for s in self._senders.values()),
            "outbox": len(self._outbox),
            "sent": self._out.sent,
            "coalesced_out": self._out.coalesced,
            "dropped_out": self._out.dropped,
            "dropped_out_kept": self._out.dropped_kept,
        }

    # ------------------------------------------------------------------ outgoing

    def _on_bus_message(self, message: Message[Any]) -> None:
        if message.origin == "mqtt":
            return  # came from the broker; sending it back would duplicate it
        payload = message.to_json()
        snapshot = message.type == "update" and message.name in SNAPSHOTS
        entry = _Entry(
            size=len(payload),
            droppable=snapshot,
            key=(message.topic, message.name, _subject(message.data)) if snapshot else None,
            message=message,
            payload=payload,
        )
        coalesced, dropped = self._outbox.push(entry)
        self._out.coalesced += coalesced
        self._out.dropped += len(dropped)
        while self._outbox.over:  # only kept messages left: the hard bound
            lost = self._outbox.pop()
            if lost is None:
                break
            self._out.dropped_kept += 1
            if self._out_drops.allow():
                event(
                    log,
                    logging.ERROR,
                    "mqtt_outbox_full",
                    dropped=f"{lost.message.name}.{lost.message.type}" if lost.message else "",
                    topic=lost.message.topic if lost.message else "",
                    dropped_total=self._out.dropped_kept,
                    queued=len(self._outbox),
                )
        if dropped and self._out_drops.allow():
            event(
                log,
                logging.WARNING,
                "mqtt_outbox_dropped",
                policy="oldest snapshot update",
                dropped_total=self._out.dropped,
                queued=len(self._outbox),
            )
        if len(self._outbox) > OUTBOX_HIGH:
            self._outbox_room.clear()
        self._outbox_ready.set()

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Waits (at most `timeout_s`) until what was published so far has left."""
        if not self.connected.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                if len(self._outbox):
                    self._drained.clear()
                    await self._drained.wait()
                if self._link is not None:
                    await self._link.drain()

    async def _send(self, link: Link) -> None:
        outbox = self._outbox
        while True:
            await self._outbox_ready.wait()
            while len(outbox):
                if not link.writable.is_set():
                    await link.writable.wait()
                if not link.open:
                    return
                batch, size = [], 0
                while size < WRITE_BATCH_BYTES and (entry := outbox.pop()) is not None:
                    assert entry.message is not None
                    batch.append((entry.message.topic, entry.payload))
                    size += entry.size
                link.publish_many(batch)
                self._out.sent += len(batch)
                if len(outbox) <= OUTBOX_LOW:
                    self._outbox_room.set()
                await asyncio.sleep(0)  # one batch per loop turn
            self._outbox_ready.clear()
            self._outbox_room.set()
            self._drained.set()

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connects, and reconnects with backoff whenever the broker goes away; injects
        and reports meanwhile."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._inject())
            tasks.create_task(self._report())
            await keep_linked(self._broker, "charger", self._session, self.connected)

    async def _session(self, link: Link) -> None:
        link.on_message = self._on_mqtt_message
        await link.subscribe(API_TOPICS, no_local=True)
        self._link = link
        if any(s.queue.over for s in self._senders.values()):
            link.pause_reading()
        self.connected.set()
        event(log, logging.INFO, "mqtt_connected", broker=str(self._broker))
        sender = asyncio.create_task(self._send(link))
        try:
            done, _ = await asyncio.wait({sender, link.lost}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                sender.result()  # its failure, if it failed
            await link.lost  # raises LinkError
        finally:
            self._link = None
            sender.cancel()
            await asyncio.wait({sender}, timeout=MQTT_TIMEOUT_S)

    # ------------------------------------------------------------------ incoming

    def _on_mqtt_message(self, topic: str, payload: bytes) -> None:
        sender = self._senders.get(topic.partition("/")[0])
        if sender is None:
            return  # not a Josev API topic (not subscribed)
        sender.tally.received += 1
        try:
            envelope = api.decode(payload)
        except ApiError as exc:
            self._reject(sender, topic, payload, str(exc))
            return
        try:
            message = _message(envelope, topic)
        except ApiError as exc:
            self._reject(sender, topic, payload, str(exc))
            if isinstance(envelope, dict) and envelope.get("type") == "request":
                entry = _Entry(
                    len(payload), True, None, topic=topic, envelope=envelope, reason=str(exc)
                )
                self._queue(sender, entry)
            return
        droppable = (message.type == "request" and message.name in QUERIES) or (
            message.type == "update" and message.name in SNAPSHOTS
        )
        key = None
        if message.type == "update" and message.name in SNAPSHOTS:
            key = (topic, message.name, _subject(message.data))
        self._queue(sender, _Entry(len(payload), droppable, key, message))

    def _queue(self, sender: _Sender, entry: _Entry) -> None:
        coalesced, dropped = sender.queue.push(entry)
        sender.tally.coalesced += coalesced
        if dropped:
            sender.tally.dropped += len(dropped)
            if sender.drops.allow():
                victim = dropped[0]
                event(
                    log,
                    logging.WARNING,
                    "mqtt_message_dropped",
                    sender=sender.name,
                    policy="sender's queue full: oldest read-only request, snapshot "
                    "or error reply first",
                    dropped=_form(victim),
                    dropped_total=sender.tally.dropped,
                    queued=len(sender.queue),
                )
        if sender.queue.over and self._link is not None and self._link.reading:
            self._link.pause_reading()
            sender.tally.paused += 1
            if sender.drops.allow():
                event(
                    log,
                    logging.WARNING,
                    "mqtt_reading_paused",
                    sender=sender.name,
                    reason="its queue is full of messages that are never dropped",
                    queued=len(sender.queue),
                )
        self._inbox_ready.set()

    def _reject(self, sender: _Sender, topic: str, raw: bytes, reason: str) -> None:
        sender.tally.rejected += 1
        if sender.rejects.allow():
            event(
                log,
                logging.WARNING,
                "mqtt_message_rejected",
                topic=topic,
                reason=reason,
                payload=raw[:200].decode(errors="replace"),
            )

    async def _inject(self) -> None:
        """Injects queued messages into the bus: senders in turn, within budgets, in
        slices; waits while the outbox has no room for the answers."""
        while True:
            await self._inbox_ready.wait()
            while self.connected.is_set() and not self._outbox_room.is_set():
                await wait_event(self._outbox_room, 0.1)
            deadline = time.monotonic() + SLICE_S
            wait_s: float | None = None
            while True:
                entry, wait_s = self._next()
                if entry is None:
                    break
                self._inject_one(entry)
                if time.monotonic() >= deadline or not self._outbox_room.is_set():
                    break
            link = self._link
            if (
                link is not None
                and not link.reading
                and all(s.queue.below_half for s in self._senders.values())
            ):
                link.resume_reading()
            if entry is None:
                if wait_s is None:
                    self._inbox_ready.clear()
                    continue
                await asyncio.sleep(wait_s)  # every sender with work is over budget
            else:
                await asyncio.sleep(0)

    def _next(self) -> tuple[_Entry | None, float | None]:
        """The next entry (the senders in turn, each within its budget); else None and
        how long until a sender with work has budget again (None: no work)."""
        wait_s: float | None = None
        turns = self._turns
        for _ in range(len(turns)):
            sender = turns[0]
            turns.rotate(-1)
            if not len(sender.queue):
                continue
            if sender.budget.take():
                return sender.queue.pop(), None
            due = sender.budget.wait_s()
            wait_s = due if wait_s is None else min(wait_s, due)
        return None, wait_s

    def _inject_one(self, entry: _Entry) -> None:
        if entry.message is not None:
            self._bus.publish(entry.message)
            return
        reply = api.error_response(entry.envelope, entry.topic, entry.reason)
        if reply is not None:
            self._bus.publish(reply)

    # ------------------------------------------------------------------ reporting

    async def _report(self) -> None:
        """A summary line per sender (and one for the outbox) once anything was
        rejected, dropped, coalesced or paused: when a second passes without more, or
        every `REPORT_S` while it goes on."""
        last_tick = {name: _Tally() for name in self._senders}
        out_tick = _OutTally()
        reported_at = dict.fromkeys([*self._senders, ""], time.monotonic())
        while True:
            await asyncio.sleep(REPORT_QUIET_S)
            now = time.monotonic()
            for name, sender in self._senders.items():
                tally, last = sender.tally, sender.reported
                pressure = _pressure(tally)
                changing = pressure != _pressure(last_tick[name])
                last_tick[name] = dataclasses.replace(tally)
                if pressure == _pressure(last) or (changing and now - reported_at[name] < REPORT_S):
                    continue
                event(
                    log,
                    logging.WARNING,
                    "mqtt_bus_pressure",
                    sender=name,
                    for_s=round(now - reported_at[name], 1),
                    received=tally.received - last.received,
                    rejected=tally.rejected - last.rejected,
                    rejected_not_logged=sender.rejects.take_unlogged(),
                    dropped=tally.dropped - last.dropped,
                    coalesced=tally.coalesced - last.coalesced,
                    paused=tally.paused - last.paused,
                    queued=len(sender.queue),
                )
                sender.reported = dataclasses.replace(tally)
                reported_at[name] = now
            out, last_out = self._out, self._out_reported
            changing = _pressure(out) != _pressure(out_tick)
            out_tick = dataclasses.replace(out)
            if _pressure(out) == _pressure(last_out) or (
                changing and now - reported_at[""] < REPORT_S
            ):
                continue
            event(
                log,
                logging.WARNING,
                "mqtt_outbox_pressure",
                for_s=round(now - reported_at[""], 1),
                sent=out.sent - last_out.sent,
                coalesced=out.coalesced - last_out.coalesced,
                dropped=out.dropped - last_out.dropped,
                dropped_kept=out.dropped_kept - last_out.dropped_kept,
                queued=len(self._outbox),
            )
            self._out_reported = dataclasses.replace(out)
            reported_at[""] = now


def _pressure(tally: _Tally | _OutTally) -> tuple[int, ...]:
    """The counters that make a summary worth a line."""
    if isinstance(tally, _Tally):
        return (tally.rejected, tally.dropped, tally.coalesced, tally.paused)
    return (tally.coalesced, tally.dropped, tally.dropped_kept)


def _subject(data: Any) -> Any:
    """What a snapshot update is about: its EVSE (or service), None for the station."""
    if isinstance(data, dict):
        return data.get("evse_id", data.get("service"))
    return None


def _form(entry: _Entry) -> str:
    if entry.message is not None:
        return f"{entry.message.name}.{entry.message.type}"
    envelope = entry.envelope if isinstance(entry.envelope, dict) else {}
    return f"{envelope.get('name')}.{envelope.get('type')} (invalid)"


def _message(envelope: Any, topic: str) -> Message[Any]:
    """The message a decoded envelope on `topic` makes, validated (as `api.parse`)."""
    api.validate(envelope)
    name, type_ = envelope["name"], envelope["type"]
    allowed = api.topics(name, type_)
    if topic not in allowed:
        raise ApiError(
            f"{name}.{type_} is not allowed on topic {topic} (allowed: {', '.join(allowed)})"
        )
    sender, receiver = topic.split("/", 1)
    return Message(
        name, type_, envelope["data"], sender, receiver, id=envelope["id"], origin="mqtt"
    )
