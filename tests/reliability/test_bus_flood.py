"""A flood on the bus (docs/reliability.md, "A flood on the bus").

Each test runs `charger sim` with the broker it spawns (per-role logins, the production
limits), floods josev/cs from another process at 10 000 messages a second for 2.5 s
(`rig.flood`, role `josev`) and checks an outcome, not a speed: memory stays bounded,
a request sent as the flood ends is answered, every request that acts is answered,
every dropped request is counted in the log, the simulator's commands still work,
no contactor update is lost, and an invalid flood costs a bounded amount of log.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest

from rig.processes import Charger
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

RATE = 10_000
SECONDS = 2.5
RSS_MARGIN_MB = 30.0  # measured: about 4 MB; before the fix, tens of MB per second
LOG_MARGIN_BYTES = 64 * 1024  # measured: about 4 KB; before the fix, megabytes


def pressure_lines(log: str, sender: str = "josev") -> list[dict[str, str]]:
    """The `mqtt_bus_pressure` summaries of `sender` in the charger's log."""
    return [
        dict(re.findall(r"(\w+)=(\S+)", line))
        for line in log.splitlines()
        if " mqtt_bus_pressure " in line and f"sender={sender} " in line
    ]


def total(lines: list[dict[str, str]], field: str) -> int:
    return sum(int(line[field]) for line in lines)


async def test_memory_stays_bounded_during_and_after_a_flood(
    start_flood: Any, charger_rss: Callable[[], float]
) -> None:
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS, warmup_s=1.0)
    before = peak = charger_rss()
    ended = asyncio.create_task(flood.ended())
    while not ended.done():
        peak = max(peak, charger_rss())
        await asyncio.sleep(0.05)
    await ended
    result = await flood.result()  # 2 s of settling: memory must not keep growing
    peak = max(peak, charger_rss())
    assert result["sent"] == int(RATE * SECONDS)
    assert peak - before < RSS_MARGIN_MB, f"RSS grew from {before:.1f} MB to {peak:.1f} MB"


async def test_a_flood_of_simulator_commands_stays_bounded(
    start_flood: Any, charger_rss: Callable[[], float], sim: Any
) -> None:
    # the simulator's own connection (aiomqtt) keeps the newest 100 unread commands
    flood = await start_flood(
        "sim",
        rate=RATE,
        seconds=SECONDS,
        warmup_s=1.0,
        role="simctl",
        topic="sim/cmd",
        answers_topic="sim/reply",
        settle_s=0.5,
    )
    before = peak = charger_rss()
    ended = asyncio.create_task(flood.ended())
    while not ended.done():
        peak = max(peak, charger_rss())
        await asyncio.sleep(0.05)
    await ended
    await flood.result()
    peak = max(peak, charger_rss())
    assert peak - before < RSS_MARGIN_MB, f"RSS grew from {before:.1f} MB to {peak:.1f} MB"

    async def answers() -> bool:  # the broker drops what its client queue cannot hold
        try:
            await sim("state", timeout_s=1.0)
        except TimeoutError:
            return False
        return True

    await eventually(answers, timeout_s=20)


async def test_a_request_sent_as_a_flood_ends_is_answered(start_flood: Any) -> None:
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS, settle_s=2.0)
    await flood.ended()
    result = await flood.result()
    # rig.flood sends one request right after the flood's last message and waits 2 s
    # (the target is 100 ms: bench/bus_flood.py measures it)
    assert result["recovery_ms"] is not None, "no answer within 2 s of the flood's end"


async def test_every_request_that_acts_is_answered_during_a_flood(start_flood: Any) -> None:
    # every 50th message of the flood is a cp_pwm request: never dropped, always answered
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS, settle_s=3.0, keep_every=50)
    await flood.ended()
    result = await flood.result()
    assert result["kept_sent"] == int(RATE * SECONDS) // 50
    assert result["kept_answered"] == result["kept_sent"]


