"""SECC Discovery Protocol (ISO 15118-2, DIN SPEC 70121): the EV asks on
UDP port 15118 (multicast ff02::1) where the SECC listens; the SECC answers with its
link-local address, its TCP port and whether that port speaks TLS.

The request/response coding is sans-IO, both sides of it (`parse_request`, `response`
for the SECC; `request`, `parse_response` for an EV, the simulated car's EVCC);
`SdpServer` is the asyncio datagram endpoint bound to the PLC interface.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from charger.protocols.iso15118 import v2gtp
from charger.protocols.iso15118.v2gtp import PayloadType, V2gtpError
from charger.runtime.log import event

log = logging.getLogger(__name__)

SDP_PORT = 15118
MULTICAST_ADDRESS = "ff02::1"
REQUEST_PAYLOAD_BYTES = 2
RESPONSE_PAYLOAD_BYTES = 20
# ISO 15118-2 / DIN: the SECC's TCP port lies in the IANA dynamic range.
TCP_PORT_RANGE = range(49152, 65536)


class Security(enum.IntEnum):
    TLS = 0x00
    NONE = 0x10


class Transport(enum.IntEnum):
    TCP = 0x00
    UDP = 0x10


@dataclass(frozen=True, slots=True)
class SdpRequest:
    security: Security
    transport: Transport


def parse_request(datagram: bytes) -> SdpRequest:
    """An SDP request (V2GTP 0x9000); raises V2gtpError with the reason."""
    frame = v2gtp.decode_datagram(
        datagram,
        allowed=(PayloadType.SDP_REQUEST,),
        max_payload=REQUEST_PAYLOAD_BYTES,
    )
    if len(frame.payload) != REQUEST_PAYLOAD_BYTES:
        raise V2gtpError(f"SDP request payload of {len(frame.payload)} bytes, expected 2")
    security, transport = frame.payload
    try:
        return SdpRequest(Security(security), Transport(transport))
    except ValueError:
        raise V2gtpError(
            f"SDP request with security 0x{security:02X} and transport 0x{transport:02X}"
        ) from None


@dataclass(frozen=True, slots=True)
class SdpResponse:
    address: str  # the SECC's IPv6 address (link-local on a PLC link)
    port: int
    security: Security
    transport: Transport


def request(security: Security, transport: Transport = Transport.TCP) -> bytes:
    """The SDP request datagram (V2GTP 0x9000) an EV sends."""
    return v2gtp.encode(PayloadType.SDP_REQUEST, bytes([security, transport]))


def parse_response(datagram: bytes) -> SdpResponse:
    """An SDP response (V2GTP 0x9001); raises V2gtpError with the reason."""
    frame = v2gtp.decode_datagram(
        datagram, allowed=(PayloadType.SDP_RESPONSE,), max_payload=RESPONSE_PAYLOAD_BYTES
    )
    if len(frame.payload) != RESPONSE_PAYLOAD_BYTES:
        raise V2gtpError(f"SDP response payload of {len(frame.payload)} bytes, expected 20")
    address = str(ipaddress.IPv6Address(frame.payload[:16]))
    port, security, transport = struct.unpack("!HBB", frame.payload[16:])
    try:
        return SdpResponse(address, port, Security(security), Transport(transport))
    except ValueError:
        raise V2gtpError(
            f"SDP response with security 0x{security:02X} and transport 0x{transport:02X}"
        ) from None


def response(address: str, port: int, security: Security) -> bytes:
    """The SDP response datagram (V2GTP 0x9001) naming `address` (IPv6) and `port`."""
    if port not in TCP_PORT_RANGE:
        raise ValueError(f"port {port} is outside {TCP_PORT_RANGE.start}-{TCP_PORT_RANGE.stop - 1}")
    packed = ipaddress.IPv6Address(address.split("%", 1)[0]).packed
    payload = packed + struct.pack("!HBB", port, security, Transport.TCP)
    return v2gtp.encode(PayloadType.SDP_RESPONSE, payload)


def choose_security(requested: Security, tls: str) -> Security:
    """What the SECC answers: `tls` is "off", "offer" (TLS if the EV asks for it) or
    "require" (TLS whatever the EV asked; an EV that cannot do it gives up)."""
    if tls == "require":
        return Security.TLS
    if tls == "offer" and requested is Security.TLS:
        return Security.TLS
    return Security.NONE


def link_local_address(interface: str) -> str:
    """The interface's IPv6 link-local address (from /proc/net/if_inet6). The loopback
    interface has none: its ::1 stands in (the simulator's link, `charger sim`)."""
    loopback = False
    with open("/proc/net/if_inet6", encoding="ascii") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 6 and fields[5] == interface:
                address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
                if fields[3] == "20":
                    return str(address)
                loopback = loopback or address.is_loopback
    if loopback:
        return "::1"
    raise OSError(f"interface {interface!r} has no IPv6 link-local address")


class SdpServer(asyncio.DatagramProtocol):
    """Answers SDP requests on `interface`; `answer(request)` gives (port, security) or
    None to stay silent (no TLS server when TLS is required, a session that refuses)."""

    def __init__(
        self,
        interface: str,
        address: str,
        answer: Callable[[SdpRequest], tuple[int, Security] | None],
    ) -> None:
        self._interface = interface
        self._address = address
        self._answer = answer
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(
        cls,
        interface: str,
        address: str,
        answer: Callable[[SdpRequest], tuple[int, Security] | None],
        *,
        port: int = SDP_PORT,
    ) -> SdpServer:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            index = socket.if_nametoindex(interface)
            group = socket.inet_pton(socket.AF_INET6, MULTICAST_ADDRESS)
            sock.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", index)
            )
            sock.bind(("::", port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        server = cls(interface, address, answer)
        await loop.create_datagram_endpoint(lambda: server, sock=sock)
        return server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (asyncio's selector datagram transport does not subclass DatagramTransport)
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            request = parse_request(data)
        except V2gtpError as exc:
            event(log, logging.WARNING, "sdp_request_ignored", peer=addr[0], reason=str(exc))
            return
        if request.transport is not Transport.TCP:
            event(log, logging.WARNING, "sdp_request_ignored", peer=addr[0], reason="UDP transport")
            return
        chosen = self._answer(request)
        if chosen is None or self._transport is None:
            event(log, logging.INFO, "sdp_request_unanswered", peer=addr[0])
            return
        port, security = chosen
        self._transport.sendto(response(self._address, port, security), addr)
        event(
            log,
            logging.INFO,
            "sdp",
            peer=addr[0],
            requested=request.security.name,
            answered=security.name,
            port=port,
        )

    def error_received(self, exc: Exception) -> None:
        event(log, logging.WARNING, "sdp_socket_error", error=str(exc))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
