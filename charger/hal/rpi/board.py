"""Raspberry Pi board: one EVSE on GPIO, hardware PWM and an SPI ADC.

- CP generator: the SoC's hardware PWM through sysfs (1 kHz; 100 % duty = steady +12 V,
  0 % = steady -12 V) and a GPIO that clamps the line to 0 V for state E.
- CP measurement: an MCP3202-class 12-bit SPI ADC behind a divider. A worker thread
  samples it in bursts that span whole PWM periods and takes the highest and lowest
  plateau; a reading is reported only after two bursts agree (debounce), through the
  event loop. SPI transfers therefore never block the loop.
- Contactor, lock, RCD: GPIO outputs and feedback inputs; RCD trips arrive as edge
  interrupts from RPi.GPIO's thread and are handed to the loop.
- Meter and RFID reader: not on the base board; the meter reports no current until a
  meter driver is configured (Modbus meters come with a later issue).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from charger.hal.interfaces import (
    EvseHardware,
    MeterReading,
    PilotReading,
    SteadyLevel,
)
from charger.hal.rpi_settings import RpiConfig, RpiEvse
from charger.runtime.log import event

log = logging.getLogger(__name__)

PWM_PERIOD_NS = 1_000_000  # 1 kHz, IEC 61851-1 Table A.7
SAMPLES_PER_BURST = 64  # at ~20 us per conversion a burst covers > 1 PWM period
BURST_INTERVAL_S = 0.005
CHANGE_THRESHOLD_V = 0.5  # smaller changes are noise, not news
RCD_TEST_TIMEOUT_S = 0.3


class SysfsPwm:
    def __init__(self, chip: int, channel: int, root: Path = Path("/sys/class/pwm")) -> None:
        self._dir = root / f"pwmchip{chip}" / f"pwm{channel}"
        if not self._dir.exists():
            (root / f"pwmchip{chip}" / "export").write_text(str(channel))
        self._write("period", PWM_PERIOD_NS)
        self._write("enable", 1)
        self.duty_percent = 100.0

    def _write(self, name: str, value: int) -> None:
        (self._dir / name).write_text(str(value))  # sysfs writes return at once

    def set_duty(self, duty_percent: float) -> None:
        self.duty_percent = duty_percent
        self._write("duty_cycle", round(PWM_PERIOD_NS * duty_percent / 100.0))


class RpiPilot:
    def __init__(self, gpio: Any, spi: Any, pwm: SysfsPwm, cfg: RpiConfig) -> None:
        self._gpio, self._spi, self._pwm, self._cfg = gpio, spi, pwm, cfg
        self._callbacks: list[Callable[[PilotReading], None]] = []
        self._reading = PilotReading(12.0, 12.0, 100.0)
        self._candidate: tuple[float, float] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        gpio.setup(cfg.cp_zero_pin, gpio.OUT, initial=gpio.LOW)
        pwm.set_duty(100.0)

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 < duty_percent < 100.0:
            raise ValueError(f"PWM duty {duty_percent} % is outside 0-100 %")
        self._gpio.output(self._cfg.cp_zero_pin, self._gpio.LOW)
        self._pwm.set_duty(duty_percent)

    def set_steady(self, level: SteadyLevel) -> None:
        self._gpio.output(
            self._cfg.cp_zero_pin, self._gpio.HIGH if level is SteadyLevel.ZERO else self._gpio.LOW
        )
        self._pwm.set_duty(0.0 if level is SteadyLevel.MINUS_12 else 100.0)

    def read(self) -> PilotReading:
        return self._reading

    def on_change(self, callback: Callable[[PilotReading], None]) -> None:
        self._callbacks.append(callback)

    # sampling thread ---------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._sample_forever, name="cp-adc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _volts(self, counts: int) -> float:
        return counts * self._cfg.cp_volts_per_count + self._cfg.cp_volts_offset

    def _adc(self) -> int:
        # MCP3202: start bit, single-ended, channel, MSB first; 12 result bits.
        channel = 0xA0 | (self._cfg.adc_channel << 6)
        reply = self._spi.xfer2([0x01, channel, 0x00])
        return int(((reply[1] & 0x0F) << 8) | reply[2])

    def sample_burst(self) -> tuple[float, float]:
        counts = [self._adc() for _ in range(SAMPLES_PER_BURST)]
        return round(self._volts(max(counts)), 2), round(self._volts(min(counts)), 2)

    def accept(self, burst: tuple[float, float]) -> PilotReading | None:
        """Debounce: a new level counts when two bursts in a row agree on it."""
        candidate, self._candidate = self._candidate, burst
        if (
            candidate is None
            or max(abs(a - b) for a, b in zip(candidate, burst, strict=True)) > CHANGE_THRESHOLD_V
        ):
            return None
        current = self._reading
        positive, negative = burst
        if (
            abs(positive - current.positive_v) <= CHANGE_THRESHOLD_V
            and abs(negative - current.negative_v) <= CHANGE_THRESHOLD_V
            and self._pwm.duty_percent == current.duty_percent
        ):
            return None
        duty = self._pwm.duty_percent
        return PilotReading(positive, negative if 0.0 < duty < 100.0 else positive, duty)

    def _sample_forever(self) -> None:
        while not self._stop.is_set():
            try:
                reading = self.accept(self.sample_burst())
            except OSError as exc:
                event(log, logging.ERROR, "cp_adc_failed", error=str(exc))
                reading = None
                time.sleep(0.5)
            if reading is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._publish, reading)
            time.sleep(BURST_INTERVAL_S)

    def _publish(self, reading: PilotReading) -> None:
        self._reading = reading
        for callback in tuple(self._callbacks):
            callback(reading)


class GpioSwitch:
    """An output with an optional feedback input (contactor, lock)."""

    def __init__(self, gpio: Any, pin: int, feedback_pin: int | None) -> None:
        self._gpio, self._pin, self._feedback = gpio, pin, feedback_pin
        gpio.setup(pin, gpio.OUT, initial=gpio.LOW)
        if feedback_pin is not None:
            gpio.setup(feedback_pin, gpio.IN, pull_up_down=gpio.PUD_DOWN)

    def _set(self, on: bool) -> None:
        self._gpio.output(self._pin, self._gpio.HIGH if on else self._gpio.LOW)

    def _get(self) -> bool | None:
        return None if self._feedback is None else bool(self._gpio.input(self._feedback))

    def set_closed(self, closed: bool) -> None:
        self._set(closed)

    def feedback_closed(self) -> bool | None:
        return self._get()

    def set_locked(self, locked: bool) -> None:
        self._set(locked)

    def feedback_locked(self) -> bool | None:
        return self._get()


class RpiRcd:
    def __init__(self, gpio: Any, trip_pin: int, test_pin: int) -> None:
        self._gpio, self._trip, self._test = gpio, trip_pin, test_pin
        self._callbacks: list[Callable[[bool], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        gpio.setup(trip_pin, gpio.IN, pull_up_down=gpio.PUD_DOWN)
        gpio.setup(test_pin, gpio.OUT, initial=gpio.LOW)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._gpio.add_event_detect(self._trip, self._gpio.BOTH, callback=self._edge, bouncetime=20)

    def _edge(self, _pin: int) -> None:  # runs in RPi.GPIO's thread
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, self.tripped())

    def _notify(self, tripped: bool) -> None:
        for callback in tuple(self._callbacks):
            callback(tripped)

    def tripped(self) -> bool:
        return bool(self._gpio.input(self._trip))

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    async def self_test(self) -> bool:
        """Injects the test current and expects a trip within RCD_TEST_TIMEOUT_S."""
        self._gpio.output(self._test, self._gpio.HIGH)
        try:
            deadline = asyncio.get_running_loop().time() + RCD_TEST_TIMEOUT_S
            while not self.tripped():
                if asyncio.get_running_loop().time() > deadline:
                    return False
                await asyncio.sleep(0.01)
            return True
        finally:
            self._gpio.output(self._test, self._gpio.LOW)

    def reset(self) -> bool:
        return not self.tripped()


class NoMeter:
    """Stands in until a meter driver is configured: nominal voltage, no current."""

    def __init__(self, config: RpiEvse) -> None:
        self._volts = config.nominal_voltage_v

    async def read(self) -> MeterReading:
        v = self._volts
        return MeterReading((v, v, v), (0.0, 0.0, 0.0), 0.0, 50.0, 1.0, 0.0, 0.0, 0.0, 0.0)


class RpiPlc:
    """The QCA7000 on SPI: frames go through the kernel's qcaspi interface."""

    def __init__(self, interface: str) -> None:
        self._interface = interface

    @property
    def interface(self) -> str:
        return self._interface

    def frame_transport(self) -> None:
        return None  # a raw socket on `interface`

    async def reset_modem(self) -> None:
        event(log, logging.WARNING, "modem_reset_unwired", interface=self._interface)


