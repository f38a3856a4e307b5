"""OCPP-J framing, validation error codes, and the session's CALL discipline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from charger.protocols.ocpp import rpc
from charger.protocols.ocpp.rpc import RpcError
from charger.protocols.ocpp.session import CallRejected, CallTimeout, Session
from charger.runtime.tasks import TaskOwner

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}


def test_ocpp_201_has_64_actions() -> None:
    assert len(rpc.actions()) == 64 and {"BootNotification", "TransactionEvent"} <= rpc.actions()


def test_frames_round_trip() -> None:
    call = rpc.parse('[2,"a1","BootNotification",' + json.dumps(BOOT) + "]")
    assert call == rpc.Call("a1", "BootNotification", BOOT)
    assert rpc.parse(call.frame()) == call
    assert rpc.parse('[3,"a1",{"x":1}]') == rpc.CallResult("a1", {"x": 1})
    assert rpc.parse('[4,"a1","NotSupported","no",{}]') == rpc.CallErrorFrame(
        "a1", "NotSupported", "no", {}
    )


@pytest.mark.parametrize(
    ("payload", "code", "where"),
    [
        (
            {"reason": "PowerUp"},
            "OccurrenceConstraintViolation",
            'BootNotificationRequest: "chargingStation" is a required property',
        ),
        ({**BOOT, "reason": 3}, "TypeConstraintViolation", "BootNotificationRequest.reason"),
        ({**BOOT, "reason": "Sunrise"}, "PropertyConstraintViolation", '"Sunrise" is not one of'),
        (
            {**BOOT, "chargingStation": {"model": "M" * 21, "vendorName": "V"}},
            "PropertyConstraintViolation",
            "chargingStation.model: ",
        ),
        ({**BOOT, "colour": "red"}, "FormatViolation", "('colour' was unexpected)"),
    ],
)
def test_schema_violations_map_to_ocpp_j_codes(
    payload: dict[str, Any], code: str, where: str
) -> None:
    with pytest.raises(RpcError) as info:
        rpc.validate("BootNotification", "Request", payload, "m9")
    assert info.value.code == code and where in info.value.description
    assert json.loads(info.value.frame())[:3] == [4, "m9", code]


def test_date_time_format_is_checked() -> None:
    with pytest.raises(RpcError) as info:
        rpc.validate("Heartbeat", "Response", {"currentTime": "yesterday"})
    assert info.value.code == "PropertyConstraintViolation"


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[list[Any]] = []
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.sent_event = asyncio.Event()
        self.reads = 0  # recv calls: the reader is back for more once a frame is handled
        self.reading = asyncio.Event()

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))
        self.sent_event.set()

    async def recv(self) -> str:
        self.reads += 1
        self.reading.set()
        return await self.inbox.get()

    async def handled(self, reads: int) -> None:
        """Until the reader has asked for frame number `reads` + 1."""
        while self.reads <= reads:
            self.reading.clear()
            await self.reading.wait()

    async def next_sent(self) -> list[Any]:
        while True:
            if self.sent:
                return self.sent.pop(0)
            self.sent_event.clear()
            await asyncio.wait_for(self.sent_event.wait(), 2)


async def test_one_call_at_a_time_and_answers_are_matched_by_id() -> None:
    sock = FakeSocket()
    session = Session(sock, {}, call_timeout_s=2, tasks=TaskOwner("ocpp"))
    reader = asyncio.create_task(session.serve())
    first = asyncio.create_task(session.call("Heartbeat", {}))
    second = asyncio.create_task(session.call("Heartbeat", {}))
    call1 = await sock.next_sent()
    reads = sock.reads
    await sock.inbox.put(json.dumps([3, "someone-else", {}]))  # unexpected id: ignored
    await sock.handled(reads)  # by then the second CALL has had its turns
    assert sock.sent == []  # it waits for the first answer
    await sock.inbox.put(json.dumps([3, call1[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
    assert await first == {"currentTime": "2026-01-01T00:00:00Z"}
    call2 = await sock.next_sent()
    await sock.inbox.put(json.dumps([4, call2[1], "InternalError", "oops", {}]))
    with pytest.raises(CallRejected, match="Heartbeat: InternalError: oops"):
        await second
    reader.cancel()


async def test_call_timeout_and_invalid_answer() -> None:
    sock = FakeSocket()
    session = Session(sock, {}, call_timeout_s=0.05, tasks=TaskOwner("ocpp"))
    reader = asyncio.create_task(session.serve())
    with pytest.raises(CallTimeout, match=r"no answer to Heartbeat within 0\.05 s"):
        await session.call("Heartbeat", {})
    session.call_timeout_s = 2
    pending = asyncio.create_task(session.call("Heartbeat", {}))
    await sock.next_sent()  # the CALL that timed out
    sent = await sock.next_sent()
    await sock.inbox.put(json.dumps([3, sent[1], {"currentTime": 5}]))
    with pytest.raises(
        RpcError, match=r"HeartbeatResponse\.currentTime: 5 is not of type \"string\""
    ):
        await pending
    reader.cancel()


async def test_incoming_calls_are_dispatched_and_failures_answered() -> None:
    async def reset(payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted"} if payload["type"] == "OnIdle" else {"status": "Maybe"}

    sock = FakeSocket()
    session = Session(sock, {"Reset": reset}, call_timeout_s=2, tasks=TaskOwner("ocpp"))
    reader = asyncio.create_task(session.serve())
    await sock.inbox.put(json.dumps([2, "r1", "Reset", {"type": "OnIdle"}]))
    assert await sock.next_sent() == [3, "r1", {"status": "Accepted"}]
    await sock.inbox.put(json.dumps([2, "r2", "Reset", {"type": "Immediate"}]))
    reply = await sock.next_sent()  # our own handler's invalid answer is not sent as is
    assert reply[:3] == [4, "r2", "PropertyConstraintViolation"]
    await sock.inbox.put(json.dumps([2, "r3", "Heartbeat", {}]))
    assert (await sock.next_sent())[:3] == [4, "r3", "NotSupported"]
    reader.cancel()


def test_validation_never_writes_defaults_into_the_payload() -> None:
    payload = {
        "eventType": "Started",
        "timestamp": "2026-11-22T03:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t"},
    }
    before = json.dumps(payload, sort_keys=True)
    rpc.validate("TransactionEvent", "Request", payload)  # the schema has offline: default false
    assert json.dumps(payload, sort_keys=True) == before


async def test_answers_written_waits_for_the_answer_of_a_call_in_progress() -> None:
    """What a handler's change sets off (a new BasicAuthPassword closes the connection)
    waits for that handler's answer to be written, however long the handler takes."""
    started, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []
    names = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
    result = {"setVariableResult": [{**names, "attributeStatus": "Accepted"}]}

    async def set_variables(payload: dict[str, Any]) -> dict[str, Any]:
        started.set()  # the change is made; the handler still has work to do
        await release.wait()
        return result

    class RecordingSocket(FakeSocket):
        async def send(self, message: str) -> None:
            order.append("answer written")
            await super().send(message)

    sock = RecordingSocket()
    session = Session(sock, {"SetVariables": set_variables}, call_timeout_s=2, tasks=TaskOwner("o"))
    reader = asyncio.create_task(session.serve())
    async with asyncio.timeout(5):
        await session.answers_written()  # nothing begun: returns at once
        request = {"setVariableData": [{**names, "attributeValue": "a-new-password-0002"}]}
        await sock.inbox.put(json.dumps([2, "s1", "SetVariables", request]))
        await started.wait()

        async def after_the_answers() -> None:
            await session.answers_written()
            order.append("answers_written returned")

        waiter = asyncio.create_task(after_the_answers())
        await asyncio.sleep(0)  # one loop turn: the waiter returns or waits, then
        release.set()  # the handler ends and its answer is written
        await waiter
    assert order == ["answer written", "answers_written returned"]
    assert sock.sent == [[3, "s1", result]]
    reader.cancel()


