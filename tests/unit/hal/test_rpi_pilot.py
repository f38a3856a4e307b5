"""CP and PP measurement of the Raspberry Pi board: the `_cpsample` C extension, the
burst sampler against a sampled CP waveform (the 50 us plateau at 5 %), the peak-detector
alternative, the debounce, the PP divider, and the sampling thread's hand-over to the
loop."""

from __future__ import annotations

import asyncio
import math
import os
import random
import struct
from pathlib import Path

import pytest

import charger.hal.rpi._cpsample as cpsample
from charger.hal.interfaces import SteadyLevel
from charger.hal.rpi import adc as adc_mod
from charger.hal.rpi.adc import frame
from charger.hal.rpi.pilot import (
    BurstSampler,
    PeakSampler,
    RpiPilot,
    RpiProximity,
    SamplingThread,
    Scale,
    pp_ohm,
)
from charger.hal.rpi.pwm import SysfsPwm, find_pwmchip
from tests.support.fake_kernel import PI4_PWM, FakeAdc, Waveform, export_channel, sysfs_pwm
from tests.support.polling import eventually

SCALE = Scale(0.00757, -15.5)


def counts(volts: float) -> int:
    return round((volts - SCALE.offset_v) / SCALE.volts_per_count)


# ---------------------------------------------------------------------------- C extension


def test_decode12_takes_the_low_12_bits_of_each_frame() -> None:
    rng = random.Random(7)
    frames = bytes(rng.randrange(256) for _ in range(3 * 200))
    expected = tuple(((frames[i + 1] & 0x0F) << 8) | frames[i + 2] for i in range(0, 600, 3))
    assert cpsample.decode12(frames, 3) == expected
    assert cpsample.decode12(b"", 3) == ()
    with pytest.raises(ValueError, match="whole frames"):
        cpsample.decode12(b"\x00\x01", 3)
    with pytest.raises(ValueError, match="whole frames"):
        cpsample.decode12(b"\x00\x01\x02", 1)


def test_burst_checks_its_arguments_and_reports_the_ioctl_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame must be 1 to 4 bytes"):
        cpsample.burst(0, b"", 10, 1_000_000)
    with pytest.raises(ValueError, match="count must be 1 to 511"):
        cpsample.burst(0, b"\x01\xa0\x00", 512, 1_000_000)
    with pytest.raises(ValueError, match="count must be 1 to 511"):
        cpsample.burst(0, b"\x01\xa0\x00", 0, 1_000_000)
    fd = os.open(tmp_path / "not-spi", os.O_CREAT | os.O_RDWR)
    try:  # a regular file is no spidev: the kernel says ENOTTY, we raise OSError
        with pytest.raises(OSError) as info:
            cpsample.burst(fd, b"\x01\xa0\x00", 64, 1_000_000)
        assert info.value.errno in (25, 22)  # ENOTTY (EINVAL on some kernels)
    finally:
        os.close(fd)


def test_mcp320x_frames() -> None:
    assert frame("mcp3202", 0) == bytes((0x01, 0xA0, 0x00))
    assert frame("mcp3202", 1) == bytes((0x01, 0xE0, 0x00))
    assert frame("mcp3208", 5) == bytes((0x07, 0x40, 0x00))
    with pytest.raises(ValueError, match="channels 0 and 1"):
        frame("mcp3202", 2)
    assert adc_mod.counts([0x00, 0x0A, 0xBC]) == 0xABC


class FakeSpi:
    """spidev.SpiDev as SpiAdc uses it (xfer2 and its file descriptor)."""

    def __init__(self, fd: int) -> None:
        self._fd, self.sent = fd, []
        self.max_speed_hz = self.mode = 0

    def fileno(self) -> int:
        return self._fd

    def xfer2(self, data: list[int]) -> list[int]:
        self.sent.append(data)
        return [0, 0x07, 0xFF]


def test_spi_adc_single_conversions_and_bursts_through_the_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, bytes, int, int]] = []

    def burst(fd: int, frame: bytes, count: int, speed: int) -> bytes:
        calls.append((fd, frame, count, speed))
        return struct.pack(">" + "BH" * count, *([0, 0x0123] * count))

    spi = FakeSpi(42)
    adc = adc_mod.SpiAdc(spi, "mcp3202", 1_200_000)
    assert spi.max_speed_hz == 1_200_000 and spi.mode == 0
    assert adc.read(1) == 0x7FF and spi.sent == [[0x01, 0xE0, 0x00]]
    monkeypatch.setattr(cpsample, "burst", burst)
    assert list(adc.burst(0, 4)) == [0x123] * 4
    assert calls == [(42, bytes((0x01, 0xA0, 0x00)), 4, 1_200_000)]


# ---------------------------------------------------------------------------- CP


def test_a_burst_catches_the_50_us_plateau_at_5_percent() -> None:
    wave = Waveform(counts(9.0), counts(-12.0), 5.0)
    adc = FakeAdc({0: wave.at}, spacing_us=30.0, rng=random.Random(3))
    sampler = BurstSampler(adc, 0, SCALE)
    for _ in range(1000):  # every phase the burst may start at
        positive, negative = sampler.sample()
        assert positive == pytest.approx(9.0, abs=0.01)
        assert negative == pytest.approx(-12.0, abs=0.01)


