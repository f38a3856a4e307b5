"""Settings of the Raspberry Pi board (`[rpi]`), and what it needs of each EVSE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from charger.runtime.settings import setting


@dataclass(frozen=True)
class RpiConfig:
    """Pin-out of the Raspberry Pi board (BCM numbering) and CP measurement scaling."""

    pwm_chip: int = setting(0, "sysfs PWM chip of the CP PWM", lo=0, hi=63)
    pwm_channel: int = setting(0, "its channel", lo=0, hi=63)
    spi_bus: int = setting(0, "SPI bus of the CP ADC", lo=0, hi=63)
    spi_device: int = setting(0, "its chip select", lo=0, hi=63)
    adc_channel: int = setting(0, "ADC channel that measures the CP voltage", lo=0, hi=63)
    contactor_pin: int = setting(17, "contactor coil output (BCM)", lo=0, hi=63)
    contactor_feedback_pin: int = setting(
        27, "contactor auxiliary contact input (BCM)", lo=0, hi=63
    )
    lock_pin: int = setting(22, "connector lock output (BCM)", lo=0, hi=63)
    lock_feedback_pin: int = setting(23, "connector lock feedback input (BCM)", lo=0, hi=63)
    rcd_trip_pin: int = setting(24, "RCD trip input (BCM)", lo=0, hi=63)
    rcd_test_pin: int = setting(25, "RCD self-test output (BCM)", lo=0, hi=63)
    cp_zero_pin: int = setting(
        26, "output switching the CP line to 0 V, state E (BCM)", lo=0, hi=63
    )
    cp_volts_per_count: float = setting(
        0.00757,
        "CP voltage = ADC counts * this + cp_volts_offset (board divider)",
        unit="V",
        lo=1e-6,
        hi=1,
    )
    cp_volts_offset: float = setting(-15.5, "see cp_volts_per_count", unit="V", lo=-50, hi=50)


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
    def network_interface(self) -> str: ...