async def test_settled_waits_for_our_own_call_in_flight() -> None:
    """Before a connection is closed on purpose, our CALL in flight gets its answer: a
    CSMS busy with it may not have read our answer to its own call yet."""
    sock = FakeSocket()
    session = Session(sock, {}, call_timeout_s=2, tasks=TaskOwner("ocpp"))
    reader = asyncio.create_task(session.serve())
    async with asyncio.timeout(5):
        await session.settled()  # nothing in flight: at once
        heartbeat = asyncio.create_task(session.call("Heartbeat", {}))
        sent = await sock.next_sent()
        settled = asyncio.create_task(session.settled())
        reads = sock.reads
        await sock.inbox.put(json.dumps([3, "someone-else", {}]))
        await sock.handled(reads)  # by then `settled` has had its turns
        assert not settled.done()
        await sock.inbox.put(json.dumps([3, sent[1], {"currentTime": "2026-01-01T00:00:00Z"}]))
        await settled
        assert heartbeat.done()
    reader.cancel()


def test_validating_leaves_the_ocpp_message_classes_unimported() -> None:
    """Importing `ocpp.v201` stalls the event loop; the validator reads only schema files."""
    script = (
        "import sys\n"
        "from charger.protocols.ocpp import rpc\n"
        "rpc.validate('Heartbeat', 'Request', {})\n"
        "assert len(rpc.actions()) > 60, rpc.actions()\n"
        "print(sorted(m for m in sys.modules if m.startswith('ocpp.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
