"""Contactor, connector lock and RCD of the Raspberry Pi board, on GPIO lines.

Feedback inputs are debounced by the kernel (gpiod) and followed by edge events, so the
state the CS controller reads every tick is the last debounced edge, never a bounce.
The controller supervises the timing (IEC 61851 machine: the contactor's auxiliary
contact within 250 ms, else a weld or a failure to close; a drop-out while closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from charger.hal.rpi.gpio import InputLine, OutputLine
from charger.runtime.log import event

log = logging.getLogger(__name__)

RCD_TRIP_TIMEOUT_S = 0.3  # the test current must trip it by then (an RDC-DD: < 0.3 s)
RCD_RELEASE_TIMEOUT_S = 0.5  # and it must re-arm by then once the test current is off
RCD_POLL_S = 0.005


class RpiContactor:
    """Contactor: a coil output and an optional auxiliary-contact input."""

    def __init__(self, coil: OutputLine, feedback: InputLine | None) -> None:
        self._coil, self._feedback = coil, feedback
        self._commanded = False
        self._commanded_at = time.monotonic()
        coil.set(False)
        if feedback is not None:
            feedback.on_edge(self._edge)

    def set_closed(self, closed: bool) -> None:
        if closed != self._commanded:
            self._commanded_at = time.monotonic()
        self._commanded = closed
        self._coil.set(closed)

    def feedback_closed(self) -> bool | None:
        return None if self._feedback is None else self._feedback.get()

    def _edge(self, closed: bool) -> None:
        delay_ms = round((time.monotonic() - self._commanded_at) * 1000.0, 1)
        expected = closed == self._commanded
        event(
            log,
            logging.INFO if expected else logging.WARNING,
            "contactor_feedback",
            closed=closed,
            commanded=self._commanded,
            after_ms=delay_ms,
        )


class HBridgeLock:
    """Connector lock driven by a DC motor through an H-bridge: a pulse of `pulse_s` on
    one input locks, on the other unlocks, both low brake the motor; a micro-switch
    reports the position. `set_locked` returns at once: the pulse ends on a loop timer
    (outside a loop, e.g. at shutdown, the pulse is waited for)."""

    def __init__(
        self, lock: OutputLine, unlock: OutputLine, feedback: InputLine | None, pulse_s: float
    ) -> None:
        self._lock, self._unlock, self._feedback, self._pulse_s = lock, unlock, feedback, pulse_s
        self._pulse_end: asyncio.TimerHandle | None = None
        self.pulses = 0
        lock.set(False)
        unlock.set(False)

    def set_locked(self, locked: bool) -> None:
        self._brake()
        self.pulses += 1
        (self._lock if locked else self._unlock).set(True)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            time.sleep(self._pulse_s)
            self._brake()
            return
        self._pulse_end = loop.call_later(self._pulse_s, self._brake)

    def _brake(self) -> None:
        if self._pulse_end is not None:
            self._pulse_end.cancel()
            self._pulse_end = None
        self._lock.set(False)  # never both high: that shorts the bridge
        self._unlock.set(False)

    def feedback_locked(self) -> bool | None:
        return None if self._feedback is None else self._feedback.get()


class RpiRcd:
    """An RCD / RDC-DD 6 mA DC fault detector: a trip input with edge events and a test
    output that injects the test current."""

    def __init__(self, trip: InputLine, test: OutputLine) -> None:
        self._trip, self._test = trip, test
        self._callbacks: list[Callable[[bool], None]] = []
        self._testing = False
        self._reported = trip.get()
        test.set(False)
        trip.on_edge(self._edge)

    def tripped(self) -> bool:
        return self._trip.get()

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    def _edge(self, tripped: bool) -> None:
        if self._testing:
            return  # the self-test's own trip
        self._report(tripped)

    def _report(self, tripped: bool) -> None:
        if tripped == self._reported:
            return
        self._reported = tripped
        for callback in tuple(self._callbacks):
            callback(tripped)

    async def _wait_for(self, tripped: bool, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._trip.get() != tripped:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(RCD_POLL_S)
        return True

    async def self_test(self) -> bool:
        if self._trip.get():
            return False  # tripped already: the test cannot show anything
        self._testing = True
        started = time.monotonic()
        try:
            self._test.set(True)
            trips = await self._wait_for(True, RCD_TRIP_TIMEOUT_S)
            trip_ms = round((time.monotonic() - started) * 1000.0, 1)
            self._test.set(False)
            rearms = trips and await self._wait_for(False, RCD_RELEASE_TIMEOUT_S)
        finally:
            self._test.set(False)
            self._testing = False
        event(log, logging.INFO, "rcd_self_test", trips=trips, rearms=rearms, trip_ms=trip_ms)
        self._report(self._trip.get())  # a real trip during the test is news
        return bool(trips and rearms)

    def reset(self) -> bool:
        return not self._trip.get()
