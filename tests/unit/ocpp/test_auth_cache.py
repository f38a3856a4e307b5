"""Authorization cache: expiry, LifeTime, LRU eviction, persistence (C10, C11)."""

from __future__ import annotations

from pathlib import Path

from charger.protocols.ocpp.auth_cache import AuthCache
from charger.runtime.store import Store

ALICE = {"idToken": "A11CE0A1", "type": "ISO14443"}
BOB = {"idToken": "B0B0B0B0", "type": "ISO14443"}
CAROL = {"idToken": "CA201000", "type": "ISO14443"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_entry_unused_for_the_lifetime_is_dropped() -> None:
    clock = Clock()
    cache = AuthCache(None, clock=clock)
    await cache.update(ALICE, {"status": "Accepted"})
    clock.now += 3600
    assert cache.lookup(ALICE, lifetime_s=3601) == {"status": "Accepted"}
    await cache.used(ALICE)  # authorizing from the cache is use
    clock.now += 3600
    assert cache.lookup(ALICE, lifetime_s=3601) == {"status": "Accepted"}
    clock.now += 3602
    assert cache.lookup(ALICE, lifetime_s=3601) is None
    assert len(cache) == 0


async def test_an_entry_past_its_cache_expiry_reads_as_expired() -> None:
    clock = Clock()  # 2027-01-15T08:00:00Z
    cache = AuthCache(None, clock=clock)
    info = {"status": "Accepted", "cacheExpiryDateTime": "2027-01-15T09:00:00Z"}
    await cache.update(ALICE, info)
    assert cache.lookup(ALICE, 0) == info
    clock.now += 2 * 3600
    assert cache.lookup(ALICE, 0) == {**info, "status": "Expired"}


async def test_the_least_recently_used_entry_makes_room() -> None:
    clock = Clock()
    cache = AuthCache(None, capacity=2, clock=clock)
    await cache.update(ALICE, {"status": "Accepted"})
    clock.now += 1
    await cache.update(BOB, {"status": "Blocked"})
    clock.now += 1
    await cache.used(ALICE)
    clock.now += 1
    await cache.update(CAROL, {"status": "Accepted"})
    assert cache.lookup(BOB, 0) is None
    assert cache.lookup(ALICE, 0) == {"status": "Accepted"}
    assert cache.lookup(CAROL, 0) == {"status": "Accepted"}


async def test_the_cache_survives_a_restart_and_clear_empties_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache.db")
    first = AuthCache(store)
    await first.update(ALICE, {"status": "Accepted", "groupIdToken": BOB})
    again = AuthCache(Store(tmp_path / "cache.db"))
    await again.load()
    assert again.lookup(ALICE, 0) == {"status": "Accepted", "groupIdToken": BOB}
    await again.clear()
    reloaded = AuthCache(Store(tmp_path / "cache.db"))
    await reloaded.load()
    assert len(reloaded) == 0
