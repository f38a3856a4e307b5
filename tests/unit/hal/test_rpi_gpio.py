"""GPIO through libgpiod v2 (a fake gpiod module whose requests have real file
descriptors) and through RPi.GPIO (a fake module), and choosing between them."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from charger.hal.rpi import gpio as gpio_mod
from charger.hal.rpi.gpio import GpiodGpio, GpioError, RpiGpio, bcm_number
from tests.support.fake_kernel import Bias, Edge, FakeChip, fake_gpiod, pi_line_names


@pytest.fixture
def chips() -> dict[str, FakeChip]:
    # The Pi 5: the header's lines are on the RP1's chip, not on chip 0.
    return {
        "/dev/gpiochip0": FakeChip("/dev/gpiochip0", [f"RP1_{i}" for i in range(32)]),
        "/dev/gpiochip4": FakeChip("/dev/gpiochip4", pi_line_names(54)),
    }


def gpiod_gpio(chips: dict[str, FakeChip]) -> GpiodGpio:
    return GpiodGpio(fake_gpiod(chips), chips=sorted(chips))


def test_lines_by_device_tree_name_on_whichever_chip_has_them(chips: dict[str, FakeChip]) -> None:
    gpio = gpiod_gpio(chips)
    assert gpio.resolve("GPIO17") == ("/dev/gpiochip4", 17)
    assert gpio.resolve("gpiochip0:5") == ("/dev/gpiochip0", 5)
    assert gpio.resolve("/dev/gpiochip4:3") == ("/dev/gpiochip4", 3)
    with pytest.raises(GpioError, match=r"no GPIO line named 'GPIO99'.*gpiochipN:offset"):
        gpio.resolve("GPIO99")


def test_outputs_start_inactive_and_follow(chips: dict[str, FakeChip]) -> None:
    gpio = gpiod_gpio(chips)
    line = gpio.output("GPIO17")
    assert chips["/dev/gpiochip4"].level("GPIO17") is False
    line.set(True)
    assert chips["/dev/gpiochip4"].level("GPIO17") is True
    high = gpio.output("GPIO5", initial=True)
    assert chips["/dev/gpiochip4"].level("GPIO5") is True
    high.set(False)
    with pytest.raises(GpioError, match=r"cannot request GPIO GPIO17.*busy"):
        gpio.output("GPIO17")
    gpio.close()
    assert all(c.closed for c in chips.values() if c.path.endswith("4"))


async def test_inputs_have_kernel_debounce_and_deliver_edges_in_the_loop(
    chips: dict[str, FakeChip],
) -> None:
    gpio = gpiod_gpio(chips)
    line = gpio.input("GPIO24", pull="down", debounce_ms=10)
    settings = chips["/dev/gpiochip4"].lines[24].settings
    assert settings is not None
    assert settings.edge_detection is Edge.BOTH and settings.bias is Bias.PULL_DOWN
    assert settings.debounce_period == timedelta(milliseconds=10)
    seen: list[bool] = []
    line.on_edge(seen.append)
    gpio.start(asyncio.get_running_loop())
    chips["/dev/gpiochip4"].drive("GPIO24", True)
    assert line.get() is False  # not before the loop has read the event
    for _ in range(20):
        await asyncio.sleep(0.005)
        if seen:
            break
    assert seen == [True] and line.get() is True
    chips["/dev/gpiochip4"].drive("GPIO24", False)
    await asyncio.sleep(0.02)
    assert seen == [True, False]
    gpio.close()


class FakeRpiGpio:
    BCM, OUT, IN, HIGH, LOW, BOTH = "BCM", "out", "in", 1, 0, "both"
    PUD_UP, PUD_DOWN, PUD_OFF = "up", "down", "off"

    def __init__(self) -> None:
        self.levels: dict[int, int] = {}
        self.setups: dict[int, tuple[str, Any]] = {}
        self.callbacks: dict[int, tuple[Any, int | None]] = {}
        self.mode = ""
        self.cleaned = False

    def setmode(self, mode: str) -> None:
        self.mode = mode

    def setwarnings(self, on: bool) -> None:
        pass

    def setup(self, pin: int, mode: str, initial: int = 0, pull_up_down: str = "") -> None:
        self.setups[pin] = (mode, pull_up_down or initial)
        self.levels.setdefault(pin, initial if mode == self.OUT else 0)

    def output(self, pin: int, value: int) -> None:
        self.levels[pin] = value

    def input(self, pin: int) -> int:
        return self.levels[pin]

    def add_event_detect(
        self, pin: int, edge: str, callback: Any, bouncetime: int | None = None
    ) -> None:
        self.callbacks[pin] = (callback, bouncetime)

    def cleanup(self) -> None:
        self.cleaned = True


async def test_rpi_gpio_backend_uses_bcm_numbers_and_hands_edges_to_the_loop() -> None:
    fake = FakeRpiGpio()
    gpio = RpiGpio(fake)
    assert fake.mode == "BCM"
    out = gpio.output("GPIO17")
    out.set(True)
    assert fake.levels[17] == 1
    line = gpio.input("gpiochip0:24", pull="up", debounce_ms=5)
    assert fake.setups[24] == ("in", "up")
    seen: list[bool] = []
    line.on_edge(seen.append)
    gpio.start(asyncio.get_running_loop())
    callback, bounce = fake.callbacks[24]
    assert bounce == 5
    fake.levels[24] = 1
    await asyncio.to_thread(callback, 24)  # RPi.GPIO calls from its own thread
    await asyncio.sleep(0)
    assert seen == [True]
    gpio.close()
    assert fake.cleaned


def test_bcm_numbers() -> None:
    assert bcm_number("GPIO26") == 26 and bcm_number("/dev/gpiochip0:7") == 7
    with pytest.raises(GpioError, match=r"RPi\.GPIO knows only the SoC's lines"):
        bcm_number("gpiochip4:17")  # the Pi 5's RP1: RPi.GPIO cannot drive it


def test_rpi_gpio_off_a_pi_is_a_clear_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RPi.GPIO's import raises RuntimeError anywhere but on a Pi 4 or older.
    package = tmp_path / "RPi"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "GPIO.py").write_text(
        'raise RuntimeError("This module can only be run on a Raspberry Pi!")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("RPi", "RPi.GPIO"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(GpioError) as info:
        gpio_mod.open_gpio("rpi-gpio")
    message = str(info.value)
    assert "can only be run on a Raspberry Pi" in message
    assert 'use gpio_backend = "gpiod"' in message


def test_gpiod_without_gpio_chips_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpio_mod.glob, "glob", lambda pattern: [])
    with pytest.raises(GpioError, match="no /dev/gpiochip"):
        gpio_mod.open_gpio("gpiod")
