"""The simulated board's car with its EVCC: once SLAC has matched it runs a V2G session
over the simulated link, its pilot and contactor following the session, its battery the
board's; a pause waits for the driver to resume, a new plug-in starts afresh.

`SimEvcc.run` is one long-lived task per HLC EVSE of the simulated board (`charger sim`
starts it, `app.App`). It watches the board every LINK_POLL_S: the data link is up while
the car is plugged in, does HLC and its SLAC peer has matched (the powerline's
D-LINK_READY); it goes down on unplug, or when the pilot leaves 5 % and SLAC stops. A
session runs until it ends or the connection closes (the SECC closes it whenever its
session ends, after opening the power path); only an unplug cuts it short.

A failed session is tried again, `HlcCar.retries` times per plug-in, each attempt at
least `retry_pause_s` after the failure on the board's clock (`SimEvse.clock`). A failure
before any connection stood (no SDP answer, the connection refused) is retried on the
same link; after one with a connection the SECC has failed the session too, so the car
reports D-LINK_ERROR (ISO 15118-3): its modem leaves the logical network and the next
attempt waits for a new SLAC match (which the station's E/F toggle allows). Once the
retries are spent the car gives up high-level communication until it is unplugged: its
S2 stays open at 5 %, and at a nominal duty cycle an AC car charges as IEC 61851-1 has it
(basic charging); a DC car cannot charge without it. Each attempt, retry and the
giving-up are logged (`sim_evcc_attempt`, `sim_evcc_retry`, `sim_evcc_gave_up`) and
shown in `state` (the evcc session's `attempt`, `gave_up`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from charger.protocols.iso15118.core import Outcome
from charger.protocols.iso15118.sap import V2gProtocol
from charger.runtime.log import event
from charger.sim.evcc.client import EvccSession, Link, SessionResult
from charger.sim.evcc.core import EvccCore, EvccSettings, Exchange
from charger.sim.evcc.din import DinEvcc
from charger.sim.evcc.iso2 import Iso2Evcc

if TYPE_CHECKING:
    from charger.sim.board import SimEvse

log = logging.getLogger(__name__)

LINK_POLL_S = 0.05
CORES: dict[V2gProtocol, type[EvccCore]] = {
    V2gProtocol.ISO_15118_2: Iso2Evcc,
    V2gProtocol.DIN_SPEC_70121: DinEvcc,
}


def car_settings(sim: SimEvse) -> EvccSettings:
    """The EVCC's settings from the board's car as it is now (`set_ev`, `[sim]`)."""
    ev, hlc = sim.ev, sim.ev.evcc
    din = hlc.protocol == "din"
    dc = hlc.energy == "dc" or (hlc.energy == "auto" and sim.dc is not None) or din
    return EvccSettings(
        protocol=V2gProtocol.DIN_SPEC_70121 if din else V2gProtocol.ISO_15118_2,
        dc=dc,
        evcc_id=sim.powerline.pev.mac,
        capacity_wh=ev.capacity_wh,
        target_soc_percent=hlc.target_soc_percent,
        departure_time_s=hlc.departure_time_s,
        ac_phases=ev.phases,
        ac_max_current_a=ev.max_current_a,
        dc_max_current_a=sim.dc.ev_max_current_a if sim.dc is not None else 200.0,
        dc_max_voltage_v=sim.dc.ev_max_voltage_v if sim.dc is not None else 450.0,
        misbehave=hlc.misbehave,
    )


class BoardCar:
    """The board's car as the EVCC core reads it (`Vehicle`) and acts on it (`Car`)."""

    def __init__(self, sim: SimEvse) -> None:
        self._sim = sim

    @property
    def soc_percent(self) -> float:
        return self._sim.ev.soc_percent

    @property
    def battery_voltage_v(self) -> float:
        dc = self._sim.dc
        return 0.0 if dc is None else dc.ocv_v(self._sim.ev.soc_percent)

    @property
    def wants_charge(self) -> bool:
        ev = self._sim.ev
        return ev.plugged and ev.wants_charge

    @property
    def paused(self) -> bool:
        return self._sim.ev.evcc.paused

    def pilot(self, state: str) -> None:
        self._sim.hlc_drive(state, self._sim.ev.evcc.ac_current_a if state == "C" else 0.0)

    def ev_power(self, on: bool) -> None:
        if self._sim.dc is not None and (self._sim.ev.plugged or not on):
            self._sim.set_ev_contactor(on)

    def draw(self, now: float, current_a: float, voltage_v: float) -> None:
        if self._sim.dc is None:  # AC: the car draws it; DC: the board's physics decide
            self._sim.hlc_drive(self._sim.ev.evcc.pilot, current_a)


