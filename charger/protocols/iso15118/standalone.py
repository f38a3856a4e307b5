"""`charger secc --iface IF`: the SECC alone on an interface, for board bring-up and the
interoperability harness, with a station's power path behind it on the same bus.

The station (`Station`) is whatever the caller builds — `charger secc` uses the
simulated board with the real CS controller. Its car stands in for the EV on the other
end of the link: plugged in while the SECC serves, its pilot following the session
(`Send.ev_state`: C to take energy, B when done). Every message is logged with its
response time; at the end of each session a summary per message type. Exit status 0
after a completed session (or serving on with `loop`), 1 with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from charger.bus import Bus, RequestTimeout, messages
from charger.protocols.iso15118.core import End, Outcome, Send
from charger.protocols.iso15118.evse import EvseSetup
from charger.protocols.iso15118.service import SeccService, SeccSettings
from charger.runtime.log import event

log = logging.getLogger(__name__)

REPLUG_S = 0.5  # between two cars (`loop`): the plug is out this long


class Station(Protocol):
    """The power path behind the SECC and the car at the end of the cable."""

    def plug(self, plugged: bool) -> None: ...

    def ev_state(self, state: str) -> None:
        """The car's pilot: "B" (connected) or "C" (asking for energy)."""

    def ev_power(self, on: bool) -> None:
        """The car takes energy (closes its contactor, DC) or stops taking it."""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def log_summary(service: SeccService) -> None:
    for request, timing in sorted(service.timings.items()):
        total = [t * 1000 for t in timing.total_s]
        core = [t * 1e6 for t in timing.core_s]
        if not total:
            continue
        event(
            log,
            logging.INFO,
            "v2g_timing",
            request=request,
            n=len(total),
            p50_ms=round(statistics.median(total), 3),
            p99_ms=round(percentile(total, 99), 3),
            core_p50_us=round(statistics.median(core), 1),
            core_p99_us=round(percentile(core, 99), 1),
        )


@dataclass(slots=True)
class Serving:
    service: SeccService
    ends: asyncio.Queue[End]
    runner: asyncio.Task[None]


@contextlib.asynccontextmanager
async def serving(
    bus: Bus, setup: EvseSetup, settings: SeccSettings, station: Station
) -> AsyncIterator[Serving]:
    """The SECC serving with `station` behind it: the car plugged in at 5 %, its pilot
    following the session; each session's end goes into `ends`."""
    ends: asyncio.Queue[End] = asyncio.Queue()

    def on_message(send: Send) -> None:
        if send.ev_state is not None:
            station.ev_state(send.ev_state)
        if send.ev_power is not None:
            station.ev_power(send.ev_power)

    service = SeccService(
        bus,
        setup,
        settings,
        on_session_end=ends.put_nowait,
        on_message=on_message,
        wait_for_interface=False,
    )
    service.start()
    runner = asyncio.create_task(service.run())
    try:
        await plug_in(bus, setup, station)
        yield Serving(service, ends, runner)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await service.close()


async def serve(
    bus: Bus, setup: EvseSetup, settings: SeccSettings, station: Station, *, loop: bool
) -> int:
    try:
        async with serving(bus, setup, settings, station) as secc:
            while True:
                waiter = asyncio.create_task(secc.ends.get())
                done, _ = await asyncio.wait(
                    {waiter, secc.runner}, return_when=asyncio.FIRST_COMPLETED
                )
                if secc.runner in done:
                    waiter.cancel()
                    secc.runner.result()  # raises why the SECC could not serve
                    return 1
                end = waiter.result()
                log_summary(secc.service)
                if not loop:
                    if end.outcome is Outcome.FAILED:
                        event(log, logging.ERROR, "secc_failed", reason=end.reason)
                        return 1
                    return 0
                station.plug(False)  # the next car
                await asyncio.sleep(REPLUG_S)
                await plug_in(bus, setup, station)
    except OSError as exc:
        event(log, logging.ERROR, "secc_cannot_serve", error=str(exc))
        return 1


async def plug_in(bus: Bus, setup: EvseSetup, station: Station) -> None:
    """The car is plugged in and (as SLAC would have) the CP shows 5 %."""
    station.plug(True)
    data: messages.CpPwmRequest = {
        "evse_id": setup.evse_id,
        "hlc": True,
        "error_state": False,
        "fault_state": False,
    }
    try:
        await bus.request(messages.CP_PWM_REQUEST.make(data))
    except RequestTimeout:
        event(log, logging.WARNING, "secc_no_cp_pwm_response", evse=setup.evse_id)
