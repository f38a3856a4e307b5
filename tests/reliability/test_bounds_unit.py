"""The pieces that bound the bus, without a broker: the MQTT v5 framing of the bridge's
link (`charger.protocols.mqtt.wire`), the budgets (`charger.runtime.ratelimit`) and the
bridge's queue policy."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charger.bus import api
from charger.protocols.mqtt import wire
from charger.protocols.mqtt.bridge import _Entry, _Queue
from charger.runtime.ratelimit import LogBudget, TokenBucket

# ------------------------------------------------------------------ wire


def publish_qos1(topic: str, packet_id: int, payload: bytes, props: bytes = b"") -> bytes:
    body = wire.utf8(topic) + struct.pack("!H", packet_id) + wire.varint(len(props)) + props
    body += payload
    return b"\x32" + wire.varint(len(body)) + body


def test_packets_split_anywhere_are_reassembled() -> None:
    stream = (
        b"\x20\x03\x00\x00\x00"  # CONNACK, success, no properties
        + wire.publish(wire.publish_prefix("josev/cs"), b'{"a": 1}')
        + publish_qos1("cs/josev", 7, b"x" * 300, props=b"\x01\x01")  # payload format
        + b"\x90\x04\x00\x01\x00\x01"  # SUBACK: packet 1, granted QoS 1
        + b"\xd0\x00"  # PINGRESP
    )
    for size in (1, 2, 3, 7, 64, len(stream)):
        parser = wire.Parser(1024)
        packets: list[wire.Packet] = []
        for at in range(0, len(stream), size):
            packets += parser.feed(stream[at : at + size])
        assert packets == [
            wire.ConnAck(0),
            wire.Publish("josev/cs", b'{"a": 1}', 0, None),
            wire.Publish("cs/josev", b"x" * 300, 1, 7),
            wire.SubAck(1, b"\x01"),
            wire.PingResp(),
        ]
        assert parser.buffered == 0


def test_a_packet_over_the_limit_is_refused_before_it_is_buffered() -> None:
    parser = wire.Parser(1000)
    header = b"\x30" + wire.varint(5_000_000)
    with pytest.raises(wire.ProtocolError, match="at most 1000"):
        parser.feed(header + b"\x00" * 10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "malformed remaining length"),
        (b"\x34\x05\x00\x01a\x00\x01", "QoS 2"),
        (b"\x30\x03\x00\x05a", "truncated"),
        (b"\x30\x04\x00\x02\xff\xfe\x00", "not UTF-8"),
        (b"\x50\x02\x00\x01", "unexpected packet"),
    ],
)
def test_malformed_packets_are_protocol_errors(data: bytes, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.Parser(1000).feed(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_packets_or_a_protocol_error(data: bytes) -> None:
    parser = wire.Parser(200)
    try:
        parser.feed(data)
    except wire.ProtocolError:
        return
    assert parser.buffered <= 200 + 5  # at most one incomplete packet is kept


def test_connect_and_subscribe_encode_the_options() -> None:
    packet = wire.connect("c1", "josev", "pw", keepalive_s=30, max_packet_bytes=266240)
    assert packet[0] == 0x10
    assert b"\x00\x04MQTT\x05\xc2\x00\x1e" in packet  # v5, user+password+clean start, 30 s
    assert b"\x27" + struct.pack("!I", 266240) in packet  # maximum packet size
    assert packet.endswith(b"\x00\x02c1\x00\x05josev\x00\x02pw")
    subscribe = wire.subscribe(3, ["josev/cs", "cs/josev"], no_local=True)
    assert subscribe == b"\x82\x19\x00\x03\x00" + b"\x00\x08josev/cs\x05\x00\x08cs/josev\x05"


# ------------------------------------------------------------------ budgets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(100.0, 10.0, clock)
    assert sum(bucket.take() for _ in range(50)) == 10
    assert bucket.wait_s() == pytest.approx(0.01)
    clock.now += 0.1
    assert sum(bucket.take() for _ in range(50)) == 10
    clock.now += 100.0
    assert sum(bucket.take() for _ in range(50)) == 10  # never more than the burst


def test_a_log_budget_counts_what_it_does_not_log() -> None:
    clock = Clock()
    budget = LogBudget(3, 10.0, clock)
    assert [budget.allow() for _ in range(5)] == [True, True, True, False, False]
    assert budget.take_unlogged() == 2 and budget.take_unlogged() == 0
    clock.now += 10.0
    assert budget.allow() and budget.total == 6


# ------------------------------------------------------------------ the bridge's queues


def entry(name: str, type_: str, droppable: bool, evse: str = "E1") -> _Entry:
    message = api.Message(name, type_, {"evse_id": evse}, "josev", "cs")  # type: ignore[arg-type]
    key = ("josev/cs", name, evse) if type_ == "update" and droppable else None
    return _Entry(100, droppable, key, message)


def test_a_full_queue_drops_the_oldest_droppable_and_keeps_the_rest_in_order() -> None:
    queue = _Queue(max_messages=4, max_bytes=10_000)
    pushed = [
        entry("stop_charging", "request", False),
        entry("cs_status_and_limits", "request", True),
        entry("cp_pwm", "request", False),
        entry("meter_values", "request", True),
        entry("cs_contactor_status", "request", False),  # over: the oldest query goes
    ]
    dropped = [queue.push(e)[1] for e in pushed]
    assert dropped[-1] == [pushed[1]]
    assert [queue.pop() for _ in range(4)] == [pushed[0], pushed[2], pushed[3], pushed[4]]
    assert queue.pop() is None and len(queue) == 0


def test_a_snapshot_replaces_the_queued_one_of_its_evse() -> None:
    queue = _Queue(max_messages=100, max_bytes=100_000)
    first, other, second = (
        entry("display_params", "update", True, "E1"),
        entry("display_params", "update", True, "E2"),
        entry("display_params", "update", True, "E1"),
    )
    assert queue.push(first) == (0, [])
    assert queue.push(other) == (0, [])
    assert queue.push(second) == (1, [])
    assert [queue.pop(), queue.pop(), queue.pop()] == [other, second, None]


def test_only_kept_messages_leave_a_queue_over_its_bound() -> None:
    queue = _Queue(max_messages=2, max_bytes=10_000)
    for _ in range(3):
        assert queue.push(entry("stop_charging", "request", False))[1] == []
    assert queue.over and queue.kept == 3  # the bridge stops reading (backpressure)
    queue.pop()
    queue.pop()
    assert queue.below_half


def test_dead_entries_do_not_pile_up() -> None:
    queue = _Queue(max_messages=10, max_bytes=100_000)
    for _ in range(10_000):
        queue.push(entry("display_params", "update", True))
    assert len(queue) == 1
    assert len(queue._entries) < 100 and len(queue._droppable) < 100
