"""GPIO lines for the Raspberry Pi board: libgpiod v2 (the `gpiod` package, every Pi and
any Linux board), or RPi.GPIO (Pi 4 and older only; it fails on the Pi 5's RP1).

A line is named in the config as the device tree names it (`"GPIO17"`: the Pi's
gpio-line-names, looked up on every /dev/gpiochip*) or by chip and offset
(`"gpiochip0:17"`, `"/dev/gpiochip4:17"`) where the board names nothing. Inputs get kernel
debounce and edge events; the gpiod backend reads them in the event loop itself (the
request's file descriptor is registered with `loop.add_reader`), RPi.GPIO from its own
thread, handed to the loop with `call_soon_threadsafe`. Either way a line's callback runs
in the loop with the new level.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any, Literal, Protocol

from charger.runtime.log import event

log = logging.getLogger(__name__)

Pull = Literal["up", "down", "none"]
CONSUMER = "charger"
_CHIP_OFFSET = re.compile(r"(?P<chip>(/dev/)?gpiochip\d+):(?P<offset>\d+)")
_PI_NAME = re.compile(r"GPIO(?P<bcm>\d+)")


class GpioError(Exception):
    """A line cannot be had: not found, busy, or the backend does not work here."""


class OutputLine(Protocol):
    def set(self, active: bool) -> None:
        """Drives the line (a register write: returns at once)."""


class InputLine(Protocol):
    def get(self) -> bool: ...

    def on_edge(self, callback: Callable[[bool], None]) -> None:
        """Calls back from the event loop with the level after each debounced edge."""


class Gpio(Protocol):
    def output(self, line: str, initial: bool = False) -> OutputLine: ...

    def input(self, line: str, *, pull: Pull = "down", debounce_ms: int = 0) -> InputLine: ...

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begins delivering edges to the loop."""

    def close(self) -> None:
        """Releases every line (outputs keep their last level until the kernel resets)."""


class _Edges:
    """The callbacks of one input line."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[bool], None]] = []

    def on_edge(self, callback: Callable[[bool], None]) -> None:
        self.callbacks.append(callback)

    def deliver(self, level: bool) -> None:
        for callback in tuple(self.callbacks):
            callback(level)


# ----------------------------------------------------------------------------- gpiod


class _GpiodOutput:
    def __init__(self, gpiod: ModuleType, request: Any, offset: int) -> None:
        self._value, self._request, self._offset = gpiod.line.Value, request, offset

    def set(self, active: bool) -> None:
        value = self._value.ACTIVE if active else self._value.INACTIVE
        self._request.set_value(self._offset, value)


class _GpiodInput(_Edges):
    def __init__(self, gpiod: ModuleType, request: Any, offset: int) -> None:
        super().__init__()
        self._gpiod, self._request, self._offset = gpiod, request, offset
        self.level = self._read()

    def _read(self) -> bool:
        return bool(self._request.get_value(self._offset) == self._gpiod.line.Value.ACTIVE)

    def get(self) -> bool:
        return self.level

    def readable(self) -> None:
        """The request's fd is readable: its edge events are waiting (runs in the loop)."""
        rising = self._gpiod.EdgeEvent.Type.RISING_EDGE
        events = self._request.read_edge_events()
        if not events:
            return
        level = events[-1].event_type == rising
        if level != self.level:
            self.level = level
            self.deliver(level)


