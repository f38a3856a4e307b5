"""The whole Raspberry Pi board on fakes of its kernel interfaces (gpiod chip, SPI ADC,
sysfs PWM), driven by the real CS controller: plug-in with a socket outlet's cable read
through the ADC, charging, the contactor's feedback, and create_board's errors."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from charger.bus import Bus
from charger.config import EvseConfig, RpiConfig
from charger.cs.evse import EvseController, EvseSettings
from charger.cs.iec61851 import CONTACTOR_FEEDBACK_S
from charger.hal.rpi import Devices, RpiBoard, create_board
from charger.hal.rpi.gpio import GpiodGpio
from charger.hal.rpi.meter import NoMeter
from charger.hal.rpi.pwm import SysfsPwm, find_pwmchip
from charger.runtime.settings import ConfigError
from charger.runtime.tasks import TaskOwner
from tests.support.fake_kernel import (
    PI4_PWM,
    FakeAdc,
    FakeChip,
    Waveform,
    export_channel,
    fake_gpiod,
    pi_line_names,
    sysfs_pwm,
)
from tests.support.polling import eventually

RPI = RpiConfig()


def counts(volts: float) -> int:
    return round((volts - RPI.cp_volts_offset) / RPI.cp_volts_per_count)


class Car:
    """The CP as the car's resistors and our PWM make it, and the cable in the socket."""

    def __init__(self, pwm: SysfsPwm) -> None:
        self.pwm, self.level_v, self.pp_counts = pwm, 12.0, 4095

    def cp(self, t_us: float) -> int:
        duty = self.pwm.duty_percent
        wave = Waveform(counts(self.level_v), counts(-12.0), duty)
        return wave.at(t_us) if 0 < duty < 100 else counts(self.level_v if duty else -12.0)

    def pp(self, t_us: float) -> int:
        return self.pp_counts


def build(tmp_path: Path, evse: EvseConfig) -> tuple[RpiBoard, FakeChip, Car]:
    chip = FakeChip("/dev/gpiochip0", pi_line_names())
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    pwmchip = find_pwmchip("pwm@7e20c000", klass, dt)
    export_channel(pwmchip, 0)
    pwm = SysfsPwm(pwmchip, 0)
    car = Car(pwm)
    adc = FakeAdc({0: car.cp, 1: car.pp})
    devices = Devices(
        gpio=GpiodGpio(fake_gpiod({chip.path: chip}), chips=[chip.path]),
        adc=adc,
        pwm=pwm,
        meter=NoMeter(230.0),
    )
    return RpiBoard(evse, RPI, devices), chip, car


