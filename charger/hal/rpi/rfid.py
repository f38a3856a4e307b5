"""RFID reader: an NXP PN532 on a UART (its HSU interface, 115200 8N1) through pyserial.

A thread polls for one ISO 14443A card (InListPassiveTarget) and hands each newly
presented card's UID to the event loop as an OCPP idToken of type ISO14443 (the UID in
upper-case hex: 8 digits for a 4-byte UID, 14 for a 7-byte one). A card held at the
reader counts once; it counts again after it was away for ABSENT_POLLS polls.

Frames (PN532 user manual, 6.2): 00 00 FF LEN LCS D4 cmd data.. DCS 00, answered by an
ACK (00 00 FF 00 FF 00) and then a frame with D5 cmd+1.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from charger.runtime.log import event

log = logging.getLogger(__name__)

ACK = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))
WAKEUP = bytes((0x55, 0x55)) + bytes(14)  # HSU: leaves power-down (user manual 7.2.11)
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A
POLL_S = 0.2
ABSENT_POLLS = 2
RESPONSE_TIMEOUT_S = 1.0
RETRY_S = 2.0


class Pn532Error(Exception):
    pass


def command_frame(command: int, params: bytes = b"") -> bytes:
    data = bytes((0xD4, command)) + params
    length = len(data)
    return (
        bytes((0x00, 0x00, 0xFF, length, (-length) & 0xFF))
        + data
        + bytes(((-sum(data)) & 0xFF, 0x00))
    )


def parse_frame(raw: bytes) -> bytes:
    """The data of one normal frame (from TFI on), checksums verified."""
    start = raw.find(b"\x00\xff")
    if start < 0 or len(raw) < start + 4:
        raise Pn532Error(f"no frame in {raw.hex()}")
    length, lcs = raw[start + 2], raw[start + 3]
    if (length + lcs) & 0xFF:
        raise Pn532Error(f"length checksum wrong in {raw.hex()}")
    data = raw[start + 4 : start + 4 + length]
    if len(data) != length or len(raw) < start + 5 + length:
        raise Pn532Error(f"short frame {raw.hex()}")
    if (sum(data) + raw[start + 4 + length]) & 0xFF:
        raise Pn532Error(f"data checksum wrong in {raw.hex()}")
    return data


class Pn532:
    """The PN532 protocol on a pyserial-like port (read(n) with a timeout, write)."""

    def __init__(self, port: Any) -> None:
        self._port = port

    def _read_exactly(self, n: int) -> bytes:
        data = self._port.read(n)
        if len(data) != n:
            raise Pn532Error(f"the PN532 did not answer ({len(data)} of {n} bytes)")
        return bytes(data)

    def _read_frame(self) -> bytes:
        # Skip to the start code, then header, data, checksum and postamble.
        window = b""
        while not window.endswith(b"\x00\xff"):
            window = (window + self._read_exactly(1))[-2:]
        header = self._read_exactly(2)
        if header == b"\x00\xff":  # an ACK: 00 FF, postamble
            self._read_exactly(1)
            return b""
        rest = self._read_exactly(header[0] + 2)
        return parse_frame(b"\x00\xff" + header + rest)

    def call(self, command: int, params: bytes = b"") -> bytes:
        """Sends a command, waits for its ACK and its answer; returns the answer's data
        after D5 cmd+1."""
        self._port.reset_input_buffer()
        self._port.write(command_frame(command, params))
        if self._read_frame() != b"":
            raise Pn532Error("expected an ACK")
        answer = self._read_frame()
        if answer[:2] != bytes((0xD5, command + 1)):
            raise Pn532Error(f"unexpected answer {answer.hex()} to command {command:#04x}")
        return answer[2:]

    def setup(self) -> None:
        self._port.write(WAKEUP)
        self.call(SAM_CONFIGURATION, bytes((0x01, 0x14, 0x01)))  # normal mode
        # MxRtyPassiveActivation = 2: InListPassiveTarget answers "no card" at once.
        self.call(RF_CONFIGURATION, bytes((0x05, 0xFF, 0x01, 0x02)))

    def read_uid(self) -> bytes | None:
        """The UID of the ISO 14443A card in the field, or None."""
        answer = self.call(IN_LIST_PASSIVE_TARGET, bytes((0x01, 0x00)))
        if not answer or answer[0] == 0:
            return None
        # Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1
        if len(answer) < 6 or len(answer) < 6 + answer[5]:
            raise Pn532Error(f"short target data {answer.hex()}")
        return answer[6 : 6 + answer[5]]


class Pn532Reader:
    """IdReader: a thread that polls the PN532 and reports new cards to the loop."""

    def __init__(self, open_port: Callable[[], Any], where: str) -> None:
        self._open_port, self._where = open_port, where
        self._callbacks: list[Callable[[str, str], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._present: bytes | None = None
        self._absent = 0

    def on_token(self, callback: Callable[[str, str], None]) -> None:
        self._callbacks.append(callback)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="rfid", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def poll(self, pn532: Pn532) -> str | None:
        """One poll; the token of a card that just arrived, else None (blocking)."""
        uid = pn532.read_uid()
        if uid is None:
            self._absent += 1
            if self._absent >= ABSENT_POLLS:
                self._present = None
            return None
        self._absent = 0
        if uid == self._present:
            return None
        self._present = uid
        return uid.hex().upper()

    def _deliver(self, token: str) -> None:  # in the loop
        for callback in tuple(self._callbacks):
            callback(token, "ISO14443")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                port = self._open_port()
            except OSError as exc:
                event(log, logging.ERROR, "rfid_failed", where=self._where, error=str(exc))
                self._stop.wait(RETRY_S)
                continue
            try:
                pn532 = Pn532(port)
                pn532.setup()
                event(log, logging.INFO, "rfid_ready", where=self._where)
                while not self._stop.is_set():
                    token = self.poll(pn532)
                    if token is not None and self._loop is not None:
                        self._loop.call_soon_threadsafe(self._deliver, token)
                    self._stop.wait(POLL_S)
            except (OSError, Pn532Error) as exc:
                event(log, logging.ERROR, "rfid_failed", where=self._where, error=str(exc))
                self._stop.wait(RETRY_S)
            finally:
                port.close()


def open_serial(path: str) -> Callable[[], Any]:
    def open_port() -> Any:
        import serial  # type: ignore[import-untyped]  # pyserial; only a board with a reader

        return serial.Serial(path, 115200, timeout=RESPONSE_TIMEOUT_S)

    return open_port
