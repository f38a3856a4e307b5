"""The local authorization list (D01, D02): kept on disk, consulted when offline (C13)
or before asking the CSMS when LocalPreAuthorize is set (C14)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from charger.runtime.store import Store

_KEY = "local_list"


def token_key(id_token: dict[str, Any]) -> str:
    return f"{id_token['type']}:{id_token['idToken']}"


class LocalList:
    def __init__(self, store: Store | None) -> None:
        self._store = store
        self.version = 0
        self._entries: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        if self._store is None:
            return
        saved = await self._store.get(_KEY)
        if isinstance(saved, dict):
            self.version = int(saved["version"])
            self._entries = dict(saved["entries"])

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, id_token: dict[str, Any]) -> dict[str, Any] | None:
        """The entry's idTokenInfo if the token is listed and its entry has not expired."""
        info = self._entries.get(token_key(id_token))
        if info is None:
            return None
        expiry = info.get("cacheExpiryDateTime")
        if expiry and datetime.fromisoformat(expiry.replace("Z", "+00:00")) < datetime.now(UTC):
            return None
        return info

    async def send(self, payload: dict[str, Any]) -> str:
        """SendLocalList: Accepted, Failed or VersionMismatch; on disk before the answer."""
        version, full = int(payload["versionNumber"]), payload["updateType"] == "Full"
        if not full and version <= self.version:
            return "VersionMismatch"
        entries = {} if full else dict(self._entries)
        for item in payload.get("localAuthorizationList", []):
            key = token_key(item["idToken"])
            if "idTokenInfo" in item:
                entries[key] = item["idTokenInfo"]
            elif full:
                return "Failed"  # a full list needs the info of every entry
            else:
                entries.pop(key, None)  # differential without info: remove
        if self._store is not None:
            await self._store.put(_KEY, {"version": version, "entries": entries})
        self.version, self._entries = version, entries
        return "Accepted"
