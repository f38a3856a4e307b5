"""sd_notify to a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET:
READY=1, WATCHDOG=1 at half the interval from a task on the loop (so a blocked loop
misses pings), STOPPING=1; nothing at all without NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
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
from tests.support.polling import eventually


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

    def texts(self, after: str | None = None) -> list[str]:
        """What arrived, in order (after the message `after` only, if given)."""
        texts = [text for _, text in self.received]
        if after is None:
            return texts
        return texts[texts.index(after) + 1 :] if after in texts else []

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


async def watchdog_pings_before(systemd: FakeSystemd, notifier: Notifier, mark: str) -> int:
    """The WATCHDOG=1 pings received before `mark`, a datagram sent now on the notifier's
    own socket: the socket keeps their order, so the count is final once the mark is in."""
    assert notifier.notify(f"X_TEST_MARK={mark}")
    await eventually(lambda: f"X_TEST_MARK={mark}" in systemd.texts())
    texts = systemd.texts()
    return texts[: texts.index(f"X_TEST_MARK={mark}")].count("WATCHDOG=1")


async def test_watchdog_pings_at_half_the_interval(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "400000"}
    assert from_environ(env, os.getpid()).watchdog_interval_s == pytest.approx(0.4)
    # A clock of the test's own: each sleep waits until the test lets it end.
    slept: list[float] = []
    sleeping, wake = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        sleeping.set()
        await wake.wait()
        wake.clear()

    notifier = Notifier(systemd.address, watchdog_interval_s=0.4, sleep=sleep)
    task = asyncio.create_task(notifier.run_watchdog())
    try:
        for n in range(1, 4):  # one at once, then one after every half interval
            await asyncio.wait_for(sleeping.wait(), 5)
            sleeping.clear()
            assert slept == [pytest.approx(0.2)] * n
            assert await watchdog_pings_before(systemd, notifier, str(n)) == n
            wake.set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_blocked_loop_misses_its_pings(systemd: FakeSystemd) -> None:
    """The pings come from the loop, not a thread: a loop stuck longer than WatchdogSec
    leaves a gap systemd answers with a restart. Real time is the point here, but nothing
    is timed: the marks before and after the blocking call travel on the notifier's own
    socket, which keeps the order, so "no ping while blocked" is final once both are in,
    however loaded the machine."""
    notifier = Notifier(systemd.address, watchdog_interval_s=0.2)
    task = asyncio.create_task(notifier.run_watchdog())
    try:
        await eventually(lambda: "WATCHDOG=1" in systemd.texts())  # one at once
        assert notifier.notify("X_TEST_MARK=blocking")
        time.sleep(0.6)  # noqa: ASYNC251 - the point: a blocking call, 6 half intervals long
        assert notifier.notify("X_TEST_MARK=unblocked")
        # the loop runs again: a ping after the second mark
        await eventually(lambda: "WATCHDOG=1" in systemd.texts("X_TEST_MARK=unblocked"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    texts = systemd.texts()
    blocked = texts[texts.index("X_TEST_MARK=blocking") + 1 : texts.index("X_TEST_MARK=unblocked")]
    assert blocked == [], f"pinged while the loop was blocked: {blocked}"


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
