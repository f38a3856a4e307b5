"""The authorization cache (C10-C12): what the CSMS last said about each idToken.

Filled from AuthorizeResponse and TransactionEventResponse idTokenInfo (C10.FR.04/05),
kept on disk (C10.FR.02), consulted before asking the CSMS when LocalPreAuthorize is set
and when offline (C12). An entry past its cacheExpiryDateTime reads as Expired
(C10.FR.06); one not used for AuthCacheCtrlr.LifeTime is dropped (C10.FR.08); when full,
the least recently used entry makes room (AuthCacheCtrlr.Policy LRU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from charger.protocols.ocpp.local_list import token_key
from charger.runtime.store import Store

_KEY = "auth_cache"
CAPACITY = 1000  # entries; a wallbox sees far fewer distinct tokens


class AuthCache:
    def __init__(
        self,
        store: Store | None,
        *,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._capacity = capacity
        self._clock = clock
        # token key -> {"info": idTokenInfo, "used": wall-clock seconds of last use}
        self._entries: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        if self._store is None:
            return
        saved = await self._store.get(_KEY)
        if isinstance(saved, dict):
            self._entries = {k: v for k, v in saved.items() if isinstance(v, dict)}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, id_token: dict[str, Any], lifetime_s: float) -> dict[str, Any] | None:
        """The cached idTokenInfo (status Expired once its expiry passed), or None."""
        key = token_key(id_token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if lifetime_s > 0 and self._clock() - float(entry["used"]) > lifetime_s:
            del self._entries[key]  # on disk with the next write
            return None
        info = dict(entry["info"])
        expiry = info.get("cacheExpiryDateTime")
        if expiry and _parse(expiry) < datetime.fromtimestamp(self._clock(), UTC):
            info["status"] = "Expired"
        return info

    async def used(self, id_token: dict[str, Any]) -> None:
        """An authorization from the cache counts as use for LifeTime and LRU."""
        entry = self._entries.get(token_key(id_token))
        if entry is not None:
            entry["used"] = self._clock()
            await self._save()

    async def update(self, id_token: dict[str, Any], info: dict[str, Any]) -> None:
        key = token_key(id_token)
        self._entries.pop(key, None)
        self._entries[key] = {"info": dict(info), "used": self._clock()}
        while len(self._entries) > self._capacity:
            oldest = min(self._entries, key=lambda k: float(self._entries[k]["used"]))
            del self._entries[oldest]
        await self._save()

    async def clear(self) -> None:
        self._entries = {}
        await self._save()

    async def _save(self) -> None:
        if self._store is not None:
            await self._store.put(_KEY, self._entries)


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
