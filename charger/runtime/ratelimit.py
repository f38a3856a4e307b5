"""Budgets over time, sans I/O (the clock is passed in).

`TokenBucket`: at most `rate_per_s` on average, `burst` at once; the MQTT bridge gives
each sender one for the messages it processes. `LogBudget`: at most `per_window`
lines of one kind in each window of `window_s`; the rest are counted, so that a flood of
bad input costs a bounded amount of log and the count still shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        return self._tokens

    def take(self, tokens: float = 1.0) -> bool:
        """Spends `tokens` if there are that many; False (and nothing spent) if not."""
        if self._refill() >= tokens:
            self._tokens -= tokens
            return True
        return False

    def wait_s(self, tokens: float = 1.0) -> float:
        """How long until `tokens` can be taken (0: now)."""
        missing = tokens - self._refill()
        return max(0.0, missing / self.rate_per_s)


class LogBudget:
    """Which occurrences of one kind of event are logged in full: the first
    `per_window` of each window; the others are only counted."""

    def __init__(self, per_window: int, window_s: float, clock: Clock = time.monotonic) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._clock = clock
        self._window_start = clock()
        self._in_window = 0
        self.total = 0  # every occurrence, logged or not
        self.unlogged = 0  # not logged in full since the last `take_unlogged`

    def allow(self) -> bool:
        """Counts one occurrence; True if it is to be logged in full."""
        now = self._clock()
        if now - self._window_start >= self.window_s:
            self._window_start, self._in_window = now, 0
        self.total += 1
        if self._in_window < self.per_window:
            self._in_window += 1
            return True
        self.unlogged += 1
        return False

    def take_unlogged(self) -> int:
        """The occurrences not logged since the last call (for a summary line)."""
        count, self.unlogged = self.unlogged, 0
        return count
