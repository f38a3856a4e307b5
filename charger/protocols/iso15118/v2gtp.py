"""V2G Transfer Protocol (ISO 15118-2; DIN SPEC 70121 uses the same header): the
8-byte header every SDP datagram and every EXI message over TCP/TLS carries, sans-IO.

    01 FE <payload type:2> <payload length:4> <payload>

`FrameReader` takes TCP bytes as they arrive (split or merged segments alike) and gives
whole messages back; a header that is wrong (version, inverse version, a payload type
that may not travel here, a length above the limit) is a `V2gtpError` naming the fault,
after which the stream cannot be trusted and the connection is closed.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Collection
from dataclasses import dataclass

VERSION = 0x01
INVERSE_VERSION = 0xFE
HEADER_BYTES = 8
_HEADER = struct.Struct("!BBHI")


class PayloadType(enum.IntEnum):
    """V2GTP payload types (ISO 15118-2, ISO 15118-20)."""

    EXI = 0x8001  # SupportedAppProtocol, DIN SPEC 70121, ISO 15118-2
    EXI_20_COMMON = 0x8002  # ISO 15118-20 common messages
    EXI_20_AC = 0x8003
    EXI_20_DC = 0x8004
    EXI_20_ACDP = 0x8005
    EXI_20_WPT = 0x8006
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002
    SDP_RESPONSE_WIRELESS = 0x9003


# What may travel over the TCP/TLS connection (ISO 15118-20 messages later).
STREAM_TYPES: frozenset[int] = frozenset({PayloadType.EXI})


class V2gtpError(ValueError):
    """A V2GTP header is wrong; str() says what."""


@dataclass(frozen=True, slots=True)
class Frame:
    payload_type: int
    payload: bytes


def encode(payload_type: int, payload: bytes) -> bytes:
    """One V2GTP message: the header, then the payload."""
    return _HEADER.pack(VERSION, INVERSE_VERSION, payload_type, len(payload)) + payload


def parse_header(header: bytes, *, allowed: Collection[int], max_payload: int) -> tuple[int, int]:
    """(payload type, payload length) of an 8-byte header; raises V2gtpError."""
    version, inverse, payload_type, length = _HEADER.unpack(header)
    if version != VERSION or inverse != INVERSE_VERSION:
        raise V2gtpError(
            f"protocol version 0x{version:02X}/inverse 0x{inverse:02X}, "
            f"expected 0x{VERSION:02X}/0x{INVERSE_VERSION:02X}"
        )
    if payload_type not in allowed:
        raise V2gtpError(f"payload type 0x{payload_type:04X} is not allowed here")
    if length > max_payload:
        raise V2gtpError(
            f"payload length {length} bytes exceeds the maximum of {max_payload} bytes"
        )
    return payload_type, length


def decode_datagram(data: bytes, *, allowed: Collection[int], max_payload: int) -> Frame:
    """The one V2GTP message a UDP datagram holds (its length must match exactly)."""
    if len(data) < HEADER_BYTES:
        raise V2gtpError(f"datagram of {len(data)} bytes is shorter than the V2GTP header")
    payload_type, length = parse_header(
        data[:HEADER_BYTES], allowed=allowed, max_payload=max_payload
    )
    if len(data) != HEADER_BYTES + length:
        raise V2gtpError(
            f"payload length {length} does not match the datagram's "
            f"{len(data) - HEADER_BYTES} payload bytes"
        )
    return Frame(payload_type, data[HEADER_BYTES:])


class FrameReader:
    """Reassembles V2GTP messages from a byte stream; sans-IO.

    `feed` returns every message completed by the new bytes, in order; it raises
    V2gtpError at the first wrong header (the bytes after it are not looked at).
    """

    def __init__(self, *, max_payload: int, allowed: Collection[int] = STREAM_TYPES) -> None:
        self._max = max_payload
        self._allowed = frozenset(allowed)
        self._buffer = bytearray()
        self._need: tuple[int, int] | None = None  # (type, length) of the message in progress
        self.failed = False

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        if self.failed:
            raise V2gtpError("the stream already failed")
        self._buffer += data
        frames: list[Frame] = []
        while True:
            if self._need is None:
                if len(self._buffer) < HEADER_BYTES:
                    return frames
                try:
                    self._need = parse_header(
                        bytes(self._buffer[:HEADER_BYTES]),
                        allowed=self._allowed,
                        max_payload=self._max,
                    )
                except V2gtpError:
                    self.failed = True
                    raise
                del self._buffer[:HEADER_BYTES]
            payload_type, length = self._need
            if len(self._buffer) < length:
                return frames
            frames.append(Frame(payload_type, bytes(self._buffer[:length])))
            del self._buffer[:length]
            self._need = None
