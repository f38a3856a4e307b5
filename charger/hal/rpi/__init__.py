"""The Raspberry Pi board backend (`[hal] backend = "rpi"`): `create_board(evses, rpi)`.

gpio.py (libgpiod v2 or RPi.GPIO), pwm.py (the CP generator in sysfs), adc.py and the
`_cpsample` C extension (the CP ADC on SPI), pilot.py (CP and PP measurement),
switches.py (contactor, lock, RCD), meter.py (Modbus meters), rfid.py (PN532), board.py
(the assembly). docs/hal.md describes the wiring and the settings.
"""

from charger.hal.rpi.board import BoardError, Devices, RpiBoard, create_board

__all__ = ["BoardError", "Devices", "RpiBoard", "create_board"]
