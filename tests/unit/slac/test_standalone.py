"""`charger slac` logic on the simulator's powerline (no root, no interface)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from charger.protocols.slac.standalone import serve
from charger.sim.plc import SimPowerline


async def test_exits_0_on_a_match() -> None:
    line = SimPowerline(1)
    line.plug(True)
    task = asyncio.create_task(serve(line.host_link, loop=False, init_timeout_s=5))
    await asyncio.sleep(0.05)
    line.pev.start()
    assert await asyncio.wait_for(task, 5) == 0
    assert line.pev.matched and line.pev.nmk == line.evse_nmk


async def test_exits_1_when_no_ev_comes(caplog: pytest.LogCaptureFixture) -> None:
    line = SimPowerline(1)
    assert await asyncio.wait_for(serve(line.host_link, loop=False, init_timeout_s=0.2), 5) == 1
    assert "slac_failed" in caplog.text


async def test_loop_keeps_serving_with_a_fresh_key() -> None:
    line = SimPowerline(1)
    line.plug(True)
    task = asyncio.create_task(serve(line.host_link, loop=True, init_timeout_s=5))
    await asyncio.sleep(0.05)
    line.pev.start()
    await until(lambda: line.pev.matched)
    # started over at once: a new NMK went into the modem, unlike the one the EV joined with
    await until(lambda: line.evse_nmk is not None and line.evse_nmk != line.pev.nmk)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
