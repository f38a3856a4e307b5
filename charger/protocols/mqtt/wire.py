"""MQTT v5 packets, sans I/O: the few the bridge's link sends, and a parser for what a
broker sends it.

The link (`connection.Link`) moves every message the bus exchanges with the broker, so
it frames packets itself rather than one per event-loop turn: `Parser.feed` takes the
bytes of a read and returns every complete packet in them. Only what a subscribing,
QoS 0-publishing client meets is understood: CONNACK, SUBACK, PUBLISH (QoS 0 and 1),
PUBACK, PINGRESP, DISCONNECT; anything else is a `ProtocolError`. Packets are bounded
by `max_packet_bytes` (also announced to the broker in CONNECT, so it never sends a
larger one).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection, no properties

# Reason codes a broker gives when it refuses, from the MQTT v5 specification (2.4).
REASONS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
}


class ProtocolError(ValueError):
    """The broker sent something this client cannot accept; str() says what."""


def reason_text(code: int) -> str:
    return f"{REASONS.get(code, 'reason')} (0x{code:02x})"


# ------------------------------------------------------------------ encoding


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (lengths up to 268 435 455)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string has at most 65535 bytes")
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(
    client_id: str,
    username: str | None,
    password: str | None,
    *,
    keepalive_s: int,
    max_packet_bytes: int,
) -> bytes:
    """CONNECT with a clean start; announces the largest packet this client accepts."""
    flags = 0x02  # clean start
    payload = utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += utf8(password)
    properties = b"\x27" + struct.pack("!I", max_packet_bytes)  # maximum packet size
    header = utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive_s)
    return _packet(CONNECT << 4, header + varint(len(properties)) + properties + payload)


def subscribe(packet_id: int, topics: Iterable[str], *, qos: int = 1, no_local: bool) -> bytes:
    options = bytes([qos | (0x04 if no_local else 0)])
    body = struct.pack("!H", packet_id) + varint(0)
    body += b"".join(utf8(topic) + options for topic in topics)
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def publish_prefix(topic: str) -> bytes:
    """What precedes the payload in a QoS 0 PUBLISH on `topic` (topic, no properties):
    computed once per topic, it makes `publish` a concatenation."""
    return utf8(topic) + b"\x00"


def publish(prefix: bytes, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH, not retained; `prefix` from `publish_prefix`."""
    return b"\x30" + varint(len(prefix) + len(payload)) + prefix + payload


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", packet_id)


# ------------------------------------------------------------------ parsing


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    packet_id: int | None  # QoS 1: to acknowledge


@dataclass(frozen=True, slots=True)
class ConnAck:
    reason: int


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    reasons: bytes  # one per topic filter: 0-2 granted QoS, >= 0x80 refused


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason: int


Packet = Publish | ConnAck | SubAck | PubAck | PingResp | Disconnect


class Parser:
    """Turns the bytes a broker sends into packets; keeps an incomplete one for the
    next `feed`. Refuses a packet over `max_packet_bytes` before buffering it."""

    def __init__(self, max_packet_bytes: int) -> None:
        self.max_packet_bytes = max_packet_bytes
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        buffer = self._buffer
        buffer += data
        packets: list[Packet] = []
        at, end = 0, len(buffer)
        while end - at >= 2:
            first = buffer[at]
            length, shift, pos, complete = 0, 0, at + 1, False
            while pos < end and pos - at <= 4:  # at most 4 length bytes
                digit = buffer[pos]
                pos += 1
                length |= (digit & 0x7F) << shift
                if not digit & 0x80:
                    complete = True
                    break
                shift += 7
            if not complete:
                if pos - at > 4:
                    raise ProtocolError("malformed remaining length")
                break  # the length itself is still incomplete
            if length + (pos - at) > self.max_packet_bytes:
                raise ProtocolError(
                    f"packet of {length + pos - at} bytes (at most {self.max_packet_bytes})"
                )
            if end - pos < length:
                break
            packets.append(_decode(first, bytes(buffer[pos : pos + length])))
            at = pos + length
        if at:
            del buffer[:at]
        return packets


def _skip_varint(body: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(body):
            raise ProtocolError("truncated variable byte integer")
        digit = body[at]
        at += 1
        value |= (digit & 0x7F) << shift
        if not digit & 0x80:
            return value, at
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")


def _decode(first: int, body: bytes) -> Packet:
    kind = first >> 4
    try:
        if kind == PUBLISH:
            qos = (first >> 1) & 0x03
            if qos > 1:
                raise ProtocolError(f"PUBLISH with QoS {qos} (subscribed with at most 1)")
            (topic_len,) = struct.unpack_from("!H", body)
            at = 2 + topic_len
            topic = body[2:at].decode()
            packet_id = None
            if qos:
                (packet_id,) = struct.unpack_from("!H", body, at)
                at += 2
            props, at = _skip_varint(body, at)
            if at + props > len(body):
                raise ProtocolError("PUBLISH properties overrun the packet")
            return Publish(topic, body[at + props :], qos, packet_id)
        if kind == CONNACK:
            return ConnAck(body[1])
        if kind == SUBACK:
            (packet_id,) = struct.unpack_from("!H", body)
            props, at = _skip_varint(body, 2)
            return SubAck(packet_id, body[at + props :])
        if kind == PUBACK:
            return PubAck(struct.unpack_from("!H", body)[0])
        if kind == PINGRESP:
            return PingResp()
        if kind == DISCONNECT:
            return Disconnect(body[0] if body else 0)
    except (IndexError, struct.error) as exc:
        raise ProtocolError(f"truncated packet of type {kind}") from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError("a topic that is not UTF-8") from exc
    raise ProtocolError(f"unexpected packet of type {kind}")
