"""One MQTT client connection kept up for as long as its owner runs.

`keep_connected` runs a session on a fresh connection, and reconnects with backoff
whenever the broker goes away; the simulator's command service and the tools keep an
aiomqtt connection this way. Such a client holds at most `AIOMQTT_QUEUE` unread
messages: past that the oldest is dropped (counted in a line every 10 s at most), so
what is sent after a flood is still read. A `BrokerAddress` says where the broker is
(TCP host and port, or a Unix socket) and which credentials to log in with.

The MQTT bridge, which carries every bus message, keeps a `Link` instead
(`keep_linked`): an MQTT v5 connection built for throughput and flow control on
asyncio's own transport (`wire.py` frames the packets). aiomqtt reads one packet per
event-loop turn into a queue without a bound and waits for every publication to be
written; a link reads what the socket holds, at most `READ_CHUNK_BYTES` a turn, hands
each PUBLISH to its owner at once, lets its owner stop reading (TCP backpressure) and
says when the socket takes no more (`writable`), so its owner decides what waits and
what is dropped. Why no library carries this link instead (gmqtt 0.8.0 was measured):
docs/reliability.md, "Why the bridge frames MQTT itself".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from charger.bus.api import MAX_MESSAGE_BYTES
from charger.protocols.mqtt import wire
from charger.protocols.mqtt.credentials import Credentials
from charger.runtime.log import event
from charger.runtime.ratelimit import LogBudget

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
MQTT_TIMEOUT_S = 5.0
KEEPALIVE_S = 30  # a link pings every half of it, and gives the broker up after all of it
MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 4096  # the bus's largest message and MQTT headers
READ_CHUNK_BYTES = 16 * 1024  # a link reads at most this much per event-loop turn
WRITE_HIGH_BYTES = 256 * 1024  # a link is not `writable` while its socket holds more
AIOMQTT_QUEUE = 100  # messages an aiomqtt client holds unread; past it the oldest go
T = TypeVar("T")


class _NewestQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's queue of unread messages, bounded: past `AIOMQTT_QUEUE` the oldest is
    dropped, counted, and logged once per 10 s with the count (aiomqtt's own bound
    drops the newest, a command sent after a flood among them, with a line each)."""

    client = "mqtt client"

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)  # asyncio keeps the items in a deque, `_queue`
        self._drops = LogBudget(1, 10.0)

    def _put(self, item: aiomqtt.Message) -> None:
        items: collections.deque[aiomqtt.Message] = self._queue  # type: ignore[attr-defined]
        if len(items) >= AIOMQTT_QUEUE:
            dropped = items.popleft()
            if self._drops.allow():
                event(
                    log,
                    logging.WARNING,
                    "mqtt_client_queue_full",
                    client=self.client,
                    dropped_topic=str(dropped.topic),
                    dropped_before=self._drops.take_unlogged(),
                    queued=len(items),
                )
        items.append(item)


def _newest_queue(client_name: str) -> type[asyncio.Queue[aiomqtt.Message]]:
    return type("NewestQueue", (_NewestQueue,), {"client": client_name})


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str = "127.0.0.1"
    port: int = 1883
    socket: Path | None = None  # a Unix socket instead of TCP
    credentials: Credentials | None = None

    def __str__(self) -> str:
        return str(self.socket) if self.socket is not None else f"{self.host}:{self.port}"


@asynccontextmanager
async def connect(address: BrokerAddress, client_name: str) -> AsyncIterator[aiomqtt.Client]:
    creds = address.credentials
    client = aiomqtt.Client(
        str(address.socket) if address.socket is not None else address.host,
        address.port,
        transport="unix" if address.socket is not None else "tcp",
        username=creds.username if creds else None,
        password=creds.password if creds else None,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"{client_name}-{uuid.uuid4().hex[:12]}",
        timeout=MQTT_TIMEOUT_S,
        logger=logging.getLogger("aiomqtt"),
        queue_type=_newest_queue(client_name),
    )
    await client.__aenter__()
    try:
        yield client
    finally:
        # aiomqtt waits for the broker's goodbye without a limit; we do not.
        try:
            async with asyncio.timeout(MQTT_TIMEOUT_S):
                await client.__aexit__(None, None, None)
        except (TimeoutError, aiomqtt.MqttError):
            event(log, logging.WARNING, "mqtt_disconnect_unclean", client=client_name)


async def keep_connected(
    address: BrokerAddress,
    client_name: str,
    session: Callable[[aiomqtt.Client], Awaitable[None]],
    connected: asyncio.Event,
) -> None:
    """Runs `session` on a connection, reconnecting with backoff. The session sets
    `connected` once it is ready; a session that got that far resets the backoff."""
    await _keep(lambda: connect(address, client_name), address, client_name, session, connected)


