"""Raw-Ethernet transport to a HomePlug Green PHY modem (e.g. a QCA7000 on `qcaspi`).

`open()` uses pyroute2 (in a worker thread: netlink calls block) to find the interface,
bring it up, wait for carrier, read its MAC and make sure it has the IPv6 link-local
address ISO 15118 needs; then an AF_PACKET socket bound to ethertype 0x88E1 is watched
by the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charger.protocols.slac.mme import ETHERTYPE_HOMEPLUG, mac_str
from charger.runtime.log import event

log = logging.getLogger(__name__)

CARRIER_TIMEOUT_S = 10.0
MAX_FRAME = 1518
IFA_SCOPE_LINK = 253


class LinkError(OSError):
    pass


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    name: str
    index: int
    mac: bytes
    link_local: str


def link_local_from_mac(mac: bytes) -> str:
    """fe80::/64 with the modified EUI-64 of the MAC (RFC 4291 Appendix A)."""
    eui = bytearray(mac[:3] + b"\xff\xfe" + mac[3:])
    eui[0] ^= 0x02
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + bytes(eui)))


def prepare_interface(name: str, carrier_timeout_s: float = CARRIER_TIMEOUT_S) -> InterfaceInfo:
    """Blocking: up, carrier, MAC, IPv6 link-local. Raises LinkError saying what failed.

    A missing IPv6 link-local address is only a warning: SLAC works without it, the
    ISO 15118 session that follows does not, and says so itself.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise LinkError(f"network interface {name!r} does not exist")
        index = int(found[0])
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise LinkError(f"cannot bring {name} up: {exc}") from None
        deadline = time.monotonic() + carrier_timeout_s
        while True:
            link = ipr.get_links(index)[0]
            if link.get_attr("IFLA_CARRIER") == 1:
                break
            if time.monotonic() > deadline:
                raise LinkError(
                    f"no carrier on {name} after {carrier_timeout_s:g} s "
                    "(is the modem powered and its driver loaded?)"
                )
            time.sleep(0.1)
        mac = bytes.fromhex(str(link.get_attr("IFLA_ADDRESS")).replace(":", ""))
        link_local = _ensure_link_local(ipr, name, index, mac, NetlinkError)
    return InterfaceInfo(name, index, mac, link_local)


def _ensure_link_local(ipr: Any, name: str, index: int, mac: bytes, error: type[Exception]) -> str:
    switch = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    try:
        if switch.read_text().strip() == "1":
            switch.write_text("0")  # ISO 15118 runs over IPv6 on this link
    except OSError as exc:
        event(log, logging.WARNING, "ipv6_unavailable", interface=name, error=str(exc))
        return ""
    existing = [
        a.get_attr("IFA_ADDRESS")
        for a in ipr.get_addr(index=index, family=socket.AF_INET6)
        if a["scope"] == IFA_SCOPE_LINK
    ]
    if existing:
        return str(existing[0])
    address = link_local_from_mac(mac)
    try:
        ipr.addr("add", index=index, address=address, prefixlen=64)
    except error as exc:
        event(log, logging.WARNING, "ipv6_link_local_failed", interface=name, error=str(exc))
        return ""
    return address


class RawEthernet:
    """FrameTransport over an AF_PACKET socket bound to ethertype 0x88E1."""

    def __init__(self, interface: str, carrier_timeout_s: float = CARRIER_TIMEOUT_S) -> None:
        self._interface = interface
        self._carrier_timeout_s = carrier_timeout_s
        self._sock: socket.socket | None = None
        self._callbacks: list[Callable[[bytes], None]] = []
        self._mac = bytes(6)
        self.info: InterfaceInfo | None = None

    @property
    def mac(self) -> bytes:
        return self._mac

    async def open(self) -> None:
        self.close()  # opened again after a restart: drop the old socket first
        self.info = await asyncio.to_thread(
            prepare_interface, self._interface, self._carrier_timeout_s
        )
        self._mac = self.info.mac
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_HOMEPLUG))
        sock.bind((self._interface, ETHERTYPE_HOMEPLUG))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        event(
            log,
            logging.INFO,
            "slac_link_open",
            interface=self._interface,
            mac=mac_str(self._mac),
            link_local=self.info.link_local,
        )

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frame = self._sock.recv(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                event(
                    log,
                    logging.ERROR,
                    "slac_link_receive_failed",
                    interface=self._interface,
                    error=str(exc),
                )
                return
            for callback in tuple(self._callbacks):
                callback(frame)

    def send(self, frame: bytes) -> None:
        if self._sock is None:
            raise LinkError(f"{self._interface} is not open")
        try:
            self._sock.send(frame)
        except BlockingIOError:
            event(
                log,
                logging.WARNING,
                "slac_frame_dropped",
                interface=self._interface,
                reason="socket buffer full",
            )

    def on_frame(self, callback: Callable[[bytes], None]) -> None:
        self._callbacks.append(callback)

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
