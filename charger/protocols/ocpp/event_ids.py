"""NotifyEvent eventIds unique across restarts (a CSMS may key events by station and id).

Ids are handed out from blocks reserved on disk before use: a restart continues after
the last reserved block, so an id is never given twice, at the cost of a gap. One disk
write per `BLOCK` events. If the reservation cannot be written (a full disk), ids go on
in memory from the block in hand and beyond, and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging

from charger.runtime.log import event
from charger.runtime.store import Store

log = logging.getLogger(__name__)

BLOCK = 1000
_KEY = "ocpp_event_id_reserved_until"
MAX_EVENT_ID = 2**31 - 1  # OCPP integers are 32-bit; wrap around before that


class EventIds:
    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._lock = asyncio.Lock()
        self._next = 1
        self._limit = 1  # ids below this are reserved for this run (or given)
        self._loaded = False

    async def next(self) -> int:
        async with self._lock:
            if not self._loaded:
                self._loaded = True
                if self._store is not None:
                    self._next = self._limit = int(await self._store.get(_KEY, 1))
            if self._next >= self._limit:
                await self._reserve()
            value = self._next
            self._next = self._next + 1 if self._next < MAX_EVENT_ID else 1
            return value

    async def _reserve(self) -> None:
        limit = self._next + BLOCK
        if self._store is not None:
            try:
                await self._store.put(_KEY, limit)
            except OSError as exc:  # the disk is full: go on in memory, a restart may repeat
                event(log, logging.ERROR, "ocpp_event_ids_not_reserved", error=str(exc))
        self._limit = limit