class SimEvcc:
    """The EVCC of one simulated car; see the module docstring."""

    def __init__(
        self,
        sim: SimEvse,
        link: Link,
        *,
        settings: Callable[[SimEvse], EvccSettings] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`settings`: the EVCC's settings for the next session from the car (default
        `car_settings`); `tls`: ask for TLS in SDP and connect with this context."""
        self._sim = sim
        self._tls = tls
        self._link = link
        self._settings = settings
        self._car = BoardCar(sim)
        self._session: EvccSession | None = None
        self.results: list[SessionResult] = []  # the latest sessions, oldest first
        self.sessions = 0
        self.failures = 0  # failed attempts since the plug-in
        self._plug_in = sim.plug_ins

    @property
    def name(self) -> str:
        return self._sim.config.evse_id

    def link_up(self) -> bool:
        ev = self._sim.ev
        return ev.plugged and ev.hlc and self._sim.powerline.pev.matched

    async def run(self) -> None:
        hlc = self._sim.ev.evcc
        hlc.attached = True
        self._sim.hlc_drive("B")
        resume: bytes | None = None
        try:
            while True:
                await self._until(
                    lambda: self.link_up() and self._car.wants_charge and not hlc.paused
                )
                if self._sim.plug_ins != self._plug_in:  # a new plug-in: a fresh budget
                    self._plug_in, self.failures = self._sim.plug_ins, 0
                result = await self._one(resume)
                outcome = result.ended.outcome
                resume = result.ended.session_id if outcome is Outcome.PAUSED else None
                if outcome is Outcome.PAUSED:  # until resumed, or a new plug-in
                    await self._until(lambda: not self.link_up() or not hlc.paused)
                    if not self.link_up():
                        resume = None
                elif outcome is Outcome.FAILED and self._sim.ev.plugged:
                    if await self._retry(result):
                        continue
                    await self._until(lambda: not self._sim.ev.plugged)  # it gave up
                else:
                    self.failures = 0
                    await self._until(lambda: not self.link_up())
                if not self._sim.ev.plugged:
                    self._sim.hlc_drive("B")
        finally:
            hlc.attached = False
            hlc.pilot, hlc.ac_current_a = "B", 0.0

    async def _retry(self, result: SessionResult) -> bool:
        """After a failed attempt: True once the next may start, False when the car
        gives up (its retries spent)."""
        hlc = self._sim.ev.evcc
        self.failures += 1
        connected = result.started is not None
        if self.failures > hlc.retries:
            ac = hlc.status.get("energy") == "ac"
            hlc.status["gave_up"] = True
            event(
                log,
                logging.WARNING,
                "sim_evcc_gave_up",
                car=self.name,
                attempts=self.failures,
                reason=result.ended.reason,
                fallback="basic charging at a nominal duty cycle" if ac else "none",
            )
            return False
        event(
            log,
            logging.INFO,
            "sim_evcc_retry",
            car=self.name,
            failed=self.failures,
            of=hlc.retries + 1,
            pause_s=hlc.retry_pause_s,
            new_link=connected,
            reason=result.ended.reason,
        )
        if connected:
            self._sim.dlink_error()
        await self._sim.clock.sleep(hlc.retry_pause_s)
        return True

    async def _until(self, condition: Callable[[], bool]) -> None:
        # polled: the SLAC peer's `matched` (charger/sim/plc.py) reports no change
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(LINK_POLL_S)

    async def _one(self, resume: bytes | None) -> SessionResult:
        settings = (self._settings or car_settings)(self._sim)
        core = CORES[settings.protocol](settings, self._car, session_id=resume)
        self.sessions += 1
        hlc = self._sim.ev.evcc
        attempt = self.failures + 1
        hlc.status = {"stage": "SDP", "sessions": self.sessions, "attempt": attempt}
        event(
            log,
            logging.INFO,
            "sim_evcc_attempt",
            car=self.name,
            attempt=attempt,
            of=hlc.retries + 1,
            clock_s=round(self._sim.clock.now(), 6),
        )
        session = self._session = EvccSession(
            self._link, core, self._car, tls=self._tls, name=self.name, on_message=self._message
        )
        runner = asyncio.create_task(session.run(), name=f"evcc {self.name}")
        try:
            while not runner.done():
                if not self._sim.ev.plugged:  # (state F or PWM off: the SECC closes)
                    session.abort("the car was unplugged")
                await asyncio.wait({runner}, timeout=LINK_POLL_S)
            result = runner.result()
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            self._session = None
        self.results = [*self.results[-9:], result]
        ended = result.ended
        hlc.status = {
            **core.status(),
            "protocol": settings.protocol.value,
            "energy": "dc" if settings.dc else "ac",
            "sessions": self.sessions,
            "attempt": attempt,
            "outcome": ended.outcome.value,
            "reason": ended.reason,
            **({"code": ended.code} if ended.code else {}),
            **({"note": core.note} if core.note else {}),
        }
        event(
            log,
            logging.INFO if ended.outcome is not Outcome.FAILED else logging.WARNING,
            "sim_evcc_session_end",
            car=self.name,
            protocol=settings.protocol.value,
            energy="dc" if settings.dc else "ac",
            outcome=ended.outcome.value,
            reason=ended.reason,
            code=ended.code,
            loops=core.loops,
            duration_s=None if result.duration_s is None else round(result.duration_s, 3),
        )
        return result

    def _message(self, exchange: Exchange) -> None:
        session = self._session
        if session is not None:
            status = self._sim.ev.evcc.status
            status["stage"] = session.core.stage
            status["session_id"] = session.core.session_id.hex().upper()
        loop = exchange.request in ("ChargingStatusReq", "CurrentDemandReq")
        event(
            log,
            logging.DEBUG if loop else logging.INFO,
            "sim_evcc_message",
            car=self.name,
            request=exchange.request,
            response=exchange.response,
            code=exchange.code,
            ms=round(exchange.elapsed_s * 1000, 3),
        )
