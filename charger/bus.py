"""In-process publish/subscribe of Josev API messages, with request/response correlation.

Subscriptions use MQTT topic filters (``josev/cs``, ``+/cs``, ``#``). Delivery is FIFO and
synchronous: `publish` runs every matching handler before it returns (a handler that
publishes queues behind the message being delivered), so a state change reaches every
listener within the same loop iteration and in the order it happened. Handlers that need
to await return a coroutine; the bus runs it as a tracked task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from charger import api
from charger.api import Message
from charger.log import event
from charger.tasks import spawn

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[None] | None]


class RequestTimeout(TimeoutError):
    pass


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic-filter matching with the `+` and `#` wildcards."""
    parts, levels = pattern.split("/"), topic.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(parts) == len(levels)


@dataclass(slots=True)
class _Subscription:
    pattern: str
    handler: Handler
    names: frozenset[str] | None


class Bus:
    def __init__(self, *, validate_outgoing: bool = False) -> None:
        # Tests turn validation of locally made messages on; in production only what
        # arrives from MQTT is validated (by the bridge), keeping the hot path lean.
        self._validate_outgoing = validate_outgoing
        self._subscriptions: list[_Subscription] = []
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._queue: deque[Message] = deque()
        self._dispatching = False

    def subscribe(
        self, pattern: str, handler: Handler, names: set[str] | None = None
    ) -> Callable[[], None]:
        """Delivers messages whose topic matches `pattern` (and name is in `names`)."""
        sub = _Subscription(pattern, handler, frozenset(names) if names else None)
        self._subscriptions.append(sub)
        return lambda: self._subscriptions.remove(sub)

    def publish(self, message: Message) -> None:
        if self._validate_outgoing and message.origin == "local":
            api.validate(message.envelope())
        self._queue.append(message)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queue:
                self._deliver(self._queue.popleft())
        finally:
            self._dispatching = False

    def _deliver(self, message: Message) -> None:
        if message.type == "response":
            waiter = self._pending.pop(message.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        for sub in tuple(self._subscriptions):
            if sub.names is not None and message.name not in sub.names:
                continue
            if not topic_matches(sub.pattern, message.topic):
                continue
            try:
                result = sub.handler(message)
            except Exception:
                log.exception(
                    "bus_handler_failed",
                    extra={
                        "kv": {"name": message.name, "type": message.type, "topic": message.topic}
                    },
                )
                continue
            if result is not None:
                self._spawn(result, message)

    def _spawn(self, awaitable: Awaitable[None], message: Message) -> None:
        spawn(awaitable, f"bus handler for {message.name}.{message.type} on {message.topic}")

    async def request(self, message: Message, timeout_s: float) -> Message:
        """Publishes a request and returns its response; raises RequestTimeout."""
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[message.id] = waiter
        try:
            self.publish(message)
            async with asyncio.timeout(timeout_s):
                return await waiter
        except TimeoutError:
            event(
                log,
                logging.WARNING,
                "bus_request_timeout",
                name=message.name,
                id=message.id,
                timeout_s=timeout_s,
            )
            raise RequestTimeout(
                f"no response to {message.name} {message.id} within {timeout_s:g} s"
            ) from None
        finally:
            self._pending.pop(message.id, None)

    def spawn(self, coroutine: Coroutine[Any, Any, None], message: Message) -> None:
        """Runs a coroutine on behalf of a handler, logging any failure."""
        self._spawn(coroutine, message)