def test_python_paced_sampling_would_miss_it() -> None:
    # What the burst is for: 60-100 us between conversions (a Python loop of xfer2
    # calls) often misses the 50 us high plateau within a burst of 64.
    wave = Waveform(counts(9.0), counts(-12.0), 5.0)
    rng = random.Random(5)
    missed = 0
    for _ in range(200):
        t = rng.uniform(0, 1000)
        samples = []
        for _ in range(16):
            samples.append(wave.at(t))
            t += rng.uniform(60, 100)
        missed += max(samples) != counts(9.0)
    assert missed > 20


def make_pilot(tmp_path: Path, sampler: object) -> tuple[RpiPilot, SysfsPwm, list[bool]]:
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    chip = find_pwmchip("pwm@7e20c000", klass, dt)
    export_channel(chip, 0)
    pwm = SysfsPwm(chip, 0)
    zero: list[bool] = []

    class Zero:
        def set(self, active: bool) -> None:
            zero.append(active)

    return RpiPilot(pwm, Zero(), sampler), pwm, zero  # type: ignore[arg-type]


def test_pilot_outputs(tmp_path: Path) -> None:
    pilot, pwm, zero = make_pilot(tmp_path, None)
    pilot.set_pwm(53.33)
    assert (pwm.directory / "duty_cycle").read_text() == "533300" and zero[-1] is False
    pilot.set_steady(SteadyLevel.ZERO)
    assert zero[-1] is True
    pilot.set_steady(SteadyLevel.MINUS_12)
    assert (pwm.directory / "duty_cycle").read_text() == "0" and zero[-1] is False
    with pytest.raises(ValueError, match="outside 0-100"):
        pilot.set_pwm(100.0)


def test_readings_are_debounced(tmp_path: Path) -> None:
    pilot, _, _ = make_pilot(tmp_path, None)
    pilot.set_pwm(26.67)
    assert pilot.accept((9.0, -12.0)) is None  # first sight
    reading = pilot.accept((9.02, -12.0))
    assert reading is not None
    assert (reading.positive_v, reading.negative_v, reading.duty_percent) == (9.02, -12.0, 26.67)
    pilot.publish(reading)
    assert pilot.accept((9.0, -12.0)) is None  # nothing new
    assert pilot.accept((6.0, -12.0)) is None  # a single different measurement: a glitch
    assert pilot.accept((9.0, -12.0)) is None


def test_peak_detector_reads_both_peaks_then_resets() -> None:
    adc = FakeAdc({2: lambda t: counts(6.0), 3: lambda t: counts(-12.0)})
    resets: list[bool] = []

    class Reset:
        def set(self, active: bool) -> None:
            resets.append(active)

    sampler = PeakSampler(adc, 2, 3, Reset(), SCALE)
    assert sampler.sample() == pytest.approx((6.0, -12.0), abs=0.01)
    assert adc.reads == [2, 3] and resets == [True, False]


# ---------------------------------------------------------------------------- PP


@pytest.mark.parametrize("ohm", [100.0, 220.0, 680.0, 1500.0])
def test_pp_divider(ohm: float) -> None:
    c = round(4095 * ohm / (ohm + 1000.0))
    assert pp_ohm(c, 1000.0) == pytest.approx(ohm, rel=0.01)


def test_pp_open_and_short() -> None:
    assert pp_ohm(4095, 1000.0) == math.inf
    assert pp_ohm(0, 1000.0) == 0.0


def test_pp_is_debounced() -> None:
    level = {"c": 4095}
    pp = RpiProximity(FakeAdc({1: lambda t: level["c"]}), 1, 1000.0)
    assert pp.accept(pp.sample()) is None  # open, as it starts
    level["c"] = round(4095 * 220 / 1220)
    assert pp.accept(pp.sample()) is None
    reading = pp.accept(pp.sample())
    assert reading is not None and reading.resistance_ohm == pytest.approx(220, rel=0.01)


async def test_sampling_thread_hands_changes_to_the_loop(tmp_path: Path) -> None:
    wave = Waveform(counts(9.0), counts(9.0), 100.0)
    adc = FakeAdc({0: wave.at, 1: lambda t: round(4095 * 680 / 1680)})
    pilot, _, _ = make_pilot(tmp_path, BurstSampler(adc, 0, SCALE))
    pp = RpiProximity(adc, 1, 1000.0)
    seen: list[object] = []
    pilot.on_change(seen.append)
    pp.on_change(seen.append)
    thread = SamplingThread(pilot, pp)
    thread.start(asyncio.get_running_loop())
    try:
        await eventually(lambda: len(seen) >= 2, 3)
    finally:
        thread.stop()
    kinds = {type(x).__name__ for x in seen}
    assert kinds == {"PilotReading", "ProximityReading"}
    assert pilot.read().positive_v == pytest.approx(9.0, abs=0.01)
    assert pp.read().resistance_ohm == pytest.approx(680, rel=0.01)


async def test_an_adc_failure_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adc = FakeAdc({0: lambda t: counts(12.0)}, fail=True)
    pilot, _, _ = make_pilot(tmp_path, BurstSampler(adc, 0, SCALE))
    thread = SamplingThread(pilot, None)
    thread.start(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    adc.fail = False
    thread.stop()
    assert any("cp_adc_failed" in r.getMessage() for r in caplog.records)
