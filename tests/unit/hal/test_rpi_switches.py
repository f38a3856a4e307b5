"""Contactor, H-bridge lock and RCD of the Raspberry Pi board on a fake gpiod chip."""

from __future__ import annotations

import asyncio
import logging

import pytest

from charger.hal.rpi import switches
from charger.hal.rpi.gpio import GpiodGpio
from charger.hal.rpi.switches import HBridgeLock, RpiContactor, RpiRcd
from tests.support.fake_kernel import FakeChip, fake_gpiod, pi_line_names


@pytest.fixture
def chip() -> FakeChip:
    return FakeChip("/dev/gpiochip0", pi_line_names())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.002)


async def test_contactor_feedback_follows_the_edges(
    chip: FakeChip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="charger.hal.rpi.switches")
    gpio = GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path])
    contactor = RpiContactor(gpio.output("GPIO17"), gpio.input("GPIO27", debounce_ms=10))
    gpio.start(asyncio.get_running_loop())
    contactor.set_closed(True)
    assert chip.level("GPIO17") and contactor.feedback_closed() is False
    chip.drive("GPIO27", True)  # the auxiliary contact closes
    await settle()
    assert contactor.feedback_closed() is True
    contactor.set_closed(False)
    chip.drive("GPIO27", False)
    await settle()
    assert contactor.feedback_closed() is False
    chip.drive("GPIO27", True)  # closes by itself: welded, or a wiring fault
    await settle()
    assert contactor.feedback_closed() is True
    logged = [r for r in caplog.records if r.getMessage().startswith("contactor_feedback")]
    assert [r.levelname for r in logged] == ["INFO", "INFO", "WARNING"]
    gpio.close()


def test_contactor_without_feedback(chip: FakeChip) -> None:
    gpio = GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path])
    assert RpiContactor(gpio.output("GPIO17"), None).feedback_closed() is None


async def test_h_bridge_lock_pulses_one_side_then_brakes(chip: FakeChip) -> None:
    gpio = GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path])
    lock = HBridgeLock(
        gpio.output("GPIO22"), gpio.output("GPIO16"), gpio.input("GPIO23"), pulse_s=0.05
    )
    gpio.start(asyncio.get_running_loop())
    lock.set_locked(True)
    assert chip.level("GPIO22") and not chip.level("GPIO16")
    await asyncio.sleep(0.02)
    assert chip.level("GPIO22")  # still driving
    chip.drive("GPIO23", True)  # the position switch reports locked
    await asyncio.sleep(0.05)
    assert not chip.level("GPIO22") and not chip.level("GPIO16")  # braked
    assert lock.feedback_locked() is True
    lock.set_locked(False)
    assert chip.level("GPIO16") and not chip.level("GPIO22")
    lock.set_locked(True)  # a new command cuts the running pulse: never both high
    assert chip.level("GPIO22") and not chip.level("GPIO16")
    await asyncio.sleep(0.07)
    assert not chip.level("GPIO22")
    gpio.close()


def test_h_bridge_lock_outside_a_loop_waits_for_its_pulse(chip: FakeChip) -> None:
    gpio = GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path])
    lock = HBridgeLock(gpio.output("GPIO22"), gpio.output("GPIO16"), None, pulse_s=0.01)
    lock.set_locked(True)
    assert not chip.level("GPIO22") and lock.feedback_locked() is None


class Rdc:
    """An RDC-DD module: trips while its test input is driven, after `trip_s`."""

    def __init__(self, chip: FakeChip, trip_s: float = 0.02, rearms: bool = True) -> None:
        self.chip, self.trip_s, self.rearms, self.broken = chip, trip_s, rearms, False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.002)
            testing = self.chip.level("GPIO25")
            if testing and not self.broken and not self.chip.level("GPIO24"):
                await asyncio.sleep(self.trip_s)
                self.chip.drive("GPIO24", True)
            if not testing and self.chip.level("GPIO24") and self.rearms:
                self.chip.drive("GPIO24", False)


async def rcd_rig(chip: FakeChip) -> tuple[RpiRcd, GpiodGpio, list[bool]]:
    gpio = GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path])
    rcd = RpiRcd(gpio.input("GPIO24", debounce_ms=5), gpio.output("GPIO25"))
    seen: list[bool] = []
    rcd.on_change(seen.append)
    gpio.start(asyncio.get_running_loop())
    return rcd, gpio, seen


async def test_rcd_self_test_passes_without_reporting_its_own_trip(chip: FakeChip) -> None:
    rcd, gpio, seen = await rcd_rig(chip)
    module = Rdc(chip)
    task = asyncio.create_task(module.run())
    try:
        assert await rcd.self_test() is True
        assert seen == [] and not chip.level("GPIO25")
        chip.drive("GPIO24", True)  # a real trip is reported
        module.rearms = False
        await settle()
        assert seen == [True] and rcd.tripped() and rcd.reset() is False
        assert await rcd.self_test() is False  # tripped already: nothing to test
    finally:
        task.cancel()
        gpio.close()


async def test_rcd_that_does_not_trip_or_does_not_rearm_fails(
    chip: FakeChip, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switches, "RCD_TRIP_TIMEOUT_S", 0.05)
    monkeypatch.setattr(switches, "RCD_RELEASE_TIMEOUT_S", 0.05)
    rcd, gpio, seen = await rcd_rig(chip)
    module = Rdc(chip)
    module.broken = True
    task = asyncio.create_task(module.run())
    try:
        assert await rcd.self_test() is False
        assert not chip.level("GPIO25")  # the test current is off again
        module.broken, module.rearms = False, False
        assert await rcd.self_test() is False  # trips but stays tripped
        await settle()
        assert seen == [True]  # stuck tripped after the test: that is news
    finally:
        task.cancel()
        gpio.close()
