"""sd_notify(3): tells systemd that the charger is ready, alive, and stopping.

The unit is `Type=notify` with `WatchdogSec=`: `ready()` once start-up is done,
`run_watchdog()` as a task on the event loop pinging `WATCHDOG=1` at half the interval
systemd gave (so a loop blocked for longer than that misses pings and systemd restarts
the process), `stopping()` at shutdown. Without `NOTIFY_SOCKET` (not started by systemd,
tests, a dev PC) every call is a no-op.

The protocol is one datagram of `KEY=value` lines on the AF_UNIX socket that
`NOTIFY_SOCKET` names, so this is a few lines of socket code rather than the `sdnotify`
package: that one is unmaintained, untyped, silently swallows every error, and would be
one more runtime dependency (and Yocto recipe) for what fits here.

Like everything below the app, this module reads no environment variable itself: the app
hands `from_environ` its environment and pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping

from charger.runtime.log import event

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to `address` (None: do nothing). `watchdog_interval_s`
    is the service's WatchdogSec (None: no watchdog); `sleep` waits between pings (tests
    give it a clock of their own)."""

    def __init__(
        self,
        address: str | None,
        watchdog_interval_s: float | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # "@name" is a socket in the abstract namespace: a leading NUL byte on the wire.
        self._address = "\0" + address[1:] if address and address[0] == "@" else address
        self.watchdog_interval_s = watchdog_interval_s if address else None
        self._socket: socket.socket | None = None
        self._failed = False
        self._sleep = sleep

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *assignments: str) -> bool:
        """Sends `KEY=value` lines as one datagram; False (logged once) if it could not
        be sent. Never blocks and never raises: a full or vanished socket is systemd's
        business, and a watchdog that stops pinging gets the process restarted."""
        if not self._address:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                event(log, logging.WARNING, "sd_notify_failed", error=str(exc))
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    async def run_watchdog(self) -> None:
        """Pings `WATCHDOG=1` every half interval for as long as the loop runs it; returns
        at once when there is no watchdog."""
        if self.watchdog_interval_s is None:
            return
        while True:
            self.watchdog()
            await self._sleep(self.watchdog_interval_s / 2)

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None


def from_environ(environ: Mapping[str, str], pid: int) -> Notifier:
    """The notifier systemd asked for in `environ` (`NOTIFY_SOCKET`, and `WATCHDOG_USEC`
    unless `WATCHDOG_PID` names another process), for the process `pid`."""
    address = environ.get("NOTIFY_SOCKET") or None
    interval_s: float | None = None
    watchdog_pid = environ.get("WATCHDOG_PID", "")
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        if usec > 0 and (not watchdog_pid or int(watchdog_pid) == pid):
            interval_s = usec / 1_000_000
    except ValueError:
        interval_s = None
    return Notifier(address, interval_s)
