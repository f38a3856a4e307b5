"""The simulated car's EVCC alone on a network interface, for one session against any
SECC: a model battery (`battery.Battery`) charged with what the EVSE says it delivers,
a pilot and a contactor that are only logged. The harness's reference SECC (the
iso15118 package's, in a network namespace) has no power path behind it: give such a
peer `precharge_cycles` (its present voltage never reaches the battery's) and
`charge_loops` (its present current charges nothing worth waiting for).

`summary(result)` is the session as a JSON-able dict: outcome, reason, the requests in
order with their codes and response times, SDP and session times.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from charger.runtime.log import event
from charger.sim.evcc.battery import Battery
from charger.sim.evcc.car import CORES
from charger.sim.evcc.client import EvccSession, Link, SessionResult
from charger.sim.evcc.core import EvccSettings

log = logging.getLogger(__name__)


class ModelCar:
    """A car around a model battery: `Vehicle` and `Car` for the EVCC core."""

    def __init__(
        self, battery: Battery, settings: EvccSettings, clock: Callable[[], float]
    ) -> None:
        """`clock`: the time `draw` is told (the battery charges in between)."""
        self.battery = battery
        self._settings = settings
        self._clock = clock
        self._power_w = 0.0
        self._since: float | None = None
        self.wants_charge = True
        self.paused = False
        self.pilot_state = "B"
        self.contactor_closed = False

    @property
    def soc_percent(self) -> float:
        self._charge(self._clock())
        return self.battery.soc_percent

    @property
    def battery_voltage_v(self) -> float:
        self._charge(self._clock())
        return self.battery.ocv_v()

    def _charge(self, now: float) -> None:
        """The battery takes the present power up to `now`."""
        if self._since is not None and now > self._since:
            self.battery.store(self._power_w * (now - self._since) / 3600.0)
            self._since = now

    def pilot(self, state: str) -> None:
        self.pilot_state = state
        event(log, logging.INFO, "sim_evcc_pilot", state=state)

    def ev_power(self, on: bool) -> None:
        self.contactor_closed = on
        event(log, logging.INFO, "sim_evcc_contactor", closed=on)

    def draw(self, now: float, current_a: float, voltage_v: float) -> None:
        """From `now` on the car takes this (AC: per phase)."""
        self._charge(now)
        phases = 1 if self._settings.dc else self._settings.ac_phases
        self._power_w = max(0.0, current_a * voltage_v * phases)
        self._since = now


async def run(
    link: Link, settings: EvccSettings, battery: Battery, *, tls: ssl.SSLContext | None = None
) -> SessionResult:
    """One session on `link`; returns how it went (it does not raise for a failure)."""
    car = ModelCar(battery, settings, asyncio.get_running_loop().time)
    core = CORES[settings.protocol](settings, car)
    session = EvccSession(link, core, car, tls=tls, name=link.interface)
    return await session.run()


def summary(result: SessionResult) -> dict[str, Any]:
    ended = result.ended
    return {
        "outcome": ended.outcome.value,
        "reason": ended.reason,
        "code": ended.code,
        "sdp": None
        if result.sdp is None
        else {
            "address": result.sdp.address,
            "port": result.sdp.port,
            "security": result.sdp.security.name,
        },
        "sdp_ms": None if result.sdp_s is None else round(result.sdp_s * 1000, 3),
        "session_s": None if result.duration_s is None else round(result.duration_s, 3),
        "exchanges": [
            {
                "request": x.request,
                "response": x.response,
                "code": x.code,
                "ms": round(x.elapsed_s * 1000, 3),
            }
            for x in result.exchanges
        ],
    }
