"""SLAC service for one EVSE: the asyncio shell around `SlacEvse`, meeting the CS on the bus.

When the EV is plugged in (cp_status B/C/D) it asks the CS for 5 % (cp_pwm hlc=true) and
starts matching; progress goes out as slac_status updates. When the EV leaves (state A)
everything is reset. If SLAC fails, ISO 15118-3's retry applies: the CP goes to state F
for T_step_EF and matching starts again, at most C_sequ_retry times; after that the
station falls back to basic charging (cp_pwm with the EVSE's current) and says so with
slac_status basic_charging. An E/F that another service toggles (the SECC's retry after
a failed V2G session) ends the match too; on the return to B SLAC waits for the car
again, leaving the duty cycle to that service: 5 % for the EV's retry, or the nominal
one once it gave high-level communication up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from charger.bus import Bus, RequestTimeout, messages
from charger.bus.api import Message
from charger.hal.interfaces import FrameTransport
from charger.protocols.slac import evse as fsm
from charger.protocols.slac.driver import SlacDriver, log_event
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

T_STEP_EF_S = 4.0  # ISO 15118-3: state E/F held this long before SLAC is retried
C_SEQU_RETRY = 2  # ISO 15118-3: retries of the whole SLAC sequence


@dataclass(frozen=True, slots=True)
class SlacServiceSettings:
    evse_id: str
    fallback_current_a: float  # offered with basic charging after SLAC gave up
    slac_init_s: float = fsm.TT_EVSE_SLAC_INIT_S
    step_ef_s: float = T_STEP_EF_S


def run_id_text(run_id: bytes) -> str:
    return "0x" + run_id.hex().upper()


class SlacService:
    def __init__(
        self,
        bus: Bus,
        transport: FrameTransport,
        settings: SlacServiceSettings,
        *,
        reset_modem: Callable[[], Coroutine[Any, Any, None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._s = settings
        self._tasks = TaskOwner(f"slac {settings.evse_id}")
        self._reset_modem = reset_modem
        self._clock = clock
        self._driver = SlacDriver(
            transport, slac_init_s=settings.slac_init_s, on_event=self._on_event, clock=clock
        )
        self._plugged = False
        self._own_ef = False  # the E/F on the CP is this service's own retry
        self._after_foreign_ef = False  # unplugged by another service's E/F, not state A
        self._retries = 0
        self._last_run: bytes | None = None

    @property
    def evse_id(self) -> str:
        return self._s.evse_id

    def start(self) -> None:
        self._bus.subscribe(messages.CP_STATUS_UPDATE, self._on_cp_status, owner=self._tasks)

    async def run(self) -> None:
        await self._driver.run()

    async def close(self) -> None:
        await self._tasks.close()

    @property
    def _fsm(self) -> fsm.SlacEvse:
        return self._driver.fsm

    def _step(self, action: Callable[[float], None]) -> None:
        self._driver.step(action)

    def _on_cp_status(self, message: Message[messages.CpStatusUpdate]) -> None:
        if message.data.get("evse_id") != self._s.evse_id or not self._driver.ready:
            return
        state = message.data["state"]
        self._fsm.cp_state(self._clock(), state)
        connected = state[0] in "BCD"
        # A (unplugged), or E/F that this service did not ask for (the SECC's error
        # handling, ISO 15118-3's E/F toggle): the next B/C is a new SLAC attempt
        restart = state[0] in "EF" and not self._own_ef
        if (state[0] == "A" or restart) and self._plugged:
            self._plugged = False
            self._after_foreign_ef = restart
            self._end_plug_in()
        elif connected and not self._plugged:
            self._plugged = True
            # After someone else's E/F, that service decides the duty cycle: 5 % for the
            # EV's retry, or the nominal one once the SECC gave up (basic charging,
            # ISO 15118-3), which a request for 5 % here would take from the car.
            foreign, self._after_foreign_ef = self._after_foreign_ef, False
            self._begin(ask_for_hlc=not foreign)

    # ------------------------------------------------------------------ session

    def _begin(self, *, ask_for_hlc: bool = True) -> None:
        self._retries = 0
        if ask_for_hlc:
            self._tasks.spawn(self._start_matching(), "start matching")
        else:
            self._step(lambda now: self._fsm.start(now))

    async def _start_matching(self) -> None:
        if not await self._cp_pwm(hlc=True):
            return
        if self._plugged:
            self._step(lambda now: self._fsm.start(now))

    def _end_plug_in(self) -> None:
        was_active = self._fsm.active or self._fsm.matched
        self._step(lambda now: self._fsm.stop(now))
        if was_active and self._last_run is not None:
            self._publish("unmatched", self._last_run)
        self._last_run = None

    async def _retry_after_ef(self) -> None:
        self._own_ef = True
        try:
            await self._cp_pwm(hlc=False, current=0.0, fault=True)
            await asyncio.sleep(self._s.step_ef_s)
        finally:
            self._own_ef = False
        if self._plugged:
            await self._start_matching()

    async def _fall_back_to_basic(self) -> None:
        self._publish("basic_charging", self._last_run or bytes(8))
        await self._cp_pwm(hlc=False, current=self._s.fallback_current_a)

    async def _cp_pwm(
        self, *, hlc: bool, current: float | None = None, fault: bool = False
    ) -> bool:
        data: messages.CpPwmRequest = {
            "evse_id": self._s.evse_id,
            "hlc": hlc,
            "error_state": False,
            "fault_state": fault,
        }
        if not hlc:
            data["current"] = current or 0.0
        try:
            reply = await self._bus.request(messages.CP_PWM_REQUEST.make(data))
        except RequestTimeout:
            return False
        if reply.data["status"] != "valid":
            event(
                log,
                logging.WARNING,
                "cp_pwm_refused",
                evse=self._s.evse_id,
                status=reply.data["status"],
                info=reply.data.get("info", ""),
            )
            return False
        return True

    # ------------------------------------------------------------------ events

    def _on_event(self, ev: fsm.Event) -> None:
        log_event(ev, evse=self._s.evse_id)
        match ev:
            case fsm.Matching():
                self._last_run = ev.run_id
                self._publish("matching", ev.run_id)
            case fsm.Matched():
                self._publish("matched", ev.run_id)
            case fsm.Failed():
                self._publish("failed", self._last_run or bytes(8))
                if not self._plugged:
                    return
                if self._retries < C_SEQU_RETRY:
                    self._retries += 1
                    self._tasks.spawn(self._retry_after_ef(), "retry after E/F")
                else:
                    self._tasks.spawn(self._fall_back_to_basic(), "basic charging")
            case fsm.ModemReset() if self._reset_modem is not None:
                self._tasks.spawn(self._reset_modem(), "modem reset")

    def _publish(self, status: str, run_id: bytes) -> None:
        data: messages.SlacStatusUpdate = {
            "evse_id": self._s.evse_id,
            "run_id": run_id_text(run_id),
            "status": status,
        }
        self._bus.publish(messages.SLAC_STATUS_UPDATE.make(data))