async def keep_linked(
    address: BrokerAddress,
    client_name: str,
    session: Callable[[Link], Awaitable[None]],
    connected: asyncio.Event,
) -> None:
    """`keep_connected` for a `Link`: the session returns (or raises `LinkError`) when
    the link is lost, and runs again on a new one."""
    await _keep(lambda: link(address, client_name), address, client_name, session, connected)


async def _keep(
    opener: Callable[[], AbstractAsyncContextManager[T]],
    address: BrokerAddress,
    client_name: str,
    session: Callable[[T], Awaitable[None]],
    connected: asyncio.Event,
) -> None:
    delay = INITIAL_BACKOFF_S
    while True:
        try:
            async with opener() as client:
                await session(client)
        except (aiomqtt.MqttError, OSError) as exc:  # LinkError is a ConnectionError
            event(
                log,
                logging.WARNING,
                "mqtt_disconnected",
                client=client_name,
                broker=str(address),
                error=str(exc),
                retry_in_s=delay,
            )
        if connected.is_set():  # the session worked: start backing off afresh
            delay = INITIAL_BACKOFF_S
            connected.clear()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


# ---------------------------------------------------------------------------- Link


class LinkError(ConnectionError):
    """The link could not be opened or was lost; str() says why."""


class Link(asyncio.BufferedProtocol):
    """One MQTT v5 connection for a client that moves many messages (the bridge).

    Every PUBLISH that arrives goes to `on_message(topic, payload)` during the read
    that brought it (QoS 1 ones are acknowledged at once: the owner has taken them);
    a read is at most `READ_CHUNK_BYTES`, so one event-loop turn does a bounded amount
    of work. `pause_reading` stops reading the socket: the broker then holds what
    comes, within its per-client limits. `publish` hands a QoS 0 message to the
    socket without waiting; `writable` is cleared while the socket holds more than
    `WRITE_HIGH_BYTES`. `lost` completes, with a `LinkError`, when the connection ends.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.on_message: Callable[[str, bytes], None] = _ignore
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost: asyncio.Future[None] = loop.create_future()
        self._parser = wire.Parser(MAX_PACKET_BYTES)
        self._chunk = bytearray(READ_CHUNK_BYTES)
        self._transport: asyncio.Transport | None = None
        self._connack: asyncio.Future[wire.ConnAck] = loop.create_future()
        self._subacks: dict[int, asyncio.Future[wire.SubAck]] = {}
        self._next_packet_id = 1
        self._prefixes: dict[str, bytes] = {}
        self._reading = True
        self.last_heard = time.monotonic()

    # ---------------------------------------------------------------- the owner's side

    async def subscribe(self, topics: Iterable[str], *, no_local: bool = True) -> None:
        """Subscribes (QoS 1) and waits for the broker to grant every topic."""
        topics = tuple(topics)
        packet_id = self._next_packet_id
        self._next_packet_id = packet_id % 0xFFFF + 1
        granted = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = granted
        self._write(wire.subscribe(packet_id, topics, no_local=no_local))
        try:
            async with asyncio.timeout(MQTT_TIMEOUT_S):
                suback = await asyncio.shield(granted)
        except TimeoutError:
            raise LinkError(f"no SUBACK within {MQTT_TIMEOUT_S:g} s") from None
        finally:
            self._subacks.pop(packet_id, None)
        refused = [
            f"{topic}: {wire.reason_text(code)}"
            for topic, code in zip(topics, suback.reasons, strict=False)
            if code >= 0x80
        ]
        if refused or len(suback.reasons) != len(topics):
            raise LinkError(f"subscription refused: {', '.join(refused) or 'reason codes'}")

    def publish(self, topic: str, payload: bytes) -> int:
        """Hands a QoS 0 PUBLISH to the socket; returns its size in bytes."""
        prefix = self._prefixes.get(topic)
        if prefix is None:
            prefix = self._prefixes[topic] = wire.publish_prefix(topic)
        packet = wire.publish(prefix, payload)
        self._write(packet)
        return len(packet)

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """Several QoS 0 PUBLISHes in one write."""
        packets = []
        for topic, payload in messages:
            prefix = self._prefixes.get(topic)
            if prefix is None:
                prefix = self._prefixes[topic] = wire.publish_prefix(topic)
            packets.append(wire.publish(prefix, payload))
        if packets:
            self._write(b"".join(packets))

    @property
    def buffered_bytes(self) -> int:
        """What the socket has not yet taken."""
        transport = self._transport
        return 0 if transport is None else transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Waits until the socket has taken all that was written (or the link is lost)."""
        # asyncio signals only the high-water mark, not an empty buffer: look every 10 ms
        while self.open and self.buffered_bytes:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    @property
    def open(self) -> bool:
        """Not lost or closing: what is published now is sent."""
        transport = self._transport
        return transport is not None and not transport.is_closing() and not self.lost.done()

    @property
    def reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading and self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
            self._reading = True
            self.last_heard = time.monotonic()  # silence while paused was ours

    def ping(self) -> None:
        self._write(wire.PINGREQ_PACKET)

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise LinkError("the link is closed")
        self._transport.write(data)

    # ---------------------------------------------------------------- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_BYTES)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._chunk

    def buffer_updated(self, nbytes: int) -> None:
        self.last_heard = time.monotonic()
        try:
            packets = self._parser.feed(memoryview(self._chunk)[:nbytes])
        except wire.ProtocolError as exc:
            self._fail(f"protocol error from the broker: {exc}")
            return
        acks = []
        for packet in packets:
            if isinstance(packet, wire.Publish):
                if packet.packet_id is not None:
                    acks.append(wire.puback(packet.packet_id))
                try:
                    self.on_message(packet.topic, packet.payload)
                except Exception:  # the owner's bug must not end the connection
                    log.exception("mqtt_link_handler_failed", extra={"kv": {"topic": packet.topic}})
            elif isinstance(packet, wire.ConnAck):
                if not self._connack.done():
                    self._connack.set_result(packet)
            elif isinstance(packet, wire.SubAck):
                waiter = self._subacks.get(packet.packet_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(packet)
            elif isinstance(packet, wire.Disconnect):
                self._fail(f"the broker disconnected: {wire.reason_text(packet.reason)}")
                return
        if acks and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(acks))

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the broker closed the connection"
        self._settle(LinkError(reason))
        self.writable.set()  # wake writers; their write raises LinkError

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def _fail(self, reason: str) -> None:
        self._settle(LinkError(reason))
        if self._transport is not None:
            self._transport.abort()

    def _settle(self, error: LinkError) -> None:
        waiters: list[asyncio.Future[Any]] = [self.lost, self._connack, *self._subacks.values()]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self.lost.exception()  # retrieved: nobody need await it


