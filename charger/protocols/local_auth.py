"""Built-in authorization authority for stations without a CSMS.

It plays the josev side of `authorization`: free charging accepts everyone (including
`no_authorization` requests), an allow-list accepts the listed tokens. Presenting the
token of a running session again ends it, as Josev does, with `stop_charging`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from charger.bus import api
from charger.bus.api import Message
from charger.bus import Bus, RequestTimeout
from charger.runtime.log import event

log = logging.getLogger(__name__)

TOPIC = "josev/cs"


class LocalAuthorization:
    def __init__(
        self, bus: Bus, *, free: bool, tokens: Iterable[str], request_timeout_s: float
    ) -> None:
        self._bus = bus
        self._free = free
        self._tokens = frozenset(tokens)
        self._timeout_s = request_timeout_s
        self._sessions: dict[str, str] = {}  # evse_id -> token that started its session

    def start(self) -> None:
        self._bus.subscribe("cs/josev", self._on_message, names={"authorization", "cp_status"})

    def decide(self, token: str | None, token_type: str) -> bool:
        if self._free:
            return True
        return token_type != "no_authorization" and token in self._tokens

    def _on_message(self, message: Message) -> None:
        data = message.data
        if message.name == "cp_status":
            if str(data["state"]).startswith("A"):
                self._sessions.pop(data["evse_id"], None)
            return
        if message.type != "request":
            return
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
            self._bus.spawn(self._stop(evse_id), message)
        else:
            self._sessions[evse_id] = token

    async def _stop(self, evse_id: str) -> None:
        stop = api.request("stop_charging", TOPIC, {"evse_id": evse_id})
        try:
            reply = await self._bus.request(stop, self._timeout_s)
        except RequestTimeout:
            return
        event(log, logging.INFO, "stop_by_token", evse_id=evse_id, status=reply.data["status"])
