"""Control pilot (generator and measurement) and proximity pilot of the Raspberry Pi board.

Generator: hardware PWM (pwm.py) and a GPIO that clamps the CP line to 0 V (state E).
Measurement: a worker thread samples the ADC every BURST_INTERVAL_S and hands debounced
changes to the event loop (`call_soon_threadsafe`), so no SPI transfer blocks the loop:

- `BurstSampler`: a burst of conversions longer than one PWM period (C extension), the
  highest and lowest values being the plateaus. 128 conversions at ~30 us span ~4 ms,
  several periods, with at least one sample inside every 50 us high plateau at 5 %.
- `PeakSampler`: boards with analogue peak detectors (positive and negative peak on two
  ADC channels, a reset line that discharges them): read both, then reset.

The same thread reads a socket outlet's PP every PP_EVERY bursts: the plug's coding
resistor against a pull-up to the ADC's reference, so R = R_pullup * c / (4095 - c).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from charger.hal.interfaces import PilotReading, ProximityReading, SteadyLevel
from charger.hal.rpi.adc import FULL_SCALE, Adc
from charger.hal.rpi.gpio import OutputLine
from charger.hal.rpi.pwm import SysfsPwm
from charger.runtime.log import event

log = logging.getLogger(__name__)

SAMPLES_PER_BURST = 128
BURST_INTERVAL_S = 0.005
CHANGE_THRESHOLD_V = 0.5  # smaller changes are noise, not news
PEAK_RESET_S = 0.0001  # long enough to discharge the peak detectors' capacitors
PP_EVERY = 20  # bursts between PP readings (~0.1 s)
PP_SAMPLES = 4
PP_CHANGE = 0.05  # a relative change of the resistance smaller than this is noise
ADC_RETRY_S = 0.5


class CpSampler(Protocol):
    def sample(self) -> tuple[float, float]:
        """(positive, negative) plateau in volts, from one measurement (blocking)."""


class Scale:
    """ADC counts to CP volts: the board's divider."""

    def __init__(self, volts_per_count: float, offset_v: float) -> None:
        self.volts_per_count, self.offset_v = volts_per_count, offset_v

    def volts(self, counts: int) -> float:
        return round(counts * self.volts_per_count + self.offset_v, 2)


class BurstSampler:
    def __init__(self, adc: Adc, channel: int, scale: Scale, count: int = SAMPLES_PER_BURST):
        self._adc, self._channel, self._scale, self._count = adc, channel, scale, count

    def sample(self) -> tuple[float, float]:
        burst: Sequence[int] = self._adc.burst(self._channel, self._count)
        return self._scale.volts(max(burst)), self._scale.volts(min(burst))


class PeakSampler:
    def __init__(
        self,
        adc: Adc,
        positive_channel: int,
        negative_channel: int,
        reset: OutputLine,
        scale: Scale,
    ) -> None:
        self._adc, self._scale, self._reset = adc, scale, reset
        self._positive, self._negative = positive_channel, negative_channel

    def sample(self) -> tuple[float, float]:
        positive = self._scale.volts(self._adc.read(self._positive))
        negative = self._scale.volts(self._adc.read(self._negative))
        self._reset.set(True)
        time.sleep(PEAK_RESET_S)
        self._reset.set(False)
        return positive, negative


