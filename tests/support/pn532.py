"""A PN532 on a pseudo-terminal: the card reader's HSU protocol answered the way the chip
does (ACK, then the response frame), with a card that tests put in and take out. The
driver opens the pty's path with pyserial as it would /dev/ttyAMA0."""

from __future__ import annotations

import os
import select
import threading
import tty


def frame(data: bytes) -> bytes:
    length = len(data)
    return (
        bytes((0x00, 0x00, 0xFF, length, (-length) & 0xFF))
        + data
        + bytes(((-sum(data)) & 0xFF, 0x00))
    )


ACK = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))


class Pn532Twin:
    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave  # kept open so the pty stays up between the driver's opens
        self.card: bytes | None = None
        self.commands: list[int] = []
        self.corrupt_next = False
        self._stop = threading.Event()
        self._buffer = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        os.close(self.master)
        os.close(self._slave)

    def _answer(self, command: int, params: bytes) -> bytes:
        if command == 0x4A:  # InListPassiveTarget
            if self.card is None:
                return bytes((0x00,))
            uid = self.card
            return bytes((0x01, 0x01, 0x00, 0x04, 0x08, len(uid))) + uid
        return b""

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                self._buffer += os.read(self.master, 1024)
            except OSError:
                return
            while True:
                start = self._buffer.find(b"\x00\x00\xff")
                if start < 0 or len(self._buffer) < start + 5:
                    break
                length = self._buffer[start + 3]
                end = start + 5 + length + 2
                if len(self._buffer) < end:
                    break
                data = self._buffer[start + 5 : start + 5 + length]
                self._buffer = self._buffer[end:]
                if data[:1] != b"\xd4":
                    continue
                command = data[1]
                self.commands.append(command)
                reply = frame(bytes((0xD5, command + 1)) + self._answer(command, data[2:]))
                if self.corrupt_next:
                    self.corrupt_next = False
                    reply = reply[:-2] + bytes(((reply[-2] + 1) & 0xFF, 0x00))
                os.write(self.master, ACK + reply)
