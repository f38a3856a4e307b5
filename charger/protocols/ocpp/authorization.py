"""Whose word counts for an idToken (C01, C09, C12-C16): the local list, the cache, the
CSMS, or the offline rules, in the order and under the variables the spec sets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from charger.protocols.ocpp.auth_cache import AuthCache
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.local_list import LocalList

# asks the CSMS (AuthorizeRequest); None when that failed
AskCsms = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class Authorizer:
    def __init__(self, dm: DeviceModel, local_list: LocalList, cache: AuthCache) -> None:
        self.dm, self.local_list, self.cache = dm, local_list, cache

    async def decide(
        self, token_type: str, id_token: dict[str, Any], ask: AskCsms | None
    ) -> dict[str, Any] | None:
        """The idTokenInfo that decides; `ask` is None while offline; None when nobody
        could say."""
        if token_type == "no_authorization":
            return {"status": "Accepted"}  # Josev API 1.6(4): free charging at once
        dm = self.dm
        online = ask is not None
        remote_disabled = dm.value("AuthCtrlr", "DisableRemoteAuthorization") == "true"
        if remote_disabled:
            ask = None  # E52: the list and the cache decide alone, online or not
        local_first = (
            dm.value("AuthCtrlr", "LocalPreAuthorize") == "true"
            or (online and remote_disabled)
            or (not online and dm.value("AuthCtrlr", "LocalAuthorizeOffline") == "true")
        )
        listed = None
        if dm.value("LocalAuthListCtrlr", "Enabled") == "true":
            listed = self.local_list.lookup(id_token)
        if local_first and listed is not None and listed.get("status") == "Accepted":
            return listed  # C13/C14
        cached = None
        if self.cache_enabled():
            lifetime = float(dm.value("AuthCacheCtrlr", "LifeTime") or 0)
            cached = self.cache.lookup(id_token, lifetime)
        if local_first and cached is not None:
            if cached.get("status") == "Accepted":
                await self.cache.used(id_token)
                return cached  # C12.FR.02: start at once, the CSMS hears it with the tx
            if ask is None or dm.value("AuthCacheCtrlr", "DisablePostAuthorize") == "true":
                return cached  # C12.FR.05 / TC_C_57: no second opinion asked
        if ask is not None:
            info = await ask(id_token)
            if info is not None:
                await self.remember(id_token, info)
            return info
        unknown = listed is None and cached is None
        if unknown and not online and dm.value("AuthCtrlr", "OfflineTxForUnknownId") == "true":
            return {"status": "Accepted"}  # C15: offline, an unknown token may charge
        return listed or cached

    def cache_enabled(self) -> bool:
        return self.dm.value("AuthCacheCtrlr", "Enabled") == "true"

    async def remember(self, id_token: dict[str, Any] | None, info: dict[str, Any]) -> None:
        """C10.FR.04/05: what the CSMS says about a token goes into the cache."""
        if id_token is not None and self.cache_enabled():
            await self.cache.update(id_token, info)

    async def clear_cache(self) -> str:
        """C11: ClearCache's status; Rejected while the cache is disabled."""
        if not self.cache_enabled():
            return "Rejected"
        await self.cache.clear()
        return "Accepted"


def group_of(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The groupIdToken of an idTokenInfo (C09), if any."""
    group = None if info is None else info.get("groupIdToken")
    return group if isinstance(group, dict) else None
