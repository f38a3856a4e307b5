"""`charger slac --iface IF`: the EVSE side of SLAC alone, for board bring-up.

It behaves as if an EV were plugged in with 5 %: a fresh NMK into the modem, then it
waits for an EV. Every step is logged. Exit status 0 on a match; 1 with the reason when
SLAC fails or the link cannot be opened. With `loop` it starts over after each outcome.
"""

from __future__ import annotations

import asyncio
import logging

from charger.hal.interfaces import FrameTransport
from charger.protocols.slac import evse as fsm
from charger.protocols.slac.driver import SlacDriver, log_event
from charger.protocols.slac.link import LinkError
from charger.runtime.log import event

log = logging.getLogger(__name__)


async def serve(transport: FrameTransport, *, loop: bool, init_timeout_s: float) -> int:
    outcome: asyncio.Queue[bool] = asyncio.Queue()

    def on_event(ev: fsm.Event) -> None:
        log_event(ev)
        if isinstance(ev, fsm.Matched | fsm.Failed):
            outcome.put_nowait(isinstance(ev, fsm.Matched))

    driver = SlacDriver(transport, slac_init_s=init_timeout_s, on_event=on_event)
    runner = asyncio.create_task(driver.run())
    try:
        while not driver.ready:
            if runner.done():
                runner.result()  # raises what stopped the link from opening
            await asyncio.sleep(0.01)
        while True:
            driver.step(driver.fsm.start)
            matched = await outcome.get()
            if not loop:
                # let the last frames (MATCH.CNF) leave before the socket closes
                await asyncio.sleep(0.1)
                return 0 if matched else 1
    except (LinkError, OSError) as exc:
        event(log, logging.ERROR, "slac_link_failed", error=str(exc))
        return 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        transport.close()
