"""Runs a `SlacEvse` on a frame transport: frames in and out, ticks at its deadlines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from charger.hal.interfaces import FrameTransport
from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.runtime.log import event
from charger.runtime.tasks import wait_event

log = logging.getLogger(__name__)


class SlacDriver:
    def __init__(
        self,
        transport: FrameTransport,
        *,
        slac_init_s: float,
        on_event: Callable[[fsm.Event], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._slac_init_s = slac_init_s
        self._on_event = on_event
        self._clock = clock
        self._slac: fsm.SlacEvse | None = None
        self._wakeup = asyncio.Event()
        transport.on_frame(self._on_frame)

    @property
    def fsm(self) -> fsm.SlacEvse:
        if self._slac is None:
            raise RuntimeError("the SLAC link is not open yet")
        return self._slac

    @property
    def ready(self) -> bool:
        return self._slac is not None

    async def run(self) -> None:
        """Opens the link, then ticks the state machine at its deadlines for ever."""
        await self._transport.open()
        self._slac = fsm.SlacEvse(
            fsm.SlacSettings(evse_mac=self._transport.mac, slac_init_s=self._slac_init_s)
        )
        self.step(lambda now: self.fsm.query_modem())
        while True:
            deadline = self._slac.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            self._wakeup.clear()
            await wait_event(self._wakeup, timeout)
            self.step(self._slac.tick)

    def step(self, action: Callable[[float], None]) -> None:
        """Feeds one input, sends what the machine wants sent, reports its events."""
        action(self._clock())
        slac = self.fsm
        for dst, message in slac.drain_sends():
            self._transport.send(mme.encode_frame(dst, self._transport.mac, message))
        for ev in slac.drain_events():
            self._on_event(ev)
        self._wakeup.set()

    def _on_frame(self, raw: bytes) -> None:
        if self._slac is None:
            return
        try:
            frame = mme.decode_frame(raw)
        except mme.MmeError as exc:
            event(log, logging.DEBUG, "slac_frame_rejected", reason=str(exc))
            return
        if mme.is_group(frame.src):  # no station sends from one; answers would go to all
            event(
                log,
                logging.DEBUG,
                "slac_frame_rejected",
                reason=f"offset 6: source {mme.mac_str(frame.src)} is a group address",
            )
            return
        if frame.dst in (self._transport.mac, mme.BROADCAST):
            self.step(lambda now: self.fsm.receive(now, frame))


def log_event(ev: fsm.Event, **context: str) -> None:
    """One log line per SLAC event, with the same fields wherever SLAC runs."""
    match ev:
        case fsm.Matching():
            event(
                log,
                logging.INFO,
                "slac_matching",
                **context,
                run_id=ev.run_id.hex(),
                pev=mme.mac_str(ev.pev_mac),
            )
        case fsm.Matched():
            event(
                log,
                logging.INFO,
                "slac_matched",
                **context,
                run_id=ev.run_id.hex(),
                pev=mme.mac_str(ev.pev_mac),
                nid=ev.nid.hex(),
            )
        case fsm.LinkEstablished():
            event(log, logging.INFO, "slac_link_established", **context, run_id=ev.run_id.hex())
        case fsm.RunFailed():
            event(
                log,
                logging.INFO,
                "slac_run_failed",
                **context,
                run_id=ev.run_id.hex(),
                reason=ev.reason,
            )
        case fsm.Failed():
            event(log, logging.WARNING, "slac_failed", **context, reason=ev.reason)
        case fsm.ModemReset():
            event(log, logging.WARNING, "slac_modem_reset", **context, reason=ev.reason)
        case fsm.ModemInfo():
            event(
                log,
                logging.INFO,
                "slac_modem",
                **context,
                firmware=ev.firmware,
                mac=mme.mac_str(ev.mac),
            )
        case fsm.KeySet():
            event(log, logging.INFO, "slac_key_set", **context, nid=ev.nid.hex())
        case fsm.Ignored():
            event(log, logging.DEBUG, "slac_ignored", **context, what=ev.what)
