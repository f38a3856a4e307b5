"""Settings of the Raspberry Pi board (`[rpi]`), and what it needs of each EVSE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from charger.runtime.settings import Report, setting

GpioBackend = Literal["gpiod", "rpi-gpio"]
AdcKind = Literal["mcp3202", "mcp3208"]
CpSamplerKind = Literal["burst", "peak_detector"]
MeterModelKind = Literal["sdm630", "sdm72dm-v2"]
Parity = Literal["N", "E", "O"]

_LINE = r"(GPIO\d{1,3}|[A-Za-z0-9_.-]+|(/dev/)?gpiochip\d+:\d{1,4})?"
_LINE_DOC = ' (a line name such as "GPIO17", or "gpiochipN:offset")'


def _line(default: str, doc: str) -> str:
    return setting(default, doc + _LINE_DOC, pattern=_LINE)


@dataclass(frozen=True)
class RpiConfig:
    """The Raspberry Pi board: GPIO lines, CP generator and ADC, meter and card reader
    (docs/hal.md)."""

    gpio_backend: GpioBackend = setting(
        "gpiod",
        '"gpiod": libgpiod v2, any Pi; "rpi-gpio": RPi.GPIO, Pi 4 and older only',
    )
    pwm_device: tuple[str, ...] = setting(
        ("/soc/pwm@7e20c000", "/axi/pcie@120000/rp1/pwm@98000"),
        "device-tree node of the CP PWM's chip, the first present is used (Pi 4, Pi 5)",
    )
    pwm_channel: int = setting(0, "its channel", lo=0, hi=63)
    spi_bus: int = setting(0, "SPI bus of the CP ADC", lo=0, hi=63)
    spi_device: int = setting(
        1, "its chip select (the qca7000 overlay takes chip select 0)", lo=0, hi=63
    )
    spi_speed_hz: int = setting(
        1_000_000, "SPI clock of the ADC", unit="Hz", lo=10_000, hi=20_000_000
    )
    adc: AdcKind = setting("mcp3202", "the ADC: MCP3202 (2 channels) or MCP3204/3208 (4/8)")
    cp_sampler: CpSamplerKind = setting(
        "burst",
        '"burst": the ADC samples the CP in bursts; "peak_detector": the board holds the '
        "positive and negative peaks on two ADC channels and resets them on a line",
    )
    adc_channel: int = setting(0, "ADC channel that measures the CP voltage", lo=0, hi=7)
    cp_peak_positive_channel: int = setting(
        0, "peak_detector: ADC channel of the positive peak", lo=0, hi=7
    )
    cp_peak_negative_channel: int = setting(
        1, "peak_detector: ADC channel of the negative peak", lo=0, hi=7
    )
    cp_peak_reset_line: str = _line("GPIO21", "peak_detector: output that resets the peaks")
    cp_volts_per_count: float = setting(
        0.00757,
        "CP voltage = ADC counts * this + cp_volts_offset (board divider)",
        unit="V",
        lo=1e-6,
        hi=1,
    )
    cp_volts_offset: float = setting(-15.5, "see cp_volts_per_count", unit="V", lo=-50, hi=50)
    cp_zero_line: str = _line("GPIO26", "output switching the CP line to 0 V, state E")
    pp_adc_channel: int = setting(1, "socket outlets: ADC channel of the PP divider", lo=0, hi=7)
    pp_pullup_ohm: float = setting(
        1000.0,
        "socket outlets: pull-up from PP to the ADC's reference voltage",
        unit="ohm",
        lo=10,
        hi=100_000,
    )
    contactor_line: str = _line("GPIO17", "contactor coil output")
    contactor_feedback_line: str = _line(
        "GPIO27", "contactor auxiliary contact input, high when closed; empty: none"
    )
    lock_line: str = _line(
        "GPIO22", "connector lock: the H-bridge's lock input (or a solenoid's output)"
    )
    lock_unlock_line: str = _line(
        "GPIO16", "the H-bridge's unlock input; empty: a solenoid lock held by lock_line"
    )
    lock_pulse_ms: int = setting(300, "length of the lock motor's pulse", unit="ms", lo=10, hi=5000)
    lock_feedback_line: str = _line(
        "GPIO23", "lock position switch input, high when locked; empty: none"
    )
    rcd_trip_line: str = _line("GPIO24", "RCD / RDC-DD trip input, high when tripped")
    rcd_test_line: str = _line("GPIO25", "RCD / RDC-DD test current output")
    debounce_ms: int = setting(
        10, "kernel debounce of the feedback and RCD inputs", unit="ms", lo=0, hi=100
    )
    meter_model: MeterModelKind = setting("sdm630", "the Modbus energy meter")
    meter_port: str = setting(
        "",
        'its RS485 serial port ("/dev/ttyUSB0"), or "tcp://host:port" for an RS485 '
        "gateway (RTU framing); empty: no meter",
    )
    meter_address: int = setting(1, "its Modbus address", lo=1, hi=247)
    meter_baudrate: int = setting(9600, "serial speed", unit="baud", lo=1200, hi=115200)
    meter_parity: Parity = setting("N", "serial parity")
    meter_timeout_s: float = setting(
        0.5, "a Modbus request unanswered this long is retried", unit="s", lo=0.05, hi=10
    )
    meter_retries: int = setting(2, "retries before the meter counts as silent", lo=0, hi=10)
    rfid_port: str = setting(
        "", "serial port of a PN532 card reader (HSU, 115200 baud); empty: none"
    )

    def check(self, report: Report) -> None:
        if self.adc == "mcp3202":
            for key in ("adc_channel", "cp_peak_positive_channel", "cp_peak_negative_channel"):
                if getattr(self, key) > 1:
                    report(key, f"is {getattr(self, key)}", "0 or 1 (the MCP3202 has two)")
        if self.cp_sampler == "peak_detector" and (
            self.cp_peak_positive_channel == self.cp_peak_negative_channel
        ):
            report("cp_peak_negative_channel", "is the positive peak's channel", "another")
        if self.meter_port.startswith("tcp://") and ":" not in self.meter_port[6:]:
            report("meter_port", f"is {self.meter_port!r}", '"tcp://host:port"')


class RpiEvse(Protocol):
    """What the Raspberry Pi board needs to know of the EVSE it drives (its `[[evse]]`
    table; the HAL sees it without depending on the CS controller's declarations)."""

    @property
    def id(self) -> int: ...

    @property
    def nominal_voltage_v(self) -> float: ...

    @property
    def has_lock(self) -> bool: ...

    @property
    def socket_outlet(self) -> bool: ...

    @property
    def network_interface(self) -> str: ...
