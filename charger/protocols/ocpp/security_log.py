"""The station's security log (A04): every security event of OCPP 2.0.1 Part 2
Appendix "Security events" is kept here, on disk; the critical ones, and those whose use
case asks for one, also go to the CSMS as a SecurityEventNotification (the caller queues
it when `notified` says so).

On disk each event is one key, `ocpp_security_log/<slot>`, the slot its sequence number
modulo MAX_ENTRIES (the number is in the value): recording an event writes that one entry,
over the oldest once the log is full, never the whole log. Builds before this kept the
whole log as one list under `ocpp_security_log`; a station upgraded from one still shows
those entries, before the new ones, until the new ones fill the log and the list is
emptied."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from charger.runtime.log import event
from charger.runtime.store import Store, StoreError

log = logging.getLogger(__name__)

_PREFIX = "ocpp_security_log/"
_LEGACY_KEY = "ocpp_security_log"  # earlier builds: the whole log, one list
MAX_ENTRIES = 1000  # the oldest go first

# Part 2 Appendix "Security events", Critical: No; these stay in the log
LOG_ONLY = frozenset(
    {
        "FailedToAuthenticateAtCsms",
        "CsmsFailedToAuthenticate",
        "ReconfigurationOfSecurityParameters",
        "InvalidMessages",
        "InvalidChargingStationCertificate",
        "InvalidTLSCipherSuite",
    }
)
# Critical: No as well, but their use case and OCA cases ask for the notification: the
# TLS failures (A00, TC_A_05/A_06) and the firmware's signature checks (L01)
REQUESTED = frozenset(
    {
        "InvalidCsmsCertificate",
        "InvalidTLSVersion",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
    }
)
NOT_CRITICAL = LOG_ONLY | REQUESTED


def notified(kind: str) -> bool:
    """Whether the CSMS hears of this event (a SecurityEventNotification): every kind but
    the log-only ones, so the critical ones (StartupOfTheDevice, ResetOrReboot,
    FirmwareUpdated, ...), the requested ones and the firmware's own types."""
    return kind not in LOG_ONLY


def _slot(seq: int) -> str:
    return f"{_PREFIX}{seq % MAX_ENTRIES:04d}"


class SecurityLog:
    def __init__(self, store: Store | None) -> None:
        """`store`: the durable state; None keeps the log in memory (tests)."""
        self._store = store
        self._entries: deque[dict[str, Any]] | None = None  # read from the store once
        self._next = 0  # the sequence number of the next event
        self._legacy = False  # the earlier builds' list is on disk, not yet emptied
        self._lock = asyncio.Lock()  # one event at a time: the sequence numbers

    async def entries(self) -> list[dict[str, Any]]:
        """The events kept, oldest first."""
        return list(await self._loaded())

    async def _loaded(self) -> deque[dict[str, Any]]:
        if self._entries is not None:
            return self._entries
        entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        if self._store is not None:
            saved = [
                value
                for value in (await self._store.items(_PREFIX)).values()
                if isinstance(value, dict) and isinstance(value.get("seq"), int)
            ]
            saved.sort(key=lambda value: int(value["seq"]))
            legacy = await self._store.get(_LEGACY_KEY, [])
            if isinstance(legacy, list) and legacy:
                self._legacy = True
                if len(saved) < MAX_ENTRIES:
                    entries.extend(legacy[-(MAX_ENTRIES - len(saved)) :])
            entries.extend({k: v for k, v in value.items() if k != "seq"} for value in saved)
            self._next = int(saved[-1]["seq"]) + 1 if saved else 0
        self._entries = entries
        return entries

    async def record(self, kind: str, timestamp: str, tech_info: str = "") -> None:
        """Keeps one event (committed before it returns, when there is a store); a disk
        that cannot take it is logged, not raised: the operation goes on."""
        entry: dict[str, Any] = {"type": kind, "timestamp": timestamp}
        if tech_info:
            entry["techInfo"] = tech_info[:255]
        event(log, logging.INFO, "ocpp_security_log", type=kind, info=tech_info[:255])
        async with self._lock:
            (await self._loaded()).append(entry)
            seq, self._next = self._next, self._next + 1
            if self._store is None:
                return
            try:
                await self._store.put(_slot(seq), {"seq": seq, **entry})
                if self._legacy and self._next >= MAX_ENTRIES:  # shows none of it now
                    await self._store.put(_LEGACY_KEY, [])
                    self._legacy = False
            except StoreError as exc:
                event(log, logging.ERROR, "ocpp_security_log_not_stored", type=kind, error=str(exc))
