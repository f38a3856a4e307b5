"""The Modbus energy meter against a pymodbus server in the test (RTU framing over TCP,
as through an RS485 gateway): the SDM630 and SDM72DM-V2 register maps, every OCPP
measurand the device model offers, and a meter that stops answering."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus import FramerType
from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import ModbusTcpServer

from charger.hal.interfaces import MeterError
from charger.hal.rpi.meter import REGISTER_MAPS, ModbusMeter, decode, make_client
from charger.protocols.ocpp.measurands import SUPPORTED, sampled_values
from rig.net import free_port, wait_port

VALUES = {  # what the meter measures: a 3-phase EV drawing 16 A
    "voltage_l1": 231.5,
    "voltage_l2": 229.0,
    "voltage_l3": 230.25,
    "current_l1": 16.0,
    "current_l2": 15.5,
    "current_l3": 16.25,
    "power_w": 11000.0,
    "power_factor": -0.98,  # the meter's sign: capacitive
    "frequency_hz": 49.98,
    "import_kwh": 1234.5,
    "export_kwh": 0.25,
    "import_kvarh": 12.5,
    "export_kvarh": 3.0,
}


def registers(model: str) -> list[int]:
    regs = [0] * 0x60
    for name, address in REGISTER_MAPS[model].registers.items():  # type: ignore[index]
        hi, lo = struct.unpack(">HH", struct.pack(">f", VALUES[name]))
        regs[address], regs[address + 1] = hi, lo
    return regs


async def start_server(model: str, unit: int = 1) -> tuple[ModbusTcpServer, int]:
    port = free_port()
    # pymodbus' device context adds 1 to the request's address
    device = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, registers(model)))
    context = ModbusServerContext(devices={unit: device}, single=False)
    server = ModbusTcpServer(context, framer=FramerType.RTU, address=("127.0.0.1", port))
    asyncio.get_running_loop().create_task(server.serve_forever())
    await asyncio.to_thread(wait_port, port)
    return server, port


@pytest.fixture
async def sdm630() -> AsyncIterator[tuple[ModbusTcpServer, int]]:
    server, port = await start_server("sdm630")
    yield server, port
    await server.shutdown()


def meter(port: int, model: str = "sdm630", address: int = 1) -> ModbusMeter:
    where = f"tcp://127.0.0.1:{port}"
    client = make_client(where, baudrate=9600, parity="N", timeout_s=0.3, retries=1)
    return ModbusMeter(client, REGISTER_MAPS[model], address, where)  # type: ignore[index]


async def test_sdm630_reading(sdm630: tuple[ModbusTcpServer, int]) -> None:
    m = meter(sdm630[1])
    reading = await m.read()
    assert reading.voltage_v == (231.5, 229.0, 230.25)
    assert reading.current_a == (16.0, 15.5, 16.25)
    assert reading.power_w == 11000.0
    assert reading.power_factor == pytest.approx(0.98)
    assert reading.frequency_hz == pytest.approx(49.98)
    assert reading.energy_import_wh == 1234500.0 and reading.energy_export_wh == 250.0
    assert reading.reactive_import_varh == 12500.0 and reading.reactive_export_varh == 3000.0
    m.close()


async def test_every_measurand_the_device_model_offers(
    sdm630: tuple[ModbusTcpServer, int],
) -> None:
    m = meter(sdm630[1])
    reading = await m.read()
    m.close()
    v, i = reading.voltage_v, reading.current_a
    data = {
        "voltage": {"l1": v[0], "l2": v[1], "l3": v[2]},
        "current": {"l1": i[0], "l2": i[1], "l3": i[2]},
        "power_factor": reading.power_factor,
        "frequency": reading.frequency_hz,
        "total_active_energy_imported": reading.energy_import_wh,
    }
    samples = sampled_values(data, frozenset(SUPPORTED), "Sample.Periodic")
    assert {s["measurand"] for s in samples} == set(SUPPORTED)


async def test_sdm72dm_v2_map() -> None:
    server, port = await start_server("sdm72dm-v2", unit=3)
    try:
        m = meter(port, "sdm72dm-v2", address=3)
        reading = await m.read()
        m.close()
        assert reading.current_a == (16.0, 15.5, 16.25)
        assert reading.energy_import_wh == 1234500.0
        assert reading.reactive_import_varh == 0.0  # not in this meter's map
    finally:
        await server.shutdown()


async def test_a_meter_that_stops_answering_raises_meter_error() -> None:
    server, port = await start_server("sdm630")
    m = meter(port)
    await m.read()
    await server.shutdown()
    started = asyncio.get_running_loop().time()
    with pytest.raises(
        MeterError, match=f"Eastron SDM630 at Modbus address 1 on tcp://127.0.0.1:{port}"
    ):
        await m.read()
    assert asyncio.get_running_loop().time() - started < 5.0
    m.close()


async def test_a_wrong_address_gets_no_answer(sdm630: tuple[ModbusTcpServer, int]) -> None:
    m = meter(sdm630[1], address=7)
    with pytest.raises(MeterError, match="address 7"):
        await m.read()
    m.close()


def test_decode_is_big_endian_float32() -> None:
    regs = dict(enumerate(registers("sdm630")))
    assert decode(regs, REGISTER_MAPS["sdm630"]).voltage_v[0] == 231.5
