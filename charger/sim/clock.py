"""The clock the simulated car's own waits run on (its EVCC's pause between attempts).

The loop's monotonic clock by default; a test swaps in a virtual one
(`SimEvse.clock`) to see the car's retries and their spacing without waiting them out.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class SimClock(Protocol):
    def now(self) -> float:
        """Seconds, monotonic."""

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The running event loop's clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
