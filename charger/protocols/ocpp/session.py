"""One OCPP-J session over a WebSocket: our CALLs one at a time, the CSMS's CALLs
dispatched to handlers, every frame validated both ways.

The `ocpp` package's RPC layer answers malformed frames poorly and validates slowly;
this one answers each kind of bad frame with the CALLERROR OCPP-J prescribes
(`rpc.parse`), keeps at most one CALL outstanding (OCPP-J 4.1.1), and gives up on it
after the message timeout.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from charger.protocols.ocpp import rpc
from charger.protocols.ocpp.rpc import RpcError
from charger.runtime.log import event
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Socket(Protocol):
    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


class CallTimeout(TimeoutError):
    pass


class CallRejected(Exception):
    """The CSMS answered our CALL with a CALLERROR."""

    def __init__(self, action: str, error: rpc.CallErrorFrame) -> None:
        super().__init__(f"{action}: {error.code}: {error.description}")
        self.error = error


class Session:
    def __init__(
        self,
        socket: Socket,
        handlers: dict[str, Handler],
        *,
        call_timeout_s: float,
        tasks: TaskOwner,
    ) -> None:
        """`tasks`: the owner of the answers to the CSMS's calls (the OCPP service's)."""
        self._socket = socket
        self._handlers = handlers
        self.call_timeout_s = call_timeout_s
        self._one_call = asyncio.Lock()
        self._waiting: tuple[str, str, asyncio.Future[rpc.CallResult | rpc.CallErrorFrame]] | None
        self._waiting = None
        self._tasks = tasks
        self._answers_begun = 0  # calls of the CSMS being answered, and answered (written
        self._answers_written = 0  # or failed to write): see `answers_written`
        self._answer_written = asyncio.Event()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends a CALL and returns the validated CALLRESULT payload.

        Raises CallRejected for a CALLERROR, CallTimeout when no answer comes in time,
        RpcError when our own payload or the answer violates the schema.
        """
        rpc.validate(action, "Request", payload)
        async with self._one_call:
            message_id = str(uuid.uuid4())
            future: asyncio.Future[rpc.CallResult | rpc.CallErrorFrame]
            future = asyncio.get_running_loop().create_future()
            self._waiting = (message_id, action, future)
            try:
                await self._socket.send(rpc.Call(message_id, action, payload).frame())
                async with asyncio.timeout(self.call_timeout_s):
                    answer = await future
            except TimeoutError:
                event(
                    log,
                    logging.WARNING,
                    "ocpp_call_timeout",
                    action=action,
                    timeout_s=self.call_timeout_s,
                )
                raise CallTimeout(
                    f"no answer to {action} within {self.call_timeout_s:g} s"
                ) from None
            finally:
                self._waiting = None
        if isinstance(answer, rpc.CallErrorFrame):
            event(
                log,
                logging.WARNING,
                "ocpp_call_error",
                action=action,
                code=answer.code,
                description=answer.description,
            )
            raise CallRejected(action, answer)
        rpc.validate(action, "Response", answer.payload, message_id)
        return answer.payload

    async def call_quietly(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """A CALL whose failure nobody acts on (it is logged): the answer, or None."""
        try:
            return await self.call(action, payload)
        except (CallTimeout, CallRejected):
            return None

    async def serve(self) -> None:
        """Reads frames until the socket closes (the caller handles that exception)."""
        while True:
            raw = await self._socket.recv()
            try:
                frame = rpc.parse(raw)
            except RpcError as exc:
                event(
                    log,
                    logging.WARNING,
                    "ocpp_frame_rejected",
                    code=exc.code,
                    reason=exc.description,
                    frame=str(raw)[:200],
                )
                await self._socket.send(exc.frame())
                continue
            if isinstance(frame, rpc.Call):
                self._tasks.spawn(self._answer(frame), f"answer to {frame.action}")
            else:
                self._resolve(frame)

    def _resolve(self, frame: rpc.CallResult | rpc.CallErrorFrame) -> None:
        waiting = self._waiting
        if waiting is None or waiting[0] != frame.message_id or waiting[2].done():
            event(log, logging.WARNING, "ocpp_unexpected_answer", id=frame.message_id)
            return
        waiting[2].set_result(frame)

    async def answers_written(self) -> None:
        """Returns once every call of the CSMS received so far has had its answer written
        (or the write failed): what the station does after a change that a handler made
        (a new password closes the connection) must not overtake that handler's answer."""
        begun = self._answers_begun
        while self._answers_written < begun:
            self._answer_written.clear()
            await self._answer_written.wait()

    async def settled(self) -> None:
        """`answers_written`, then until our own CALL in flight, if any, has its answer
        (or timed out): closing the connection now loses neither side's exchange. (A CSMS
        busy with our CALL may not yet have read our answer to its own.)"""
        await self.answers_written()
        async with self._one_call:
            pass

    async def _answer(self, call: rpc.Call) -> None:
        self._answers_begun += 1
        try:
            await self._answer_call(call)
        finally:
            self._answers_written += 1
            self._answer_written.set()

    async def _answer_call(self, call: rpc.Call) -> None:
        handler = self._handlers.get(call.action)
        try:
            if handler is None:
                raise RpcError(
                    "NotSupported",
                    f"{call.action} is not supported by this charging station",
                    call.message_id,
                )
            result = await handler(call.payload)
            rpc.validate(call.action, "Response", result, call.message_id)
            reply = rpc.CallResult(call.message_id, result).frame()
        except RpcError as exc:
            exc.message_id = call.message_id
            reply = exc.frame()
        except Exception as exc:  # a handler bug must not kill the session
            log.exception("ocpp_handler_failed", extra={"kv": {"action": call.action}})
            reply = RpcError(
                "InternalError", f"{call.action} failed: {exc}", call.message_id
            ).frame()
        await self._socket.send(reply)
