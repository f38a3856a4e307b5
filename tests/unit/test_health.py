"""The health line's loop-stall figure: the worst lateness since the last line."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from charger.runtime.health import LoopStallMeter, report_forever
from charger.runtime.log import _FIELDS
from tests.support.polling import eventually


def test_the_meter_keeps_the_worst_lateness_until_taken() -> None:
    meter = LoopStallMeter()
    for late_s in (0.001, 0.250, 0.004):
        meter.late(late_s)
    assert meter.take() == 0.250
    assert meter.take() == 0.0  # a line reports its own interval only
    meter.late(0.003)
    assert meter.take() == 0.003


def test_a_stall_past_the_warning_is_logged_once_per_new_worst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="charger.runtime.health")
    meter = LoopStallMeter(warning_s=0.1)

    def warned() -> list[float]:
        return [getattr(r, _FIELDS)["stall_ms"] for r in caplog.records]

    meter.late(0.099)  # under the warning
    meter.late(0.150)
    meter.late(0.120)  # past the warning but not this interval's worst
    assert warned() == [150.0]
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.records[0].getMessage() == "loop_stalled"
    meter.take()
    meter.late(0.120)  # a new interval
    assert warned() == [150.0, 120.0]


async def test_a_blocked_loop_shows_as_a_stall_at_least_as_long_as_the_block() -> None:
    meter = LoopStallMeter(period_s=0.01)
    probe = asyncio.create_task(meter.run())
    try:
        await asyncio.sleep(0)  # the probe's timer is set
        meter.take()
        time.sleep(0.2)  # noqa: ASYNC251 - the stall under test
        await asyncio.sleep(0.02)  # the probe wakes, late
        # the timer was due at most one period after the block began
        assert meter.take() >= 0.2 - meter.period_s
    finally:
        probe.cancel()


async def test_the_health_line_carries_the_loop_stall(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="charger.runtime.health")
    reporter = asyncio.create_task(report_forever(tmp_path, 0.05))
    try:
        await eventually(lambda: "loop stall probe" in {t.get_name() for t in asyncio.all_tasks()})
        await asyncio.sleep(0)  # the probe's timer is set
        time.sleep(0.15)  # noqa: ASYNC251 - a stall inside the first interval
        await eventually(lambda: any(r.getMessage() == "health" for r in caplog.records))
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
    first = next(r for r in caplog.records if r.getMessage() == "health")
    fields = getattr(first, _FIELDS)
    assert fields["loop_stall_ms"] >= 150 - 20
    assert fields["fds"] > 0
    assert 0 < fields["anon_mb"] <= fields["rss_mb"]
