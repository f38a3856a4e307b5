"""The device model over OCPP (B05-B08): GetVariables, SetVariables, GetBaseReport and
GetReport with their NotifyReport pages, and the ItemsPerMessage limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.rpc import RpcError
from charger.protocols.ocpp.session import Session
from charger.runtime.tasks import TaskOwner


class VariablesService:
    def __init__(
        self,
        dm: DeviceModel,
        timestamp: Callable[[], str],
        session: Callable[[], Session | None],
        changed: Callable[[], None],
        tasks: TaskOwner,
        *,
        security_changed: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """`session`: the current one, if any; `changed` runs after every SetVariables;
        `security_changed`: awaited, before the answer, for each SecurityCtrlr variable a
        SetVariables changed ("SecurityCtrlr.BasicAuthPassword")."""
        self.dm = dm
        self._security_changed = security_changed
        self._tasks = tasks
        self._timestamp = timestamp
        self._session = session
        self._changed = changed

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        return {
            "GetVariables": self.get_variables,
            "SetVariables": self.set_variables,
            "GetBaseReport": self.get_base_report,
            "GetReport": self.get_report,
        }

    def check_items(self, count: int, kind: str | None) -> None:
        """kind: the DeviceDataCtrlr instance, or None for the local list's own limit."""
        limit = (
            self.dm.integer("LocalAuthListCtrlr", "ItemsPerMessage")
            if kind is None
            else self.dm.integer("DeviceDataCtrlr", "ItemsPerMessage", kind)
        )
        if count > limit:
            raise RpcError(
                "OccurrenceConstraintViolation",
                f"{count} items in one {kind or 'SendLocalList'} request, "
                f"ItemsPerMessage is {limit}",
            )

    async def get_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.check_items(len(payload["getVariableData"]), "GetVariables")
        return {"getVariableResult": [self.dm.get(item) for item in payload["getVariableData"]]}

    async def set_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.check_items(len(payload["setVariableData"]), "SetVariables")
        items = payload["setVariableData"]
        results = [await self.dm.set(item) for item in items]
        # logged before the change takes effect (a new BasicAuthPassword closes the
        # connection once the answer is out)
        for item, result in zip(items, results, strict=True):
            if (
                self._security_changed is not None
                and item["component"]["name"] == "SecurityCtrlr"
                and result["attributeStatus"] in ("Accepted", "RebootRequired")
            ):
                await self._security_changed(f"SecurityCtrlr.{item['variable']['name']}")
        self._changed()
        return {"setVariableResult": results}

    async def get_base_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B07/B08: answers at once, then sends the report in NotifyReport pages."""
        if payload["reportBase"] not in ("ConfigurationInventory", "FullInventory"):
            return {"status": "NotSupported"}
        session = self._session()
        if session is not None:
            entries = self.dm.report(payload["reportBase"])
            self._tasks.spawn(
                self._notify_report(session, payload["requestId"], entries), "ocpp report"
            )
        return {"status": "Accepted"}

    async def get_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B08: the variables matching componentCriteria and/or componentVariable."""
        wanted = payload.get("componentVariable", [])
        self.check_items(len(wanted), "GetReport")
        entries = self.dm.custom_report(payload.get("componentCriteria", []), wanted)
        if not entries:
            return {"status": "EmptyResultSet"}
        session = self._session()
        if session is not None:
            self._tasks.spawn(
                self._notify_report(session, payload["requestId"], entries), "ocpp report"
            )
        return {"status": "Accepted"}

    async def _notify_report(
        self, session: Session, request_id: int, entries: list[dict[str, Any]]
    ) -> None:
        size = self.dm.integer("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
        pages = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        generated = self._timestamp()
        for seq, page in enumerate(pages):
            message: dict[str, Any] = {
                "requestId": request_id,
                "generatedAt": generated,
                "seqNo": seq,
                "tbc": seq < len(pages) - 1,
            }
            if page:
                message["reportData"] = page
            await session.call_quietly("NotifyReport", message)
