"""The Raspberry Pi backend against fake GPIO, SPI and sysfs PWM (hardware doubles)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from charger.config import EvseConfig, RpiConfig
from charger.hal import rpi
from charger.hal.interfaces import SteadyLevel

CFG = RpiConfig()


class FakeGpio:
    BCM, OUT, IN, HIGH, LOW, PUD_DOWN, BOTH = "BCM", "out", "in", 1, 0, "down", "both"

    def __init__(self) -> None:
        self.outputs: dict[int, int] = {}
        self.inputs: dict[int, int] = {}
        self.edge_callbacks: dict[int, Any] = {}

    def setup(self, pin: int, mode: str, initial: int = 0, pull_up_down: str = "") -> None:
        if mode == self.OUT:
            self.outputs[pin] = initial
        else:
            self.inputs.setdefault(pin, 0)

    def output(self, pin: int, value: int) -> None:
        self.outputs[pin] = value

    def input(self, pin: int) -> int:
        return self.inputs[pin]

    def add_event_detect(self, pin: int, edge: str, callback: Any, bouncetime: int) -> None:
        self.edge_callbacks[pin] = callback


class FakeSpi:
    """Answers MCP3202 conversions from a list of counts, cycling."""

    def __init__(self, counts: list[int]) -> None:
        self.counts, self.index, self.sent = counts, 0, []

    def xfer2(self, data: list[int]) -> list[int]:
        self.sent.append(data)
        value = self.counts[self.index % len(self.counts)]
        self.index += 1
        return [0, (value >> 8) & 0x0F, value & 0xFF]


def counts_for(volts: float) -> int:
    return round((volts - CFG.cp_volts_offset) / CFG.cp_volts_per_count)


@pytest.fixture
def pwm(tmp_path: Path) -> rpi.SysfsPwm:
    (tmp_path / "pwmchip0" / "pwm0").mkdir(parents=True)
    return rpi.SysfsPwm(0, 0, root=tmp_path)


def make_board(pwm: rpi.SysfsPwm, counts: list[int] | None = None) -> tuple[rpi.RpiBoard, FakeGpio]:
    gpio = FakeGpio()
    evse = EvseConfig(id=1, evse_id="DE*PI*E1")
    spi = FakeSpi(counts or [counts_for(12.0)])
    return rpi.RpiBoard(evse, CFG, gpio, spi, pwm), gpio


def sysfs(pwm: rpi.SysfsPwm, name: str) -> str:
    return (pwm._dir / name).read_text()


def test_pwm_output_through_sysfs(pwm: rpi.SysfsPwm) -> None:
    board, gpio = make_board(pwm)
    assert sysfs(pwm, "period") == "1000000" and sysfs(pwm, "enable") == "1"
    board.pilot.set_pwm(53.33)
    assert sysfs(pwm, "duty_cycle") == "533300"
    board.pilot.set_steady(SteadyLevel.MINUS_12)
    assert sysfs(pwm, "duty_cycle") == "0" and gpio.outputs[CFG.cp_zero_pin] == 0
    board.pilot.set_steady(SteadyLevel.ZERO)
    assert gpio.outputs[CFG.cp_zero_pin] == 1
    board.pilot.set_steady(SteadyLevel.PLUS_12)
    assert sysfs(pwm, "duty_cycle") == "1000000" and gpio.outputs[CFG.cp_zero_pin] == 0
    with pytest.raises(ValueError, match="outside 0-100"):
        board.pilot.set_pwm(100.0)


def test_adc_frame_and_scaling(pwm: rpi.SysfsPwm) -> None:
    board, _ = make_board(pwm, [4095, 0])
    assert board.pilot.sample_burst() == (15.5, -15.5)
    spi = board.pilot._spi
    assert spi.sent[0] == [0x01, 0xA0, 0x00]  # start bit, single-ended channel 0


def test_pwm_plateaus_are_debounced(pwm: rpi.SysfsPwm) -> None:
    board, _ = make_board(pwm, [counts_for(9.0), counts_for(-12.0)])
    board.pilot.set_pwm(26.67)
    burst = board.pilot.sample_burst()
    assert burst == pytest.approx((9.0, -12.0), abs=0.01)
    assert board.pilot.accept(burst) is None  # first sight: wait for a second burst
    reading = board.pilot.accept(burst)
    assert reading is not None
    assert (reading.positive_v, reading.negative_v, reading.duty_percent) == pytest.approx(
        (9.0, -12.0, 26.67), abs=0.01
    )
    board.pilot._reading = reading
    assert board.pilot.accept(burst) is None  # nothing new


def test_contactor_and_lock_outputs_and_feedback(pwm: rpi.SysfsPwm) -> None:
    board, gpio = make_board(pwm)
    hw = board.evses[1]
    hw.contactor.set_closed(True)
    assert gpio.outputs[CFG.contactor_pin] == 1
    assert hw.contactor.feedback_closed() is False
    gpio.inputs[CFG.contactor_feedback_pin] = 1
    assert hw.contactor.feedback_closed() is True
    assert hw.lock is not None
    hw.lock.set_locked(True)
    assert gpio.outputs[CFG.lock_pin] == 1
    board.drive_safe()
    assert gpio.outputs[CFG.contactor_pin] == 0 and sysfs(pwm, "duty_cycle") == "0"


async def test_rcd_edges_reach_the_loop_and_self_test(pwm: rpi.SysfsPwm) -> None:
    board, gpio = make_board(pwm)
    seen: list[bool] = []
    board.rcd.on_change(seen.append)
    board.rcd.start(asyncio.get_running_loop())
    gpio.inputs[CFG.rcd_trip_pin] = 1
    gpio.edge_callbacks[CFG.rcd_trip_pin](CFG.rcd_trip_pin)
    await asyncio.sleep(0)
    assert seen == [True] and board.rcd.reset() is False
    assert await board.rcd.self_test() is True  # already tripped: the test "trips" at once
    assert gpio.outputs[CFG.rcd_test_pin] == 0
    gpio.inputs[CFG.rcd_trip_pin] = 0
    assert await board.rcd.self_test() is False  # never trips: the RCD is faulty


def test_rpi_backend_drives_exactly_one_evse() -> None:
    evses = [EvseConfig(id=1, evse_id="A"), EvseConfig(id=2, evse_id="B")]
    with pytest.raises(ValueError, match="exactly one EVSE, the config has 2"):
        rpi.create_board(evses, CFG)
