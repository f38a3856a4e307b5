"""Network connection profiles (B09, B10, A05): where and how the station reaches a CSMS.

Slot 1 is the profile of the configuration file; the CSMS may write slots 1-3 with
SetNetworkProfile (persisted before the answer, and from then on winning over the file
for that slot). OCPPCommCtrlr.NetworkConfigurationPriority orders the slots to try;
each gets NetworkProfileConnectionAttempts attempts before the next one (B10.FR.03/04).
The slot of the last connection the CSMS accepted is kept too (across reboots): when
every slot of the priority list failed, the station falls back to it (B10.FR.07).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from charger.runtime.store import Store

SLOTS = (1, 2, 3)
_KEY = "network_profiles"
_LAST_SUCCESSFUL = "network_last_successful_slot"


@dataclass(frozen=True)
class NetworkProfile:
    slot: int
    url: str
    security_profile: int
    # which BasicAuthPassword a connection over this profile used (a count of the
    # changes): the CSMS accepted the station with one password; with a new one the
    # station is a stranger again and boots (A01, TC_A_09). Not part of the stored data.
    credentials: int = field(default=0, repr=False)

    def connection_data(self) -> dict[str, Any]:
        return {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": self.url,
            "messageTimeout": 30,
            "securityProfile": self.security_profile,
            "ocppInterface": "Wired0",
        }


class NetworkProfiles:
    def __init__(self, store: Store | None, configured: NetworkProfile) -> None:
        self._store = store
        self._profiles: dict[int, NetworkProfile] = {configured.slot: configured}
        self._stored: dict[str, Any] = {}  # what the CSMS set, as connectionData by slot
        self._last_successful: int | None = None

    async def load(self) -> None:
        if self._store is None:
            return
        last = await self._store.get(_LAST_SUCCESSFUL)
        self._last_successful = last if isinstance(last, int) else None
        saved = await self._store.get(_KEY)
        if isinstance(saved, dict):
            self._stored = dict(saved)
            for slot, data in saved.items():
                self._profiles[int(slot)] = _profile(int(slot), data)

    def get(self, slot: int) -> NetworkProfile | None:
        return self._profiles.get(slot)

    def last_successful(self) -> NetworkProfile | None:
        """The profile of the last connection the CSMS accepted (B10.FR.07's fallback)."""
        return None if self._last_successful is None else self.get(self._last_successful)

    async def succeeded(self, slot: int) -> None:
        """The CSMS accepted the station over this slot."""
        if slot != self._last_successful and self._store is not None:
            await self._store.put(_LAST_SUCCESSFUL, slot)
        self._last_successful = slot

    def ordered(self, priority: str) -> list[NetworkProfile]:
        """The configured profiles in NetworkConfigurationPriority order."""
        slots = [int(s) for s in priority.split(",") if s.strip().isdigit()]
        found = [self._profiles[s] for s in slots if s in self._profiles]
        return found or [self._profiles[min(self._profiles)]]

    def check_priority(self, value: str) -> str | None:
        """Why a NetworkConfigurationPriority value cannot be used, or None."""
        for item in value.split(","):
            if not item.strip().isdigit() or int(item) not in self._profiles:
                return f"slot {item} has no network connection profile"
        return None

    async def set(
        self,
        slot: int,
        data: dict[str, Any],
        *,
        active: NetworkProfile | None,
        minimum_security: int,
        can_connect: Callable[[int], bool],
    ) -> str | None:
        """SetNetworkProfile: None when stored, else why it is Rejected."""
        if slot not in SLOTS:
            return f"configurationSlot {slot} does not exist (slots: 1-{max(SLOTS)})"
        if active is not None and slot == active.slot:
            return f"configurationSlot {slot} is the profile in use"
        if data["ocppVersion"] != "OCPP20" or data["ocppTransport"] != "JSON":
            return "only OCPP 2.0.1 over JSON is supported"
        profile = _profile(slot, data)
        if profile.security_profile < minimum_security:
            return (
                f"security profile {profile.security_profile} is below the active "
                f"{minimum_security} (B09.FR.04)"
            )
        secure = profile.security_profile >= 2
        scheme = "wss://" if secure else "ws://"
        if not profile.url.startswith(scheme):
            return f"security profile {profile.security_profile} needs a {scheme} URL"
        if not can_connect(profile.security_profile):
            return (
                f"security profile {profile.security_profile}: "
                "no CSMS root certificate or client certificate for it"
            )
        stored = {**self._stored, str(slot): data}
        if self._store is not None:  # on disk before the answer
            await self._store.put(_KEY, stored)
        self._stored = stored
        self._profiles[slot] = profile
        return None


def _profile(slot: int, data: dict[str, Any]) -> NetworkProfile:
    return NetworkProfile(slot, str(data["ocppCsmsUrl"]), int(data["securityProfile"]))
