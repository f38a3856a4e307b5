"""Raspberry Pi board: one EVSE on GPIO, hardware PWM, an SPI ADC, Modbus and a card reader.

`create_board` opens the real devices (each library imported only there) and hands them
to `RpiBoard`, which tests build from fakes of the kernel interfaces instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from charger.hal.interfaces import ConnectorLock, EnergyMeter, EvseHardware, SteadyLevel
from charger.hal.rpi.adc import Adc, SpiAdc
from charger.hal.rpi.gpio import Gpio, GpioError, InputLine, OutputLine, open_gpio
from charger.hal.rpi.meter import REGISTER_MAPS, ModbusMeter, NoMeter, make_client
from charger.hal.rpi.pilot import (
    BurstSampler,
    CpSampler,
    PeakSampler,
    RpiPilot,
    RpiProximity,
    SamplingThread,
    Scale,
)
from charger.hal.rpi.pwm import PwmError, SysfsPwm, find_pwmchip
from charger.hal.rpi.rfid import Pn532Reader, open_serial
from charger.hal.rpi.switches import HBridgeLock, RpiContactor, RpiRcd
from charger.hal.rpi_settings import RpiConfig, RpiEvse
from charger.runtime.log import event
from charger.runtime.settings import ConfigError

log = logging.getLogger(__name__)


class BoardError(Exception):
    """The board cannot be brought up as configured; the message says what to fix."""


@dataclass
class Devices:
    """What the board is built from: the kernel interfaces, opened (or faked)."""

    gpio: Gpio
    adc: Adc
    pwm: SysfsPwm
    meter: EnergyMeter
    rfid: Pn532Reader | None = None


class _HeldLock:
    """A solenoid lock: the output is held while locked."""

    def __init__(self, line: OutputLine, feedback: InputLine | None) -> None:
        self._line, self._feedback = line, feedback
        line.set(False)

    def set_locked(self, locked: bool) -> None:
        self._line.set(locked)

    def feedback_locked(self) -> bool | None:
        return None if self._feedback is None else self._feedback.get()


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
    def __init__(self, config: RpiEvse, rpi: RpiConfig, devices: Devices) -> None:
        self._devices = devices
        gpio, adc = devices.gpio, devices.adc

        def optional_input(line: str) -> InputLine | None:
            return gpio.input(line, debounce_ms=rpi.debounce_ms) if line else None

        scale = Scale(rpi.cp_volts_per_count, rpi.cp_volts_offset)
        sampler: CpSampler
        if rpi.cp_sampler == "peak_detector":
            reset = gpio.output(rpi.cp_peak_reset_line)
            sampler = PeakSampler(
                adc, rpi.cp_peak_positive_channel, rpi.cp_peak_negative_channel, reset, scale
            )
        else:
            sampler = BurstSampler(adc, rpi.adc_channel, scale)
        self.pilot = RpiPilot(devices.pwm, gpio.output(rpi.cp_zero_line), sampler)
        self.proximity = (
            RpiProximity(adc, rpi.pp_adc_channel, rpi.pp_pullup_ohm)
            if config.socket_outlet
            else None
        )
        self.sampling = SamplingThread(self.pilot, self.proximity)
        self.rcd = RpiRcd(
            gpio.input(rpi.rcd_trip_line, debounce_ms=rpi.debounce_ms),
            gpio.output(rpi.rcd_test_line),
        )
        self.contactor = RpiContactor(
            gpio.output(rpi.contactor_line), optional_input(rpi.contactor_feedback_line)
        )
        self.lock: ConnectorLock | None = None
        if config.has_lock:
            feedback = optional_input(rpi.lock_feedback_line)
            if rpi.lock_unlock_line:
                self.lock = HBridgeLock(
                    gpio.output(rpi.lock_line),
                    gpio.output(rpi.lock_unlock_line),
                    feedback,
                    rpi.lock_pulse_ms / 1000.0,
                )
            else:
                self.lock = _HeldLock(gpio.output(rpi.lock_line), feedback)
        self._hardware = {
            config.id: EvseHardware(
                pilot=self.pilot,
                contactor=self.contactor,
                rcd=self.rcd,
                meter=devices.meter,
                lock=self.lock,
                id_reader=devices.rfid,
                proximity=self.proximity,
                plc=RpiPlc(config.network_interface),
            )
        }

    @property
    def evses(self) -> Mapping[int, EvseHardware]:
        return self._hardware

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._devices.gpio.start(loop)
        self.sampling.start(loop)
        if self._devices.rfid is not None:
            self._devices.rfid.start(loop)

    async def stop(self) -> None:
        self.drive_safe()
        self.sampling.stop()
        if self._devices.rfid is not None:
            self._devices.rfid.stop()
        close = getattr(self._devices.meter, "close", None)
        if close is not None:
            close()
        self._devices.gpio.close()

    def drive_safe(self) -> None:
        self.contactor.set_closed(False)
        self.pilot.set_steady(SteadyLevel.MINUS_12)


def open_pwm(rpi: RpiConfig) -> SysfsPwm:
    problems: list[str] = []
    for device in rpi.pwm_device:
        try:
            return SysfsPwm(find_pwmchip(device), rpi.pwm_channel)
        except (PwmError, OSError) as exc:
            problems.append(str(exc))
    raise BoardError(f"[rpi] pwm_device: no CP PWM: {' / '.join(problems)}")


def open_adc(rpi: RpiConfig) -> Adc:
    import spidev  # imported here: only a board with spidev has it

    spi: Any = spidev.SpiDev()
    try:
        spi.open(rpi.spi_bus, rpi.spi_device)
    except OSError as exc:
        raise BoardError(
            f"[rpi] spi_bus/spi_device: cannot open /dev/spidev{rpi.spi_bus}.{rpi.spi_device} "
            f"for the CP ADC: {exc}"
        ) from exc
    return SpiAdc(spi, rpi.adc, rpi.spi_speed_hz)


def open_meter(config: RpiEvse, rpi: RpiConfig) -> EnergyMeter:
    if not rpi.meter_port:
        return NoMeter(config.nominal_voltage_v)
    client = make_client(
        rpi.meter_port,
        baudrate=rpi.meter_baudrate,
        parity=rpi.meter_parity,
        timeout_s=rpi.meter_timeout_s,
        retries=rpi.meter_retries,
    )
    return ModbusMeter(client, REGISTER_MAPS[rpi.meter_model], rpi.meter_address, rpi.meter_port)


def create_board(evses: Sequence[RpiEvse], rpi: RpiConfig) -> RpiBoard:
    if len(evses) != 1:
        raise ValueError(f"the rpi backend drives exactly one EVSE, the config has {len(evses)}")
    try:
        gpio = open_gpio(rpi.gpio_backend)
    except GpioError as exc:
        raise ConfigError("config", [str(exc)]) from exc  # "config: [rpi] gpio_backend = ..."
    try:
        devices = Devices(
            gpio=gpio,
            adc=open_adc(rpi),
            pwm=open_pwm(rpi),
            meter=open_meter(evses[0], rpi),
            rfid=Pn532Reader(open_serial(rpi.rfid_port), rpi.rfid_port) if rpi.rfid_port else None,
        )
        return RpiBoard(evses[0], rpi, devices)
    except GpioError as exc:
        gpio.close()
        raise BoardError(f"[rpi]: {exc}") from exc
    except BaseException:
        gpio.close()
        raise
