"""Fakes of the kernel interfaces the Raspberry Pi board uses: a gpiod module with chips
whose requests have real file descriptors (a pipe, so edge events wake the event loop as
the kernel's would), an SPI ADC that samples a CP waveform, and a sysfs PWM tree laid
out as on a Pi 4 or a Pi 5."""

from __future__ import annotations

import contextlib
import enum
import os
import random
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------- gpiod


class Direction(enum.Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


class Edge(enum.Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Bias(enum.Enum):
    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


@dataclass
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    active_low: bool = False
    debounce_period: timedelta = timedelta(0)
    output_value: Value = Value.INACTIVE


class EdgeEvent:
    class Type(enum.Enum):
        RISING_EDGE = 1
        FALLING_EDGE = 2

    def __init__(self, event_type: EdgeEvent.Type, line_offset: int) -> None:
        self.event_type, self.line_offset = event_type, line_offset


@dataclass
class FakeLine:
    name: str
    value: bool = False
    settings: LineSettings | None = None
    request: FakeRequest | None = None


class FakeRequest:
    def __init__(self, chip: FakeChip, offset: int, settings: LineSettings) -> None:
        self.chip, self.offset, self.settings = chip, offset, settings
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.events: list[EdgeEvent] = []
        self.released = False
        self.writes: list[Value] = []

    @property
    def fd(self) -> int:
        return self._r

    def get_value(self, offset: int) -> Value:
        return Value.ACTIVE if self.chip.lines[offset].value else Value.INACTIVE

    def set_value(self, offset: int, value: Value) -> None:
        assert not self.released and self.settings.direction is Direction.OUTPUT
        self.writes.append(value)
        self.chip.lines[offset].value = value is Value.ACTIVE

    def edge(self, level: bool) -> None:
        kind = EdgeEvent.Type.RISING_EDGE if level else EdgeEvent.Type.FALLING_EDGE
        self.events.append(EdgeEvent(kind, self.offset))
        os.write(self._w, b"e")

    def read_edge_events(self) -> list[EdgeEvent]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 4096)
        events, self.events = self.events, []
        return events

    def release(self) -> None:
        self.released = True
        self.chip.lines[self.offset].request = None
        os.close(self._r)
        os.close(self._w)


class FakeChip:
    """A gpiochip with named lines (the device tree's gpio-line-names)."""

    def __init__(self, path: str, names: Sequence[str]) -> None:
        self.path = path
        self.lines = [FakeLine(name) for name in names]
        self.closed = False

    def line_offset_from_id(self, id: str | int) -> int:
        for offset, line in enumerate(self.lines):
            if line.name == id:
                return offset
        raise OSError(2, "No such file or directory")

    def request_lines(
        self, config: dict[int, LineSettings], consumer: str | None = None
    ) -> FakeRequest:
        ((offset, settings),) = config.items()
        line = self.lines[offset]
        if line.request is not None:
            raise OSError(16, "Device or resource busy")
        request = FakeRequest(self, offset, settings)
        line.settings, line.request = settings, request
        if settings.direction is Direction.OUTPUT:
            line.value = settings.output_value is Value.ACTIVE
        return request

    def close(self) -> None:
        self.closed = True

    # test side
    def drive(self, name: str, level: bool) -> None:
        """The outside world changes an input: its level and, if requested, an edge."""
        line = self.lines[self.line_offset_from_id(name)]
        if line.value != level:
            line.value = level
            settings = line.settings
            if line.request is not None and settings and settings.edge_detection is not Edge.NONE:
                line.request.edge(level)

    def level(self, name: str) -> bool:
        return self.lines[self.line_offset_from_id(name)].value


def pi_line_names(count: int = 58) -> list[str]:
    return [f"GPIO{i}" for i in range(count)]


def fake_gpiod(chips: dict[str, FakeChip]) -> Any:
    """A stand-in for the gpiod module whose Chip(path) opens one of `chips`."""

    def chip(path: str) -> FakeChip:
        if path not in chips:
            raise FileNotFoundError(2, "No such file or directory", path)
        return chips[path]

    module = types.SimpleNamespace(
        Chip=chip,
        LineSettings=LineSettings,
        EdgeEvent=EdgeEvent,
        line=types.SimpleNamespace(Direction=Direction, Value=Value, Edge=Edge, Bias=Bias),
    )
    return module


# ---------------------------------------------------------------------------- SPI ADC


@dataclass
class Waveform:
    """The CP as the ADC sees it, in counts: a 1 kHz PWM between two plateaus."""

    high: int
    low: int
    duty_percent: float
    period_us: float = 1000.0

    def at(self, t_us: float) -> int:
        phase = t_us % self.period_us
        return self.high if phase < self.period_us * self.duty_percent / 100.0 else self.low


@dataclass
class FakeAdc:
    """An MCP320x: channels are waveforms or constants; a burst takes a conversion every
    `spacing_us` (what one ioctl achieves) starting at a random phase."""

    channels: dict[int, Callable[[float], int]] = field(default_factory=dict)
    spacing_us: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    reads: list[int] = field(default_factory=list)
    fail: bool = False

    def read(self, channel: int) -> int:
        if self.fail:
            raise OSError(5, "Input/output error")
        self.reads.append(channel)
        return self.channels[channel](self.rng.uniform(0, 1000))

    def burst(self, channel: int, count: int) -> Sequence[int]:
        if self.fail:
            raise OSError(5, "Input/output error")
        start = self.rng.uniform(0, 1000)
        return [self.channels[channel](start + i * self.spacing_us) for i in range(count)]


# ---------------------------------------------------------------------------- sysfs PWM

PI4_PWM = ("soc/fe20c000.pwm", "soc/pwm@7e20c000")
PI5_PWM = ("axi/1000120000.pcie/1f00098000.pwm", "axi/pcie@120000/rp1/pwm@98000")


def sysfs_pwm(root: Path, chips: dict[int, tuple[str, str]]) -> tuple[Path, Path]:
    """A /sys tree with pwmchipN -> devices/platform/<device>/pwm/pwmchipN, whose device
    links to the platform device and of_node into the device tree. Returns (the
    class/pwm directory, the device-tree base)."""
    klass = root / "class" / "pwm"
    dt = root / "firmware" / "devicetree" / "base"
    klass.mkdir(parents=True)
    for number, (device, node) in chips.items():
        dev = root / "devices" / "platform" / device
        chip = dev / "pwm" / f"pwmchip{number}"
        chip.mkdir(parents=True)
        (dt / node).mkdir(parents=True, exist_ok=True)
        (dev / "of_node").symlink_to(dt / node)
        (chip / "device").symlink_to(dev)
        (chip / "export").write_text("")
        (chip / "npwm").write_text("4")
        (klass / f"pwmchip{number}").symlink_to(chip)
    return klass, dt


def export_channel(chip: Path, channel: int) -> Path:
    """What the kernel does on `echo N > export`: the channel's files appear, all at once
    (built aside and renamed into place, so a reader polling for them from another
    thread never sees a half-made channel nor has a write overwritten)."""
    directory = chip / f"pwm{channel}"
    if directory.exists():
        return directory
    staging = chip / f".pwm{channel}.new"
    staging.mkdir()
    for name, value in (("period", "0"), ("duty_cycle", "0"), ("enable", "0")):
        (staging / name).write_text(value)
    staging.rename(directory)
    return directory
