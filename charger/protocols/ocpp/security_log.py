"""The station's security log (A04): every security event of OCPP 2.0.1 Part 2
Appendix "Security events" is kept here, on disk; the critical ones, and those whose use
case asks for one, also go to the CSMS as a SecurityEventNotification (the caller queues
it when `notified` says so)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from charger.runtime.log import event
from charger.runtime.store import Store, StoreError

log = logging.getLogger(__name__)

_KEY = "ocpp_security_log"
MAX_ENTRIES = 1000  # the oldest go first

# Part 2 Appendix "Security events", Critical: No. These stay in the log, except those
# whose use case and OCA cases ask for the notification (REQUESTED): the TLS failures
# (A00, TC_A_05/A_06) and the firmware's signature checks (L01)
NOT_CRITICAL = frozenset(
    {
        "FailedToAuthenticateAtCsms",
        "CsmsFailedToAuthenticate",
        "ReconfigurationOfSecurityParameters",
        "InvalidMessages",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
    }
)
REQUESTED = frozenset(
    {
        "InvalidCsmsCertificate",
        "InvalidTLSVersion",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
    }
)


def notified(kind: str) -> bool:
    """Whether the CSMS hears of this event (a SecurityEventNotification): the critical
    ones (StartupOfTheDevice, ResetOrReboot, FirmwareUpdated, ...), the requested ones
    and the firmware's own types; ReconfigurationOfSecurityParameters stays in the log."""
    return kind not in NOT_CRITICAL or kind in REQUESTED


class SecurityLog:
    def __init__(self, store: Store | None) -> None:
        """`store`: the durable state; None keeps the log in memory (tests)."""
        self._store = store
        self._entries: list[dict[str, Any]] | None = None if store is not None else []
        self._lock = asyncio.Lock()  # one write at a time: the last holds every entry

    async def entries(self) -> list[dict[str, Any]]:
        if self._entries is None:
            assert self._store is not None
            saved = await self._store.get(_KEY, [])
            self._entries = list(saved) if isinstance(saved, list) else []
        return list(self._entries)

    async def record(self, kind: str, timestamp: str, tech_info: str = "") -> None:
        """Keeps one event (committed before it returns, when there is a store); a disk
        that cannot take it is logged, not raised: the operation goes on."""
        entry: dict[str, Any] = {"type": kind, "timestamp": timestamp}
        if tech_info:
            entry["techInfo"] = tech_info[:255]
        event(log, logging.INFO, "ocpp_security_log", type=kind, info=tech_info[:255])
        async with self._lock:
            entries = (await self.entries() + [entry])[-MAX_ENTRIES:]
            self._entries = entries
            if self._store is None:
                return
            try:
                await self._store.put(_KEY, entries)
            except StoreError as exc:
                event(log, logging.ERROR, "ocpp_security_log_not_stored", type=kind, error=str(exc))
