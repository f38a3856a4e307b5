"""The in-process bus: topic filters, FIFO delivery, request/response correlation."""

import asyncio

import pytest

from charger.bus import api
from charger.bus.api import ApiError, Message
from charger.bus import Bus, RequestTimeout, topic_matches


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

    def responder(message: Message) -> None:
        seen.append(f"cs:{message.name}")
        bus.publish(message.reply({"status": "accepted"}))

    bus.subscribe("josev/cs", responder)
    bus.subscribe("#", lambda m: seen.append(f"all:{m.name}.{m.type}"))
    bus.publish(api.request("reset", "josev/cs", {}))
    assert seen == ["cs:reset", "all:reset.request", "all:reset.response"]


def test_name_filter_and_unsubscribe() -> None:
    bus = Bus()
    seen: list[str] = []
    unsubscribe = bus.subscribe("cs/josev", lambda m: seen.append(m.name), names={"cp_status"})
    bus.publish(api.update("meter_values", "cs/josev", {}))
    bus.publish(api.update("cp_status", "cs/josev", {}))
    unsubscribe()
    bus.publish(api.update("cp_status", "cs/josev", {}))
    assert seen == ["cp_status"]


def test_failing_handler_does_not_stop_delivery(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    seen: list[str] = []

    def broken(message: Message) -> None:
        raise RuntimeError("boom")

    bus.subscribe("#", broken)
    bus.subscribe("#", lambda m: seen.append(m.name))
    bus.publish(api.update("cp_status", "cs/josev", {}))
    assert seen == ["cp_status"]
    assert "bus_handler_failed" in caplog.text


async def test_request_gets_its_response() -> None:
    bus = Bus()
    bus.subscribe("josev/cs", lambda m: bus.publish(m.reply({"status": "accepted"})))
    reply = await bus.request(api.request("reset", "josev/cs", {}), timeout_s=1.0)
    assert reply.type == "response" and dict(reply.data) == {"status": "accepted"}
    assert reply.topic == "cs/josev"


async def test_request_times_out_with_a_clear_error() -> None:
    bus = Bus()
    message = api.request("reset", "josev/cs", {})
    with pytest.raises(RequestTimeout, match=f"no response to reset {message.id} within 0.01 s"):
        await bus.request(message, timeout_s=0.01)


async def test_async_handlers_run_as_tasks() -> None:
    bus = Bus()
    done = asyncio.Event()

    async def handler(message: Message) -> None:
        await asyncio.sleep(0)
        done.set()

    bus.subscribe("#", handler)
    bus.publish(api.update("cp_status", "cs/josev", {}))
    await asyncio.wait_for(done.wait(), 1.0)


def test_outgoing_validation_in_strict_mode() -> None:
    bus = Bus(validate_outgoing=True)
    with pytest.raises(ApiError, match=r"cp_status\.update"):
        bus.publish(api.update("cp_status", "cs/josev", {"evse_id": "E"}))