class GpiodGpio:
    """libgpiod v2 through its Python binding; `gpiod` is the module (a fake in tests)."""

    def __init__(self, gpiod: ModuleType, chips: list[str] | None = None) -> None:
        self._gpiod = gpiod
        self._chip_paths = chips if chips is not None else sorted(glob.glob("/dev/gpiochip*"))
        self._chips: dict[str, Any] = {}
        self._requests: list[Any] = []
        self._inputs: list[tuple[Any, _GpiodInput]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _chip(self, path: str) -> Any:
        if path not in self._chips:
            try:
                self._chips[path] = self._gpiod.Chip(path)
            except OSError as exc:
                raise GpioError(f"cannot open {path}: {exc.strerror or exc}") from exc
        return self._chips[path]

    def resolve(self, line: str) -> tuple[str, int]:
        """(chip path, offset) of a line given by name or as chip:offset."""
        match = _CHIP_OFFSET.fullmatch(line)
        if match:
            chip = match["chip"]
            return (chip if chip.startswith("/") else f"/dev/{chip}"), int(match["offset"])
        for path in self._chip_paths:
            try:
                return path, int(self._chip(path).line_offset_from_id(line))
            except (OSError, ValueError):
                continue
        raise GpioError(
            f"no GPIO line named {line!r} on {', '.join(self._chip_paths) or 'any gpiochip'} "
            '(give it as "gpiochipN:offset" where the device tree names no lines)'
        )

    def _request(self, line: str, settings: Any) -> tuple[Any, int]:
        path, offset = self.resolve(line)
        try:
            request = self._chip(path).request_lines(config={offset: settings}, consumer=CONSUMER)
        except (OSError, ValueError) as exc:
            raise GpioError(f"cannot request GPIO {line} ({path}:{offset}): {exc}") from exc
        self._requests.append(request)
        return request, offset

    def output(self, line: str, initial: bool = False) -> OutputLine:
        g = self._gpiod
        settings = g.LineSettings(
            direction=g.line.Direction.OUTPUT,
            output_value=g.line.Value.ACTIVE if initial else g.line.Value.INACTIVE,
        )
        request, offset = self._request(line, settings)
        return _GpiodOutput(g, request, offset)

    def input(self, line: str, *, pull: Pull = "down", debounce_ms: int = 0) -> InputLine:
        g = self._gpiod
        bias = {
            "up": g.line.Bias.PULL_UP,
            "down": g.line.Bias.PULL_DOWN,
            "none": g.line.Bias.DISABLED,
        }
        settings = g.LineSettings(
            direction=g.line.Direction.INPUT,
            edge_detection=g.line.Edge.BOTH,
            bias=bias[pull],
            debounce_period=timedelta(milliseconds=debounce_ms),
        )
        request, offset = self._request(line, settings)
        handle = _GpiodInput(g, request, offset)
        self._inputs.append((request, handle))
        return handle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for request, handle in self._inputs:
            loop.add_reader(request.fd, handle.readable)

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for request, _ in self._inputs:
                self._loop.remove_reader(request.fd)
        for request in self._requests:
            request.release()
        for chip in self._chips.values():
            chip.close()
        self._requests.clear()
        self._chips.clear()


# ----------------------------------------------------------------------------- RPi.GPIO


def bcm_number(line: str) -> int:
    """RPi.GPIO numbers lines by BCM number: "GPIO17" or "gpiochip0:17" -> 17."""
    name = _PI_NAME.fullmatch(line)
    if name:
        return int(name["bcm"])
    chip = _CHIP_OFFSET.fullmatch(line)
    if chip and chip["chip"].endswith("gpiochip0"):
        return int(chip["offset"])
    raise GpioError(
        f'RPi.GPIO knows only the SoC\'s lines ("GPIO17" or "gpiochip0:17"), not {line!r}'
    )


class _RpiOutput:
    def __init__(self, gpio: Any, pin: int) -> None:
        self._gpio, self._pin = gpio, pin

    def set(self, active: bool) -> None:
        self._gpio.output(self._pin, self._gpio.HIGH if active else self._gpio.LOW)


class _RpiInput(_Edges):
    def __init__(self, owner: RpiGpio, pin: int, debounce_ms: int) -> None:
        super().__init__()
        self._owner, self._pin, self._debounce_ms = owner, pin, debounce_ms

    def get(self) -> bool:
        return bool(self._owner.gpio.input(self._pin))

    def start(self) -> None:
        gpio = self._owner.gpio
        kwargs: dict[str, Any] = {"callback": self._edge}
        if self._debounce_ms > 0:
            kwargs["bouncetime"] = self._debounce_ms
        gpio.add_event_detect(self._pin, gpio.BOTH, **kwargs)

    def _edge(self, _pin: int) -> None:  # RPi.GPIO's thread
        loop = self._owner.loop
        if loop is not None:
            loop.call_soon_threadsafe(self.deliver, self.get())


class RpiGpio:
    """RPi.GPIO (BCM numbering); `gpio` is the RPi.GPIO module (a fake in tests)."""

    def __init__(self, gpio: Any) -> None:
        self.gpio = gpio
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inputs: list[_RpiInput] = []
        gpio.setmode(gpio.BCM)
        gpio.setwarnings(False)

    def output(self, line: str, initial: bool = False) -> OutputLine:
        pin = bcm_number(line)
        self.gpio.setup(pin, self.gpio.OUT, initial=self.gpio.HIGH if initial else self.gpio.LOW)
        return _RpiOutput(self.gpio, pin)

    def input(self, line: str, *, pull: Pull = "down", debounce_ms: int = 0) -> InputLine:
        pin = bcm_number(line)
        pud = {"up": self.gpio.PUD_UP, "down": self.gpio.PUD_DOWN, "none": self.gpio.PUD_OFF}
        self.gpio.setup(pin, self.gpio.IN, pull_up_down=pud[pull])
        handle = _RpiInput(self, pin, debounce_ms)
        self._inputs.append(handle)
        return handle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        for handle in self._inputs:
            handle.start()

    def close(self) -> None:
        self.gpio.cleanup()


# ----------------------------------------------------------------------------- choosing


def open_gpio(backend: str) -> Gpio:
    """The configured backend, imported only now; a backend that cannot work here is a
    GpioError that says what to configure instead."""
    if backend == "gpiod":
        try:
            import gpiod
        except ImportError as exc:
            raise GpioError(
                f'[rpi] gpio_backend = "gpiod" needs the gpiod package ({exc}): pip install .[rpi]'
            ) from exc
        if not glob.glob("/dev/gpiochip*"):
            raise GpioError('[rpi] gpio_backend = "gpiod": this machine has no /dev/gpiochip*')
        return GpiodGpio(gpiod)
    try:
        from RPi import GPIO  # its import raises RuntimeError off a Pi (and on a Pi 5)
    except (ImportError, RuntimeError) as exc:
        raise GpioError(
            f'[rpi] gpio_backend = "rpi-gpio": RPi.GPIO does not work here ({exc}); it runs '
            'on a Raspberry Pi 4 or older only: use gpio_backend = "gpiod"'
        ) from exc
    event(log, logging.INFO, "gpio_backend", backend="rpi-gpio")
    return RpiGpio(GPIO)