async def wait(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    await eventually(predicate, timeout_s)


class Readings:
    """The controller's clock, each reading kept. Every step of the controller reads it
    first and judges its inputs (the contactor's feedback among them) at that time, and
    the test only runs between steps: two readings at or after `at` mean a whole step
    judged the board at `at` or later."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> float:
        now = time.monotonic()
        self.times.append(now)
        return now

    async def past(self, at: float) -> None:
        await wait(lambda: sum(t >= at for t in self.times[-50:]) >= 2)


async def test_a_session_on_the_board(tmp_path: Path) -> None:
    evse = EvseConfig(id=1, evse_id="DE*PI*E1", socket_outlet=True, max_current_a=32)
    board, chip, car = build(tmp_path, evse)
    hw = board.evses[1]
    assert hw.proximity is not None and hw.lock is not None
    bus = Bus(request_timeout_s=1.0, validate_outgoing=True)
    seen: list[str] = []
    bus.subscribe_all(lambda m: seen.append(m.data["state"]) if m.name == "cp_status" else None)
    tasks = TaskOwner("test")
    clock = Readings()
    controller = EvseController(
        evse,
        hw,
        bus,
        EvseSettings(free_charging=False, meter_interval_s=10, connection_timeout_s=60),
        tasks,
        next_event_id=lambda: 1,
        clock=clock,
    )
    await board.start()
    controller.start()
    run = asyncio.create_task(controller.run())
    rdc = asyncio.create_task(rdc_module(chip))
    try:
        car.pp_counts = round(4095 * 220 / 1220)  # a 32 A cable into the socket
        car.level_v = 9.0
        await wait(lambda: "B1" in seen)
        await wait(lambda: hw.proximity is not None and hw.proximity.read().resistance_ohm < 300)
        controller.authorize("CAFE0001")
        await wait(lambda: "B2" in seen)
        assert car.pwm.duty_percent == pytest.approx(53.33, abs=0.01)  # 32 A
        await wait(lambda: chip.level("GPIO22"))  # the lock motor runs
        chip.drive("GPIO23", True)  # and reaches its position
        car.level_v = 6.0
        await wait(lambda: chip.level("GPIO17"))  # the contactor closes
        closed_at = time.monotonic()
        chip.drive("GPIO27", True)  # its auxiliary contact follows
        await wait(lambda: "C2" in seen)
        # no fault once the controller judged the feedback past its deadline
        await clock.past(closed_at + CONTACTOR_FEEDBACK_S)
        assert not controller.fsm.faults
        car.level_v = 9.0  # the car stops
        await wait(lambda: not chip.level("GPIO17"))
        opened_at = time.monotonic()
        chip.drive("GPIO27", False)
        await clock.past(opened_at + CONTACTOR_FEEDBACK_S)
        assert not controller.fsm.faults
    finally:
        run.cancel()
        rdc.cancel()
        await asyncio.gather(run, rdc, return_exceptions=True)
        await tasks.close()
        await board.stop()
    assert car.pwm.duty_percent == 0.0  # stopped: state F


async def rdc_module(chip: FakeChip) -> None:
    """The RCD answers its test current."""
    while True:
        await asyncio.sleep(0.002)
        testing = chip.level("GPIO25")
        if testing != chip.level("GPIO24"):
            chip.drive("GPIO24", testing)


async def test_a_contactor_without_feedback_is_a_fault(tmp_path: Path) -> None:
    evse = EvseConfig(id=1, evse_id="DE*PI*E1", has_lock=False, rcd_self_test=False)
    board, chip, car = build(tmp_path, evse)
    bus = Bus(request_timeout_s=1.0)
    tasks = TaskOwner("test")
    controller = EvseController(
        evse,
        board.evses[1],
        bus,
        EvseSettings(free_charging=False, meter_interval_s=10, connection_timeout_s=60),
        tasks,
        next_event_id=lambda: 1,
    )
    await board.start()
    controller.start()
    run = asyncio.create_task(controller.run())
    try:
        car.level_v = 9.0
        controller.authorize(None)
        await wait(lambda: 0 < car.pwm.duty_percent < 100)
        car.level_v = 6.0
        await wait(lambda: chip.level("GPIO17"))
        await wait(lambda: bool(controller.fsm.faults))  # no auxiliary contact edge
        assert {f.value for f in controller.fsm.faults} == {"contactor_not_closing"}
        assert not chip.level("GPIO17")
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await tasks.close()
        await board.stop()


def test_create_board_drives_exactly_one_evse() -> None:
    evses = [EvseConfig(id=1, evse_id="A"), EvseConfig(id=2, evse_id="B")]
    with pytest.raises(ValueError, match="exactly one EVSE, the config has 2"):
        create_board(evses, RPI)


def test_create_board_with_rpi_gpio_off_a_pi_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "RPi"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "GPIO.py").write_text(
        'raise RuntimeError("This module can only be run on a Raspberry Pi!")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("RPi", "RPi.GPIO"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    rpi = RpiConfig(gpio_backend="rpi-gpio")
    with pytest.raises(ConfigError) as info:
        create_board([EvseConfig(id=1, evse_id="A")], rpi)
    assert str(info.value).startswith('config: [rpi] gpio_backend = "rpi-gpio": ')
    assert "Raspberry Pi 4 or older only" in str(info.value)
