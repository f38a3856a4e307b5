"""sd_notify to a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET:
READY=1, WATCHDOG=1 at half the interval from a task on the loop (so a blocked loop
misses pings), STOPPING=1; nothing at all without NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charger.runtime.systemd import Notifier, from_environ


class FakeSystemd:
    """A bound datagram socket; a thread stamps each message with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def messages(self, timeout_s: float = 2.0, count: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [text for _, text in self.received]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    # A short directory of its own: AF_UNIX paths are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="sdn") as folder:
        fake = FakeSystemd(str(Path(folder) / "notify"))
        yield fake
        fake.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = from_environ({}, os.getpid())
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert not notifier.stopping()
    asyncio.run(asyncio.wait_for(notifier.run_watchdog(), 1.0))  # returns at once


def test_ready_and_stopping_reach_the_socket(systemd: FakeSystemd) -> None:
    notifier = from_environ({"NOTIFY_SOCKET": systemd.address}, os.getpid())
    assert notifier.ready("charging station ready")
    assert notifier.stopping()
    notifier.close()
    assert systemd.messages(count=2) == [
        "READY=1\nSTATUS=charging station ready",
        "STOPPING=1",
    ]


def test_abstract_namespace_socket() -> None:
    name = f"@charger-test-{os.getpid()}-{time.monotonic_ns()}"
    fake = FakeSystemd(name)
    try:
        assert Notifier(name).ready()
        assert fake.messages() == ["READY=1"]
    finally:
        fake.close()


async def test_watchdog_pings_at_half_the_interval(systemd: FakeSystemd) -> None:
    notifier = from_environ(
        {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "400000"}, os.getpid()
    )
    assert notifier.watchdog_interval_s == pytest.approx(0.4)
    task = asyncio.create_task(notifier.run_watchdog())
    await asyncio.sleep(0.9)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stamps = [t for t, text in systemd.received if text == "WATCHDOG=1"]
    # One at once, then one every 0.2 s: never sooner (a load spike may make it later,
    # which is what WatchdogSec's other half is for).
    assert 2 <= len(stamps) <= 6, stamps
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.18 for gap in gaps), gaps


async def test_a_blocked_loop_misses_its_pings(systemd: FakeSystemd) -> None:
    """The pings come from the loop, not a thread: a loop stuck longer than WatchdogSec
    leaves a gap systemd answers with a restart."""
    notifier = Notifier(systemd.address, watchdog_interval_s=0.2)
    task = asyncio.create_task(notifier.run_watchdog())
    await asyncio.sleep(0.25)
    time.sleep(0.6)  # noqa: ASYNC251 - the point: a blocking call, longer than the interval
    await asyncio.sleep(0.25)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stamps = [t for t, text in systemd.received if text == "WATCHDOG=1"]
    longest = max(b - a for a, b in itertools.pairwise(stamps))
    assert longest >= 0.6, f"no ping was missed: longest gap {longest:.2f} s"


def test_watchdog_meant_for_another_process_is_ignored(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "30000000"}
    assert from_environ(env, 1234).watchdog_interval_s == 30.0
    assert from_environ({**env, "WATCHDOG_PID": "1234"}, 1234).watchdog_interval_s == 30.0
    assert from_environ({**env, "WATCHDOG_PID": "99"}, 1234).watchdog_interval_s is None
    assert from_environ({**env, "WATCHDOG_USEC": "soon"}, 1234).watchdog_interval_s is None
    assert from_environ({**env, "WATCHDOG_USEC": "0"}, 1234).watchdog_interval_s is None
    # A watchdog without a socket to ping is no watchdog.
    assert from_environ({"WATCHDOG_USEC": "30000000"}, 1234).watchdog_interval_s is None


def test_a_vanished_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    with caplog.at_level(logging.WARNING):
        assert not notifier.ready()
        assert not notifier.watchdog()
    assert [r.getMessage() for r in caplog.records] == ["sd_notify_failed"]