def _ignore(topic: str, payload: bytes) -> None:
    pass


@asynccontextmanager
async def link(address: BrokerAddress, client_name: str) -> AsyncIterator[Link]:
    """An open, logged-in `Link` (raises `LinkError` or OSError); keeps it alive with
    pings, and disconnects on exit."""
    loop = asyncio.get_running_loop()
    creds = address.credentials
    transport: asyncio.Transport | None = None
    try:
        async with asyncio.timeout(MQTT_TIMEOUT_S):
            if address.socket is not None:
                transport, protocol = await loop.create_unix_connection(Link, str(address.socket))
            else:
                transport, protocol = await loop.create_connection(Link, address.host, address.port)
            protocol._write(
                wire.connect(
                    f"{client_name}-{uuid.uuid4().hex[:12]}",
                    creds.username if creds else None,
                    creds.password if creds else None,
                    keepalive_s=KEEPALIVE_S,
                    max_packet_bytes=MAX_PACKET_BYTES,
                )
            )
            connack = await protocol._connack
        if connack.reason != 0:
            raise LinkError(f"the broker refused the login: {wire.reason_text(connack.reason)}")
    except BaseException as exc:
        if transport is not None:
            transport.abort()
        if isinstance(exc, TimeoutError):
            raise LinkError(
                f"no answer from the broker at {address} within {MQTT_TIMEOUT_S:g} s"
            ) from None
        raise
    keepalive = asyncio.create_task(_keep_alive(protocol))
    try:
        yield protocol
    finally:
        keepalive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keepalive
        if not transport.is_closing():
            transport.write(wire.DISCONNECT_PACKET)
            transport.close()
        with contextlib.suppress(LinkError, TimeoutError):
            async with asyncio.timeout(MQTT_TIMEOUT_S):
                await asyncio.shield(protocol.lost)


async def _keep_alive(protocol: Link) -> None:
    """Pings every half keep-alive; a broker silent for a whole one is given up."""
    while not protocol.lost.done():
        await asyncio.sleep(KEEPALIVE_S / 2)
        if protocol.reading and time.monotonic() - protocol.last_heard > KEEPALIVE_S:
            protocol._fail(f"the broker has been silent for {KEEPALIVE_S} s")
            return
        with contextlib.suppress(LinkError):
            protocol.ping()
