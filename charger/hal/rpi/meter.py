"""Energy meters over Modbus RTU (pymodbus, async): Eastron SDM630 and SDM72DM-V2.

A meter model is data: which input register holds which value (IEEE 754 float32, big
endian, two registers each; Eastron's manuals) and the contiguous blocks read per poll.
One poll reads everything the OCPP device model offers (charger/protocols/ocpp/
measurands.py: energy import register, active power, current and voltage per phase,
frequency, power factor) plus export and reactive energy where the meter has them.

The bus is RS485 on a serial port (`/dev/ttyAMA0`) or an RS485 gateway reached over TCP
with RTU framing (`tcp://host:port`). A poll that gets no answer (after pymodbus's
retries) or an error answer raises MeterError, which the CS controller turns into the
`meter_not_responding` fault; the next good poll clears it.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from charger.hal.interfaces import MeterError, MeterReading

MeterModel = Literal["sdm630", "sdm72dm-v2"]
Field = Literal[
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "power_w",
    "power_factor",
    "frequency_hz",
    "import_kwh",
    "export_kwh",
    "import_kvarh",
    "export_kvarh",
]


@dataclass(frozen=True)
class RegisterMap:
    model: str
    registers: Mapping[Field, int]  # input register (function 04) of each float32
    blocks: tuple[tuple[int, int], ...]  # (first register, count) read per poll


_EASTRON_COMMON: dict[Field, int] = {
    "voltage_l1": 0x0000,
    "voltage_l2": 0x0002,
    "voltage_l3": 0x0004,
    "current_l1": 0x0006,
    "current_l2": 0x0008,
    "current_l3": 0x000A,
    "power_w": 0x0034,  # total system power
    "power_factor": 0x003E,  # total system power factor (signed)
    "frequency_hz": 0x0046,
    "import_kwh": 0x0048,
    "export_kwh": 0x004A,
}

REGISTER_MAPS: dict[MeterModel, RegisterMap] = {
    "sdm630": RegisterMap(
        "Eastron SDM630",
        {**_EASTRON_COMMON, "import_kvarh": 0x004C, "export_kvarh": 0x004E},
        ((0x0000, 12), (0x0034, 12), (0x0046, 10)),
    ),
    # The SDM72DM-V2 has the same addresses for these values; its register list has no
    # import/export reactive energy, which then read 0.
    "sdm72dm-v2": RegisterMap(
        "Eastron SDM72DM-V2", dict(_EASTRON_COMMON), ((0x0000, 12), (0x0034, 12), (0x0046, 6))
    ),
}


def decode(registers: Mapping[int, int], register_map: RegisterMap) -> MeterReading:
    """A reading from the raw registers of one poll (address -> 16-bit value)."""

    def value(name: Field) -> float:
        address = register_map.registers.get(name)
        if address is None:
            return 0.0
        raw = struct.pack(">HH", registers[address], registers[address + 1])
        result: float = struct.unpack(">f", raw)[0]
        return result

    return MeterReading(
        voltage_v=(value("voltage_l1"), value("voltage_l2"), value("voltage_l3")),
        current_a=(value("current_l1"), value("current_l2"), value("current_l3")),
        power_w=value("power_w"),
        frequency_hz=value("frequency_hz"),
        power_factor=min(1.0, abs(value("power_factor"))),
        energy_import_wh=round(value("import_kwh") * 1000.0, 1),
        energy_export_wh=round(value("export_kwh") * 1000.0, 1),
        reactive_import_varh=round(value("import_kvarh") * 1000.0, 1),
        reactive_export_varh=round(value("export_kvarh") * 1000.0, 1),
    )


def make_client(port: str, *, baudrate: int, parity: str, timeout_s: float, retries: int) -> Any:
    """A pymodbus async client: RTU on a serial port, or RTU over TCP (`tcp://h:p`)."""
    from pymodbus import FramerType
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

    if port.startswith("tcp://"):
        host, _, tcp_port = port.removeprefix("tcp://").rpartition(":")
        return AsyncModbusTcpClient(
            host, port=int(tcp_port), framer=FramerType.RTU, timeout=timeout_s, retries=retries
        )
    return AsyncModbusSerialClient(
        port,
        framer=FramerType.RTU,
        baudrate=baudrate,
        parity=parity,
        stopbits=1,
        bytesize=8,
        timeout=timeout_s,
        retries=retries,
    )


class ModbusMeter:
    """EnergyMeter on Modbus; one poll at a time (RS485 is half duplex)."""

    def __init__(self, client: Any, register_map: RegisterMap, address: int, where: str) -> None:
        self._client, self._map, self._address, self._where = client, register_map, address, where
        self._lock = asyncio.Lock()
        # pymodbus renamed the unit id keyword (slave -> device_id, 3.10)
        params = inspect.signature(client.read_input_registers).parameters
        self._unit_kw = "device_id" if "device_id" in params else "slave"

    def _error(self, reason: str) -> MeterError:
        return MeterError(
            f"{self._map.model} at Modbus address {self._address} on {self._where}: {reason}"
        )

    async def read(self) -> MeterReading:
        async with self._lock:
            registers: dict[int, int] = {}
            try:
                if not self._client.connected and not await self._client.connect():
                    raise self._error("cannot connect")
                for first, count in self._map.blocks:
                    reply = await self._client.read_input_registers(
                        first, count=count, **{self._unit_kw: self._address}
                    )
                    if reply.isError():
                        raise self._error(f"error answer {reply}")
                    if len(reply.registers) != count:
                        raise self._error(f"{len(reply.registers)} registers, {count} asked")
                    registers.update(zip(range(first, first + count), reply.registers, strict=True))
            except MeterError:
                raise
            except Exception as exc:  # pymodbus: ModbusException, ConnectionException, ...
                raise self._error(f"no answer ({type(exc).__name__}: {exc})") from exc
        return decode(registers, self._map)

    def close(self) -> None:
        self._client.close()


class NoMeter:
    """Stands in where no meter is configured: nominal voltage, no current (the current
    supervision of IEC 61851 then sees nothing)."""

    def __init__(self, nominal_voltage_v: float) -> None:
        self._volts = nominal_voltage_v

    async def read(self) -> MeterReading:
        v = self._volts
        return MeterReading((v, v, v), (0.0, 0.0, 0.0), 0.0, 50.0, 1.0, 0.0, 0.0, 0.0, 0.0)
