"""In-process publish/subscribe of Josev API messages, with request/response correlation.

Handlers subscribe to a message form (`charger.bus.messages`) and receive its typed
payload; the MQTT bridge and tools subscribe to everything. Delivery is FIFO and
synchronous: `publish` runs every matching handler before it returns (a handler that
publishes queues behind the message being delivered), so a state change reaches every
listener within the same loop iteration and in the order it happened. A handler that
needs to await returns a coroutine; the bus runs it as a task of the subscriber's
`TaskOwner`, so it stops with the service that subscribed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from charger.bus import api
from charger.bus.api import Form, Message
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

P = TypeVar("P")
Handler = Callable[[Message[Any]], Awaitable[None] | None]


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
    form: tuple[str, str] | None  # (name, type); None: every form
    topic: str | None  # an MQTT topic filter; None: any topic
    handler: Handler
    owner: TaskOwner | None


class Bus:
    def __init__(self, *, request_timeout_s: float = 10.0, validate_outgoing: bool = False) -> None:
        self.request_timeout_s = request_timeout_s  # the [bus] setting every service uses
        # Tests and the debug mode validate locally made messages too; in production only
        # what arrives from MQTT is validated (by the bridge), keeping the hot path lean.
        self._validate_outgoing = validate_outgoing
        self._subscriptions: list[_Subscription] = []
        self._pending: dict[str, asyncio.Future[Message[Any]]] = {}
        self._queue: deque[Message[Any]] = deque()
        self._dispatching = False

    def subscribe(
        self,
        form: Form[P],
        handler: Callable[[Message[P]], Awaitable[None] | None],
        *,
        owner: TaskOwner,
        topic: str | None = None,
    ) -> Callable[[], None]:
        """Delivers every message of `form` (on `topic` only, if given) to `handler`;
        a coroutine it returns runs as a task of `owner`. Returns the unsubscriber."""
        return self._add(_Subscription((form.name, form.type), topic, handler, owner))

    def subscribe_all(
        self, handler: Callable[[Message[Any]], None], topic: str = "#"
    ) -> Callable[[], None]:
        """Delivers every message whose topic matches the filter `topic` (bridge, tools)."""
        return self._add(_Subscription(None, topic, handler, None))

    def _add(self, sub: _Subscription) -> Callable[[], None]:
        self._subscriptions.append(sub)

        def unsubscribe() -> None:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)

        return unsubscribe

    def publish(self, message: Message[Any]) -> None:
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

    def _deliver(self, message: Message[Any]) -> None:
        if message.type == "response":
            waiter = self._pending.pop(message.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        form = (message.name, message.type)
        for sub in tuple(self._subscriptions):
            if sub.form is not None and sub.form != form:
                continue
            if sub.topic is not None and not topic_matches(sub.topic, message.topic):
                continue
            try:
                result = sub.handler(message)
            except Exception:
                log.exception("bus_handler_failed", extra={"kv": _context(message)})
                continue
            if result is not None:
                self._run(sub, result, message)

    def _run(self, sub: _Subscription, result: Awaitable[None], message: Message[Any]) -> None:
        what = f"bus handler for {message.name}.{message.type} on {message.topic}"
        if sub.owner is None or not asyncio.iscoroutine(result):
            event(log, logging.ERROR, "bus_handler_not_owned", **_context(message))
            return
        sub.owner.spawn(result, what)

    async def request(self, message: Message[Any], timeout_s: float | None = None) -> Message[Any]:
        """Publishes a request and returns its response within `timeout_s` (default: the
        bus's request timeout); raises RequestTimeout."""
        if timeout_s is None:
            timeout_s = self.request_timeout_s
        waiter: asyncio.Future[Message[Any]] = asyncio.get_running_loop().create_future()
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


def _context(message: Message[Any]) -> dict[str, Any]:
    return {"name": message.name, "type": message.type, "topic": message.topic}


__all__ = ["Bus", "RequestTimeout", "topic_matches"]
