"""`charger slac --iface IF`: the EVSE side of SLAC alone, for board bring-up.

It behaves as if an EV were plugged in with 5 %: a fresh NMK into the modem, then it
waits for an EV. Every step is logged. Exit status 0 on a match; 1 with the reason when
SLAC fails or the link cannot be opened. With `loop` it starts over after each outcome.
"""

from __future__ import annotations

import asyncio
import logging

from charger.hal.interfaces import FrameTransport
from charger.log import event
from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.protocols.slac.driver import SlacDriver
from charger.protocols.slac.link import LinkError

log = logging.getLogger(__name__)


async def serve(transport: FrameTransport, *, loop: bool, init_timeout_s: float) -> int:
    outcome: asyncio.Queue[bool] = asyncio.Queue()

    def on_event(ev: fsm.Event) -> None:
        match ev:
            case fsm.ModemInfo():
                event(log, logging.INFO, "slac_modem", firmware=ev.firmware)
            case fsm.KeySet():
                event(log, logging.INFO, "slac_key_set", nid=ev.nid.hex())
            case fsm.Matching():
                event(
                    log,
                    logging.INFO,
                    "slac_matching",
                    run_id=ev.run_id.hex(),
                    pev=mme.mac_str(ev.pev_mac),
                )
            case fsm.Matched():
                event(
                    log,
                    logging.INFO,
                    "slac_matched",
                    run_id=ev.run_id.hex(),
                    pev=mme.mac_str(ev.pev_mac),
                    nid=ev.nid.hex(),
                )
                outcome.put_nowait(True)
            case fsm.LinkEstablished():
                event(log, logging.INFO, "slac_link_established", run_id=ev.run_id.hex())
            case fsm.RunFailed():
                event(
                    log, logging.INFO, "slac_run_failed", run_id=ev.run_id.hex(), reason=ev.reason
                )
            case fsm.Failed():
                event(log, logging.WARNING, "slac_failed", reason=ev.reason)
                outcome.put_nowait(False)
            case fsm.ModemReset():
                event(log, logging.WARNING, "slac_modem_reset", reason=ev.reason)
            case fsm.Ignored():
                event(log, logging.DEBUG, "slac_ignored", what=ev.what)

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