class RpiBoard:
    def __init__(self, config: RpiEvse, rpi: RpiConfig, gpio: Any, spi: Any, pwm: SysfsPwm) -> None:
        self._gpio = gpio
        self.pilot = RpiPilot(gpio, spi, pwm, rpi)
        self.rcd = RpiRcd(gpio, rpi.rcd_trip_pin, rpi.rcd_test_pin)
        contactor = GpioSwitch(gpio, rpi.contactor_pin, rpi.contactor_feedback_pin)
        lock = GpioSwitch(gpio, rpi.lock_pin, rpi.lock_feedback_pin) if config.has_lock else None
        self._contactor = contactor
        self._hardware = {
            config.id: EvseHardware(
                pilot=self.pilot,
                contactor=contactor,
                rcd=self.rcd,
                meter=NoMeter(config),
                lock=lock,
                plc=RpiPlc(config.network_interface),
            )
        }

    @property
    def evses(self) -> Mapping[int, EvseHardware]:
        return self._hardware

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.pilot.start(loop)
        self.rcd.start(loop)

    async def stop(self) -> None:
        self.drive_safe()
        self.pilot.stop()

    def drive_safe(self) -> None:
        self._contactor.set_closed(False)
        self.pilot.set_steady(SteadyLevel.MINUS_12)


def create_board(evses: Sequence[RpiEvse], rpi: RpiConfig) -> RpiBoard:
    if len(evses) != 1:
        raise ValueError(f"the rpi backend drives exactly one EVSE, the config has {len(evses)}")
    import spidev  # imported here: only a Raspberry Pi has these
    from RPi import GPIO

    GPIO.setmode(GPIO.BCM)
    GPIO.setwarnings(False)
    spi = spidev.SpiDev()
    spi.open(rpi.spi_bus, rpi.spi_device)
    spi.max_speed_hz = 1_000_000
    return RpiBoard(evses[0], rpi, GPIO, spi, SysfsPwm(rpi.pwm_chip, rpi.pwm_channel))
