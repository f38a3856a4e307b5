"""The SPI ADC that measures the control pilot (and a socket outlet's proximity pilot).

An MCP3202 (2 channels) or MCP3204/3208 (4/8) on a spidev chip select. With the QCA7000
on SPI0 chip select 0 (the qca7000 overlay takes spidev0.0), the ADC sits on chip
select 1: spidev0.1. Bursts go through the `_cpsample` C extension: one ioctl, the
conversions back to back (see its header); single conversions through spidev.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

AdcKind = Literal["mcp3202", "mcp3208"]
FULL_SCALE = 4095  # 12 bits


def frame(kind: AdcKind, channel: int) -> bytes:
    """The 3-byte command frame of a single-ended conversion on `channel`."""
    if kind == "mcp3202":
        if not 0 <= channel <= 1:
            raise ValueError(f"the MCP3202 has channels 0 and 1, not {channel}")
        return bytes((0x01, 0xA0 | (channel << 6), 0x00))  # start, SGL, ODD=ch, MSBF
    if not 0 <= channel <= 7:
        raise ValueError(f"the MCP3208 has channels 0 to 7, not {channel}")
    return bytes((0x06 | (channel >> 2), (channel & 0x03) << 6, 0x00))  # start, SGL, D2..D0


def counts(reply: Sequence[int]) -> int:
    """The 12-bit result in a 3-byte reply (both chips put it in the last 12 bits)."""
    return ((reply[1] & 0x0F) << 8) | reply[2]


class Adc(Protocol):
    def read(self, channel: int) -> int:
        """One conversion (blocking: call it from the sampling thread)."""

    def burst(self, channel: int, count: int) -> Sequence[int]:
        """`count` conversions back to back (blocking: the sampling thread)."""


class SpiAdc:
    """An MCP320x on an open spidev.SpiDev (`spi`): single conversions with xfer2, bursts
    with `_cpsample.burst` on the same file descriptor."""

    def __init__(self, spi: Any, kind: AdcKind, speed_hz: int) -> None:
        import charger.hal.rpi._cpsample as _cpsample  # the C extension, built with the package

        self._cpsample = _cpsample
        self._spi, self._kind, self._speed = spi, kind, speed_hz
        spi.max_speed_hz = speed_hz
        spi.mode = 0

    def read(self, channel: int) -> int:
        return counts(self._spi.xfer2(list(frame(self._kind, channel))))

    def burst(self, channel: int, count: int) -> Sequence[int]:
        command = frame(self._kind, channel)
        rx = self._cpsample.burst(self._spi.fileno(), command, count, self._speed)
        result: tuple[int, ...] = self._cpsample.decode12(rx, 3)
        return result