async def test_every_unanswered_request_is_counted_in_the_log(
    start_flood: Any, charger: Charger
) -> None:
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS, settle_s=2.0)
    await flood.ended()
    result = await flood.result()
    assert result["unanswered"] > 0  # the flood asks more than a sender's budget
    charger.wait_log(" mqtt_bus_pressure ", timeout_s=5)
    lines = pressure_lines(charger.log())
    dropped = total(lines, "dropped")
    # what the charger dropped is what went unanswered; the broker may drop a few more
    # (per-client queue) if the machine stalls the charger, never fewer
    assert dropped <= result["unanswered"] <= dropped + result["requests"] // 100, (
        f"{result['unanswered']} requests unanswered, {dropped} drops logged: {lines}"
    )
    assert "mqtt_message_dropped sender=josev" in charger.log()


async def test_an_unplug_sent_during_a_flood_is_applied(
    start_flood: Any, sim: Any, charger: Charger
) -> None:
    await sim("plug_in")
    await wait_state(sim, lambda s: s["contactor_closed"])  # charging
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS)
    ended = asyncio.create_task(flood.ended())
    # the unplug goes in once the flood overfills the charger (it drops josev's requests),
    # not after a fixed time; that is within tens of ms of the flood's start, which leaves
    # about 2 s for the unplug to take effect before the flood ends (docs/reliability.md:
    # a bridge that injected its whole backlog in one loop turn applied it only after).
    await eventually(lambda: ended.done() or "mqtt_message_dropped sender=josev " in charger.log())
    assert not ended.done(), "the flood never overfilled the charger (nothing dropped)"
    reply = await sim("unplug")
    assert reply["state"]["ev"]["plugged"] is False
    await wait_state(sim, lambda s: not s["contactor_closed"])
    assert not ended.done(), "the unplug took effect only after the flood"
    await ended
    result = await flood.result()
    states = [w["data"]["state"] for w in result["watched"] if w["name"] == "cp_status"]
    assert states[-1].startswith("A"), states


async def test_no_contactor_update_is_lost_during_a_flood(start_flood: Any, sim: Any) -> None:
    flood = await start_flood("valid", rate=RATE, seconds=SECONDS)
    ended = asyncio.create_task(flood.ended())
    cycles = 0
    while not ended.done() and cycles < 20:
        await sim("plug_in")
        await wait_state(sim, lambda s: s["contactor_closed"])
        await sim("unplug")
        await wait_state(sim, lambda s: not s["contactor_closed"])
        cycles += 1
    await ended
    result = await flood.result()
    assert cycles >= 2
    statuses = [
        w["data"]["status"] for w in result["watched"] if w["name"] == "cs_contactor_status"
    ]
    assert statuses == ["closed", "opened"] * cycles
    states = [w["data"]["state"] for w in result["watched"] if w["name"] == "cp_status"]
    # each unplug once; a state repeated (the CS re-sends the current one with every
    # cs_parameters answer, and the flood asks for those) is not a new transition
    unplugs = [b for a, b in itertools.pairwise(["?", *states]) if b[0] == "A" != a[0]]
    assert len(unplugs) == cycles, states


async def test_an_invalid_flood_logs_a_bounded_amount_with_counts(
    start_flood: Any, charger: Charger
) -> None:
    size_before = charger.log_path.stat().st_size
    flood = await start_flood("invalid", rate=RATE, seconds=SECONDS)
    await flood.ended()
    result = await flood.result()
    assert result["error_replies"] > 0  # the invalid requests were answered as such
    charger.wait_log(" mqtt_bus_pressure ", timeout_s=5)
    written = charger.log_path.stat().st_size - size_before
    assert written < LOG_MARGIN_BYTES, f"{written} bytes of log for one flood"
    lines = pressure_lines(charger.log())
    # every invalid message is counted: 3 of 4 are rejected outright, and the fourth
    # (cp_pwm with a bad field) too, before its error response
    assert total(lines, "rejected") >= result["sent"] * 0.99, lines
    assert total(lines, "rejected_not_logged") > 0


async def wait_state(sim: Any, check: Callable[[dict[str, Any]], bool]) -> None:
    async def holds() -> bool:
        return check((await sim("state"))["state"])

    await eventually(holds)
