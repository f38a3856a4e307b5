"""The in-process bus: topic filters, FIFO delivery, request/response correlation."""

import asyncio
from typing import Any

import pytest

from charger.bus import Bus, RequestTimeout, api, messages, topic_matches
from charger.bus.api import ApiError, Message
from charger.runtime.tasks import TaskOwner

OWNER = TaskOwner("test")


@pytest.mark.parametrize(
    ("pattern", "topic", "match"),
    [
        ("josev/cs", "josev/cs", True),
        ("josev/cs", "cs/josev", False),
        ("+/cs", "josev/cs", True),
        ("#", "a/b", True),
        ("cs/#", "cs/josev", True),
        ("+", "a/b", False),
        ("a/+/c", "a/b", False),
    ],
)
def test_topic_filters(pattern: str, topic: str, match: bool) -> None:
    assert topic_matches(pattern, topic) is match


def test_delivery_is_fifo_even_when_handlers_publish() -> None:
    bus = Bus()
    seen: list[str] = []

    def responder(message: Message[Any]) -> None:
        seen.append(f"cs:{message.name}")
        bus.publish(message.reply({"status": "accepted"}))

    bus.subscribe(messages.RESET_REQUEST, responder, owner=OWNER, topic="josev/cs")
    bus.subscribe_all(lambda m: seen.append(f"all:{m.name}.{m.type}"))
    bus.publish(api.request("reset", "josev/cs", {}))
    assert seen == ["cs:reset", "all:reset.request", "all:reset.response"]


def test_form_and_topic_filter_and_unsubscribe() -> None:
    bus = Bus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(
        messages.NOTIFY_EVENT_UPDATE,
        lambda m: seen.append(f"{m.name}.{m.type} {m.topic}"),
        owner=OWNER,
        topic="cs/josev",
    )
    bus.publish(api.update("meter_values", "cs/josev", {}))
    bus.publish(api.request("notify_event", "cs/josev", {}))  # same name, another type
    bus.publish(api.update("notify_event", "josev/cs", {}))  # same form, another topic
    bus.publish(api.update("notify_event", "cs/josev", {}))
    unsubscribe()
    bus.publish(api.update("notify_event", "cs/josev", {}))
    assert seen == ["notify_event.update cs/josev"]


def test_failing_handler_does_not_stop_delivery(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    seen: list[str] = []

    def broken(message: Message[Any]) -> None:
        raise RuntimeError("boom")

    bus.subscribe_all(broken)
    bus.subscribe_all(lambda m: seen.append(m.name))
    bus.publish(api.update("cp_status", "cs/josev", {}))
    assert seen == ["cp_status"]
    assert "bus_handler_failed" in caplog.text


async def test_request_gets_its_response() -> None:
    bus = Bus()
    bus.subscribe(
        messages.RESET_REQUEST,
        lambda m: bus.publish(messages.RESET_RESPONSE.answer(m, {"status": "accepted"})),
        owner=OWNER,
    )
    reply = await bus.request(api.request("reset", "josev/cs", {}), timeout_s=1.0)
    assert reply.type == "response" and dict(reply.data) == {"status": "accepted"}
    assert reply.topic == "cs/josev"


async def test_request_times_out_with_a_clear_error() -> None:
    bus = Bus()
    message = api.request("reset", "josev/cs", {})
    with pytest.raises(RequestTimeout, match=f"no response to reset {message.id} within 0.01 s"):
        await bus.request(message, timeout_s=0.01)


async def test_async_handlers_run_as_tasks_of_their_owner() -> None:
    bus = Bus()
    owner = TaskOwner("service")
    started, done = asyncio.Event(), asyncio.Event()

    async def handler(message: Message[Any]) -> None:
        started.set()
        await asyncio.Event().wait()
        done.set()

    bus.subscribe(messages.CP_STATUS_UPDATE, handler, owner=owner)
    bus.publish(api.update("cp_status", "cs/josev", {}))
    await asyncio.wait_for(started.wait(), 1.0)
    assert len(owner) == 1
    await owner.close()  # the service stops: its handler's task goes with it
    assert len(owner) == 0 and not done.is_set()


async def test_request_uses_the_bus_timeout_by_default() -> None:
    bus = Bus(request_timeout_s=0.01)
    with pytest.raises(RequestTimeout, match=r"within 0\.01 s"):
        await bus.request(api.request("reset", "josev/cs", {}))


def test_outgoing_validation_in_strict_mode() -> None:
    bus = Bus(validate_outgoing=True)
    with pytest.raises(ApiError, match=r"cp_status\.update"):
        bus.publish(api.update("cp_status", "cs/josev", {"evse_id": "E"}))
