"""The driver around the SLAC state machine, on an in-memory link (reliability issue,
defect 12: frames from group source addresses never reach the state machine)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.protocols.slac.driver import SlacDriver
from charger.runtime.log import KeyValueFormatter
from tests.support.slac_rig import EVSE_MAC, MODEM, PEV_A, RUN_A


class MemoryLink:
    """A FrameTransport that keeps what is sent and delivers what a test injects."""

    def __init__(self) -> None:
        self.sent: list[mme.Frame] = []
        self._callbacks: list[Callable[[bytes], None]] = []

    @property
    def mac(self) -> bytes:
        return EVSE_MAC

    async def open(self) -> None:
        return None

    def send(self, frame: bytes) -> None:
        self.sent.append(mme.decode_frame(frame))

    def on_frame(self, callback: Callable[[bytes], None]) -> None:
        self._callbacks.append(callback)

    def deliver(self, src: bytes, message: mme.Mme, dst: bytes = EVSE_MAC) -> None:
        for callback in self._callbacks:
            callback(mme.encode_frame(dst, src, message))

    def close(self) -> None:
        return None

    def sent_of(self, kind: type[mme.Mme]) -> list[mme.Frame]:
        return [f for f in self.sent if isinstance(f.mme, kind)]


@pytest.fixture
async def running() -> AsyncIterator[tuple[MemoryLink, SlacDriver, list[fsm.Event]]]:
    link, events = MemoryLink(), list[fsm.Event]()
    driver = SlacDriver(link, slac_init_s=20, on_event=events.append)
    task = asyncio.create_task(driver.run())
    await asyncio.sleep(0)  # the memory link opens at once
    assert driver.ready
    try:
        yield link, driver, events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_driver_learns_the_modem_then_sets_the_key(
    running: tuple[MemoryLink, SlacDriver, list[fsm.Event]],
) -> None:
    link, driver, events = running
    assert [type(f.mme) for f in link.sent] == [mme.VsSwVerReq]
    link.deliver(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0"))
    driver.step(driver.fsm.start)
    link.deliver(MODEM, mme.CmSetKeyCnf(1, bytes(4), bytes(4), 4, 0, 0, 0))
    assert driver.fsm.modem_mac == MODEM and driver.fsm.key_ready
    assert [type(e) for e in events] == [fsm.ModemInfo, fsm.KeySet]


@pytest.mark.parametrize("group", [mme.BROADCAST, bytes.fromhex("01005e0000fb")], ids=mme.mac_str)
async def test_frames_from_a_group_address_are_dropped_by_the_driver(
    running: tuple[MemoryLink, SlacDriver, list[fsm.Event]],
    group: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, driver, events = running
    link.deliver(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0"))
    driver.step(driver.fsm.start)
    caplog.set_level(logging.DEBUG, logger="charger.protocols.slac.driver")
    link.deliver(group, mme.CmSlacParmReq(0, 0, RUN_A), dst=mme.BROADCAST)
    assert not link.sent_of(mme.CmSlacParmCnf)
    assert not [e for e in events if isinstance(e, fsm.Ignored | fsm.Matching)]  # never got there
    lines = [KeyValueFormatter().format(r) for r in caplog.records]
    assert any(f"source {mme.mac_str(group)} is a group address" in line for line in lines)
    link.deliver(PEV_A, mme.CmSlacParmReq(0, 0, RUN_A), dst=mme.BROADCAST)
    assert [f.dst for f in link.sent_of(mme.CmSlacParmCnf)] == [PEV_A]
