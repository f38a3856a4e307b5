"""Load on the bus from outside the charger: a flood of Josev API messages at a steady
rate, and the charger's answers timed.

`python -m rig.flood` reads one JSON spec on stdin (so no password shows on a command
line), prints `{"event": "flooding"}` when the flood starts, `{"event": "flood_ended"}`
when its last message is sent and one JSON result line at the end. It speaks MQTT v5
itself over a plain socket (a few packet types, written here and independent of the
charger's own client), so one Python process can send 10 000 messages a second and
read every answer. Loopback only; every flood is bounded in count and time by its spec.

Spec fields: `port`, `username`/`password` (a role that may write the topic and read
the answers; omitted on an anonymous broker), `kind` ("valid", "invalid", "requests",
or "sim": simulator commands), `topic` and `answers_topic` (josev/cs and cs/josev
unless given), `rate` (messages per second), `seconds`, `evse_id`, `settle_s` (how
long to wait for late answers), `warmup_s` (the same messages at up to 1000/s before
the flood), `keep_every` (every n-th message a request that acts, a `cp_pwm`, its
answers counted apart: `kept_sent`, `kept_answered`). The result counts what was sent
and answered, answer latencies, the time to the answer of one request sent as the
flood ends (`recovery_ms`), and lists every `cp_status` and `cs_contactor_status`
update seen (`watched`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

TICK_S = 0.005  # the flood is sent in batches, one every tick
MAX_SECONDS = 120.0
MAX_RATE = 50_000
WATCHED = ("cp_status", "cs_contactor_status")


# ------------------------------------------------------------------ MQTT v5 packets


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    flags = 0x02  # clean start
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    header = _utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", 60) + _varint(0)
    return _packet(0x10, header + payload)


def subscribe_packet(packet_id: int, topics: tuple[str, ...]) -> bytes:
    body = struct.pack("!H", packet_id) + _varint(0)
    for topic in topics:
        body += _utf8(topic) + bytes([0x01])  # QoS 1
    return _packet(0x82, body)


def publish_packet(topic: str, payload: bytes) -> bytes:
    """QoS 0, no properties."""
    return _packet(0x30, _utf8(topic) + _varint(0) + payload)


class RawClient:
    """An MQTT v5 client that sends pre-encoded packets and hands every PUBLISH it
    receives to `on_message(topic, payload)` (QoS 1 ones are acknowledged)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.on_message: Callable[[str, bytes], None] = lambda topic, payload: None
        self._reading: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, port: int, username: str | None = None, password: str | None = None
    ) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(reader, writer)
        writer.write(connect_packet(f"flood-{os.getpid()}-{id(client):x}", username, password))
        first, body = await client._read_packet()
        if first >> 4 != 2 or len(body) < 2 or body[1] != 0:
            writer.close()
            raise ConnectionError(f"CONNACK refused: {body[:2].hex()}")
        return client

    async def _read_packet(self) -> tuple[int, bytes]:
        first = (await self.reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            digit = (await self.reader.readexactly(1))[0]
            length |= (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                break
        return first, await self.reader.readexactly(length)

    async def subscribe(self, *topics: str) -> None:
        self.writer.write(subscribe_packet(1, topics))
        while True:
            first, body = await self._read_packet()
            if first >> 4 == 9:  # SUBACK
                if any(code >= 0x80 for code in body[3:]):
                    raise ConnectionError(f"SUBSCRIBE refused: {body[3:].hex()}")
                break
        self._reading = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        while True:
            first, body = await self._read_packet()
            if first >> 4 != 3:
                continue
            qos = (first >> 1) & 3
            (topic_len,) = struct.unpack_from("!H", body)
            topic = body[2 : 2 + topic_len].decode()
            at = 2 + topic_len
            if qos:
                self.writer.write(b"\x40\x02" + body[at : at + 2])  # PUBACK
                at += 2
            props, shift = 0, 0
            while True:
                digit = body[at]
                at += 1
                props |= (digit & 0x7F) << shift
                shift += 7
                if not digit & 0x80:
                    break
            self.on_message(topic, body[at + props :])

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        if not self.writer.is_closing():
            self.writer.write(b"\xe0\x00")  # DISCONNECT
            self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


# ------------------------------------------------------------------ the messages


def message_id(run: int, n: int) -> str:
    return f"{run:08x}-0000-4000-8000-{n:012x}"


def _envelope(msg_id: str, name: str, type_: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"id": msg_id, "name": name, "type": type_, "data": data}).encode()


def valid_messages(run: int, evse_id: str) -> Iterator[tuple[str | None, bytes]]:
    """(the id of a request, or None; payload): a polling tool gone wild: status,
    meter and parameter requests with a display update between them."""
    stamp = "2026-01-01T00:00:00Z"
    n = 0
    while True:
        for name, type_, data in (
            ("cs_status_and_limits", "request", {}),
            ("meter_values", "request", {"evse_id": evse_id, "timestamp": stamp}),
            ("cs_status_and_limits", "request", {}),
            ("display_params", "update", {"evse_id": evse_id, "present_soc": n % 100}),
            ("cs_parameters", "request", {}),
        ):
            msg_id = message_id(run, n)
            yield msg_id if type_ == "request" else None, _envelope(msg_id, name, type_, data)
            n += 1


def invalid_messages(run: int, evse_id: str) -> Iterator[tuple[str | None, bytes]]:
    """Not JSON, not UTF-8, schema-invalid requests (answered with an error status) and
    a message on a topic its form may not use."""
    n = 0
    while True:
        bad_pwm = {"evse_id": evse_id, "hlc": "yes", "error_state": False, "fault_state": False}
        pwm_id = message_id(run, n)
        for request, payload in (
            (None, b"{not json " + str(n).encode()),
            (None, b"\xff\xfe" + str(n).encode()),
            (pwm_id, _envelope(pwm_id, "cp_pwm", "request", bad_pwm)),
            (None, _envelope(message_id(run, n + 1), "cp_status", "update", {"state": "Z"})),
        ):
            yield request, payload
            n += 2


def request_messages(run: int, evse_id: str) -> Iterator[tuple[str | None, bytes]]:
    n = 0
    while True:
        msg_id = message_id(run, n)
        yield msg_id, _envelope(msg_id, "cs_status_and_limits", "request", {})
        n += 1


def sim_commands(run: int, evse_id: str) -> Iterator[tuple[str | None, bytes]]:
    """The simulator's "state" command (topic sim/cmd, role simctl)."""
    n = 0
    while True:
        yield None, json.dumps({"cmd": "state", "id": message_id(run, n)}).encode()
        n += 1


KINDS = {
    "valid": valid_messages,
    "invalid": invalid_messages,
    "requests": request_messages,
    "sim": sim_commands,
}


def kept_request(run: int, n: int, evse_id: str) -> tuple[str, bytes]:
    """A request that acts (the charger must never drop it): the PWM it offers anyway."""
    msg_id = message_id(run + 1, n)
    data = {"evse_id": evse_id, "hlc": False, "error_state": False, "fault_state": False}
    return msg_id, _envelope(msg_id, "cp_pwm", "request", {**data, "current": 32})


# ------------------------------------------------------------------ the run


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3)