class RpiPilot:
    """ControlPilot: PWM output, 0 V clamp, and the debounced measurement."""

    def __init__(self, pwm: SysfsPwm, zero: OutputLine, sampler: CpSampler) -> None:
        self._pwm, self._zero, self._sampler = pwm, zero, sampler
        self._callbacks: list[Callable[[PilotReading], None]] = []
        self._reading = PilotReading(12.0, 12.0, 100.0)
        self._candidate: tuple[float, float] | None = None
        zero.set(False)
        pwm.set_duty(100.0)

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 < duty_percent < 100.0:
            raise ValueError(f"PWM duty {duty_percent} % is outside 0-100 %")
        self._zero.set(False)
        self._pwm.set_duty(duty_percent)

    def set_steady(self, level: SteadyLevel) -> None:
        self._zero.set(level is SteadyLevel.ZERO)
        self._pwm.set_duty(0.0 if level is SteadyLevel.MINUS_12 else 100.0)

    def read(self) -> PilotReading:
        return self._reading

    def on_change(self, callback: Callable[[PilotReading], None]) -> None:
        self._callbacks.append(callback)

    def sample(self) -> tuple[float, float]:
        return self._sampler.sample()

    def accept(self, plateaus: tuple[float, float]) -> PilotReading | None:
        """Debounce: a new level counts when two measurements in a row agree on it."""
        candidate, self._candidate = self._candidate, plateaus
        if (
            candidate is None
            or max(abs(a - b) for a, b in zip(candidate, plateaus, strict=True))
            > CHANGE_THRESHOLD_V
        ):
            return None
        current = self._reading
        positive, negative = plateaus
        duty = self._pwm.duty_percent
        if (
            abs(positive - current.positive_v) <= CHANGE_THRESHOLD_V
            and abs(negative - current.negative_v) <= CHANGE_THRESHOLD_V
            and duty == current.duty_percent
        ):
            return None
        return PilotReading(positive, negative if 0.0 < duty < 100.0 else positive, duty)

    def publish(self, reading: PilotReading) -> None:  # in the loop
        self._reading = reading
        for callback in tuple(self._callbacks):
            callback(reading)


def pp_ohm(counts: int, pullup_ohm: float) -> float:
    """The resistance PP-PE from the ADC counts of the divider against the pull-up."""
    if counts >= FULL_SCALE - 2:  # at the rail: open
        return math.inf
    return round(pullup_ohm * counts / (FULL_SCALE - counts), 1)


class RpiProximity:
    """ProximityPilot: a socket outlet's PP-PE resistance on an ADC channel."""

    def __init__(self, adc: Adc, channel: int, pullup_ohm: float) -> None:
        self._adc, self._channel, self._pullup = adc, channel, pullup_ohm
        self._callbacks: list[Callable[[ProximityReading], None]] = []
        self._reading = ProximityReading(math.inf)
        self._candidate: float | None = None

    def read(self) -> ProximityReading:
        return self._reading

    def on_change(self, callback: Callable[[ProximityReading], None]) -> None:
        self._callbacks.append(callback)

    def sample(self) -> float:
        values = [self._adc.read(self._channel) for _ in range(PP_SAMPLES)]
        return pp_ohm(round(sum(values) / len(values)), self._pullup)

    def accept(self, ohm: float) -> ProximityReading | None:
        candidate, self._candidate = self._candidate, ohm
        if candidate is None or not _close(candidate, ohm):
            return None
        if _close(ohm, self._reading.resistance_ohm):
            return None
        return ProximityReading(ohm)

    def publish(self, reading: ProximityReading) -> None:  # in the loop
        self._reading = reading
        for callback in tuple(self._callbacks):
            callback(reading)


def _close(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= PP_CHANGE * max(a, b, 1.0)


class SamplingThread:
    """The one thread that talks to the ADC: CP every BURST_INTERVAL_S, PP now and then."""

    def __init__(self, pilot: RpiPilot, proximity: RpiProximity | None) -> None:
        self._pilot, self._pp = pilot, proximity
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="cp-adc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def step(self, n: int) -> None:
        """One round: a CP measurement, and PP every PP_EVERY rounds (blocking)."""
        loop = self._loop
        reading = self._pilot.accept(self._pilot.sample())
        if reading is not None and loop is not None:
            loop.call_soon_threadsafe(self._pilot.publish, reading)
        if self._pp is not None and n % PP_EVERY == 0:
            pp = self._pp.accept(self._pp.sample())
            if pp is not None and loop is not None:
                loop.call_soon_threadsafe(self._pp.publish, pp)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self.step(n)
            except OSError as exc:
                event(log, logging.ERROR, "cp_adc_failed", error=str(exc))
                self._stop.wait(ADC_RETRY_S)
            n += 1
            self._stop.wait(BURST_INTERVAL_S)
