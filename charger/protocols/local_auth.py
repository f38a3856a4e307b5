"""Built-in authorization authority for stations without a CSMS.

It plays the josev side of `authorization`: free charging accepts everyone (including
`no_authorization` requests), an allow-list accepts the listed tokens. Presenting the
token of a running session again ends it, as Josev does, with `stop_charging`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from charger.bus import Bus, RequestTimeout, messages
from charger.bus.api import Message
from charger.bus.messages import Topic
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)


class LocalAuthorization:
    def __init__(self, bus: Bus, *, free: bool, tokens: Iterable[str]) -> None:
        self._bus = bus
        self._free = free
        self._tokens = frozenset(tokens)
        self._tasks = TaskOwner("local authorization")
        self._sessions: dict[str, str] = {}  # evse_id -> token that started its session

    def start(self) -> None:
        bus, tasks = self._bus, self._tasks
        bus.subscribe(messages.CP_STATUS_UPDATE, self._on_cp_status, owner=tasks)
        bus.subscribe(
            messages.AUTHORIZATION_REQUEST,
            self._on_authorization,
            owner=tasks,
            topic=Topic.CS_JOSEV,
        )

    async def close(self) -> None:
        await self._tasks.close()

    def decide(self, token: str | None, token_type: str) -> bool:
        if self._free:
            return True
        return token_type != "no_authorization" and token in self._tokens

    def _on_cp_status(self, message: Message[messages.CpStatusUpdate]) -> None:
        if message.data["state"].startswith("A"):
            self._sessions.pop(message.data["evse_id"], None)

    def _on_authorization(self, message: Message[messages.AuthorizationRequest]) -> None:
        data = message.data
        token, evse_id = data.get("id_token"), data.get("evse_id")
        accepted = self.decide(token, data["token_type"])
        event(
            log,
            logging.INFO,
            "local_authorization",
            evse_id=evse_id,
            token_type=data["token_type"],
            accepted=accepted,
        )
        self._bus.publish(message.reply({"status": "accepted" if accepted else "rejected"}))
        if not accepted or evse_id is None or token is None:
            return
        if self._sessions.get(evse_id) == token:
            del self._sessions[evse_id]
            self._tasks.spawn(self._stop(evse_id), "stop by token")
        else:
            self._sessions[evse_id] = token

    async def _stop(self, evse_id: str) -> None:
        stop = messages.STOP_CHARGING_REQUEST.make({"evse_id": evse_id})
        try:
            reply = await self._bus.request(stop)
        except RequestTimeout:
            return
        event(log, logging.INFO, "stop_by_token", evse_id=evse_id, status=reply.data["status"])