@dataclass
class Tally:
    sent_at: dict[str, float] = field(default_factory=dict)  # request id -> send time
    latencies_ms: list[float] = field(default_factory=list)
    answered: int = 0
    kept: set[str] = field(default_factory=set)  # requests that act, not yet answered
    kept_answered: int = 0
    error_replies: int = 0
    unknown_answers: int = 0
    watched: list[dict[str, Any]] = field(default_factory=list)
    probe_id: str = ""
    probe_answered: asyncio.Event = field(default_factory=asyncio.Event)
    flood_over: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # all answered, after

    def check_settled(self) -> None:
        if self.flood_over and not self.sent_at and not self.kept:
            self.settled.set()

    def record(self, topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if self.probe_id and message.get("id") == self.probe_id:
            self.probe_answered.set()  # a response, or the simulator's reply
        elif message.get("type") == "response":
            sent = self.sent_at.pop(message.get("id", ""), None)
            if message.get("id") in self.kept:
                self.kept.discard(message["id"])
                self.kept_answered += 1
            elif sent is None:
                self.unknown_answers += 1
            else:
                self.answered += 1
                self.latencies_ms.append((now - sent) * 1000.0)
                status = message.get("data", {}).get("status")
                if status in ("invalid", "error", "rejected"):
                    self.error_replies += 1
            self.check_settled()
        elif message.get("name") in WATCHED:
            self.watched.append({"name": message["name"], "data": message.get("data")})


async def run(spec: dict[str, Any], on_event: Callable[[str], None]) -> dict[str, Any]:
    kind, rate = spec["kind"], int(spec["rate"])
    seconds = float(spec["seconds"])
    if not (0 < rate <= MAX_RATE and 0 < seconds <= MAX_SECONDS):
        raise ValueError(f"rate within 1..{MAX_RATE} and seconds within (0, {MAX_SECONDS}]")
    port, topic = int(spec["port"]), spec.get("topic", "josev/cs")
    client = await RawClient.open(port, spec.get("username"), spec.get("password"))
    tally = Tally()
    client.on_message = tally.record
    await client.subscribe(spec.get("answers_topic", "cs/josev"))
    run_id = int(spec.get("run", os.getpid()))
    messages = KINDS[kind](run_id, spec["evse_id"])
    warmup_s = float(spec.get("warmup_s", 0.0))
    if warmup_s:  # the same messages, slowly: first uses (caches, validators) out of the way
        warm = int(min(rate, 1000) * warmup_s)
        for _ in range(warm):
            client.writer.write(publish_packet(topic, next(messages)[1]))
            await asyncio.sleep(warmup_s / warm)
        await asyncio.sleep(0.5)
        tally.unknown_answers = 0
    keep_every = int(spec.get("keep_every", 0))
    sent = requests = kept = 0
    started = time.perf_counter()
    on_event("flooding")
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        batch = []
        now = time.perf_counter()
        while sent < due:
            if keep_every and sent % keep_every == keep_every - 1:
                kept_id, payload = kept_request(run_id, kept, spec["evse_id"])
                tally.kept.add(kept_id)
                kept += 1
                batch.append(publish_packet(topic, payload))
                sent += 1
                continue
            request_id, payload = next(messages)
            if request_id is not None:
                requests += 1
                tally.sent_at[request_id] = now
            batch.append(publish_packet(topic, payload))
            sent += 1
        client.writer.write(b"".join(batch))
        await client.writer.drain()
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter() + TICK_S))
    flood_s = time.perf_counter() - started
    on_event("flood_ended")
    # One request as the flood ends: how long until the charger answers it?
    tally.probe_id = message_id(run_id, 0xFFFFFFFFFF)
    if kind == "sim":
        probe = json.dumps({"cmd": "state", "id": tally.probe_id}).encode()
    else:
        probe = _envelope(tally.probe_id, "cs_status_and_limits", "request", {})
    ended = time.perf_counter()
    client.writer.write(publish_packet(topic, probe))
    await client.writer.drain()
    recovery_ms: float | None = None
    try:
        await asyncio.wait_for(tally.probe_answered.wait(), float(spec.get("settle_s", 5.0)))
        recovery_ms = round((time.perf_counter() - ended) * 1000.0, 1)
    except TimeoutError:
        pass
    # late answers to the flood itself
    tally.flood_over = True
    tally.check_settled()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.settled.wait(), float(spec.get("settle_s", 5.0)))
    await client.close()
    return {
        "kind": kind,
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "sent_per_s": round(sent / flood_s),
        "requests": requests,
        "answered": tally.answered,
        "unanswered": len(tally.sent_at),
        "kept_sent": kept,
        "kept_answered": tally.kept_answered,
        "error_replies": tally.error_replies,
        "unknown_answers": tally.unknown_answers,
        "answer_p50_ms": _percentile(tally.latencies_ms, 0.50),
        "answer_p99_ms": _percentile(tally.latencies_ms, 0.99),
        "answer_max_ms": _percentile(tally.latencies_ms, 1.0),
        "recovery_ms": recovery_ms,
        "watched": tally.watched,
    }


def main() -> None:
    spec = json.loads(sys.stdin.readline())

    def announce(what: str) -> None:
        print(json.dumps({"event": what}), flush=True)

    result = asyncio.run(run(spec, announce))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
