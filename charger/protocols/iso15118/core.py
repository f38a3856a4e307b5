"""What every session core shares: its outputs, timers, the sequence check as data, and
the request → response cycle.

A session core is a sans-IO state machine for one protocol (one per protocol, chosen by
SupportedAppProtocol): `receive(now, payload)` takes one EXI message from the EV,
`tick(now)` acts on its timers (`next_deadline()` says when), `abort` tells it the
connection or the plug went away. `drain()` returns what to do, in order:

- `Send`: the EXI response to write (always first, so it leaves before anything else);
- `Publish` / `Request`: Josev API messages for the bus (a request's response comes back
  through the bus into the `EvseView`, which the next V2G request reads);
- `End`: the session is over (completed, paused or failed): the service opens the power
  path where needed, then closes the connection.

Each core declares `ALLOWED`, the requests it accepts in each of its states, as a table;
a request outside it gets FAILED_SequenceError. A request with a session ID other than
the session's gets FAILED_UnknownSession, undecodable EXI the FAILED response of the
expected request; every FAILED ends the session.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from charger.bus import messages
from charger.bus.api import Message
from charger.protocols import exi
from charger.protocols.iso15118.evse import EvseSetup, EvseView
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.schedules import ScheduleProvider
from charger.protocols.iso15118.v2gtp import PayloadType

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    COMPLETED = "completed"  # SessionStop (Terminate)
    PAUSED = "paused"  # SessionStop (Pause): the EV may resume with the session ID
    FAILED = "failed"  # a FAILED response, a timeout, a broken connection, unplugged


@dataclass(frozen=True, slots=True)
class Send:
    payload: bytes
    request: str  # e.g. "CurrentDemandReq" ("?" when it could not be decoded)
    response: str
    code: str  # the response code sent
    core_s: float  # decode + handling + encode, in this core
    payload_type: int = PayloadType.EXI
    # what the EV does after this response, as the standard has it: the CP state it
    # changes to (C to take energy, B when done) and whether it now takes energy (its
    # contactor, DC: PowerDelivery start/stop): what a simulated car follows
    ev_state: str | None = None
    ev_power: bool | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    message: Message[Any]


@dataclass(frozen=True, slots=True)
class Request:
    message: Message[Any]


@dataclass(frozen=True, slots=True)
class End:
    outcome: Outcome
    reason: str
    linger_s: float = 0.0  # let the EV close the connection first, at most this long
    dc: bool = False  # the EV asked for DC: no basic AC charging to fall back to


Action = Send | Publish | Request | End


@dataclass(frozen=True, slots=True)
class Timers:
    """The SECC's timers of ISO 15118-2 and DIN SPEC 70121 (their timing tables)."""

    sequence_s: float = 60.0  # V2G_SECC_Sequence_Timeout: the EV's next request within
    communication_setup_s: float = 20.0  # V2G_EVCC_CommunicationSetup_Timeout: to SessionSetup
    cable_check_s: float = 38.0  # V2G_SECC_CableCheck_Performance_Time
    precharge_s: float = 7.0  # V2G_EVCC_PreCharge_Timeout: the EV gives up after it
    ongoing_s: float = 60.0  # V2G_EVCC_Ongoing_Timeout: longest EVSEProcessing=Ongoing
    linger_s: float = 10.0  # after SessionStopRes the EV closes TCP (Josev: after 5 s)
    stop_reaction_s: float = 10.0  # StopCharging told: the EV's PowerDelivery(Stop) within


@dataclass(frozen=True, slots=True)
class CoreSettings:
    timers: Timers = field(default_factory=Timers)
    receipt_required: bool = False
    free_service: bool = False
    notification_max_delay_s: int = 0


@dataclass(frozen=True, slots=True)
class PausedSession:
    session_id: bytes
    protocol: V2gProtocol
    payment_option: str
    energy_mode: str | None


@dataclass(slots=True)
class Context:
    """What a core works with besides the EV's messages (shared with the service)."""

    setup: EvseSetup
    view: EvseView
    schedules: ScheduleProvider
    settings: CoreSettings = field(default_factory=CoreSettings)
    paused: PausedSession | None = None  # set by a Pause, offered to the next SessionSetup
    wall_clock: Callable[[], float] = time.time
    new_session_id: Callable[[], bytes] = lambda: os.urandom(8)


class Fail(Exception):
    """Raised by a handler: answer with this FAILED response code and end the session."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# iso15118_state_info session_status for each request (by class name, both protocols).
STATE_INFO = {
    "SessionSetupReq": "SessionSetup",
    "ServiceDiscoveryReq": "ServiceDiscovery",
    "ServiceDetailReq": "ServiceDetail",
    "PaymentServiceSelectionReq": "ServiceSelection",
    "ServicePaymentSelectionReq": "ServiceSelection",
    "PaymentDetailsReq": "Authorization",
    "AuthorizationReq": "Authorization",
    "ContractAuthenticationReq": "Authorization",
    "ChargeParameterDiscoveryReq": "ChargeParameterDiscovery",
    "CableCheckReq": "CableCheck",
    "PreChargeReq": "PreCharge",
    "PowerDeliveryReq": "PowerDelivery",
    "ChargingStatusReq": "ChargingLoop",
    "CurrentDemandReq": "ChargingLoop",
    "MeteringReceiptReq": "MeteringReceipt",
    "WeldingDetectionReq": "WeldingDetection",
    "SessionStopReq": "SessionStop",
    "SessionStop": "SessionStop",  # DIN's SessionStopReq is of type SessionStopType
    "CertificateInstallationReq": "CertificateInstallation",
    "CertificateUpdateReq": "CertificateInstallation",
}


def request_name(body: object) -> str:
    name = type(body).__name__
    return "SessionStopReq" if name == "SessionStop" else name


# ------------------------------------------------------------------ physical values


def to_physical(value: float) -> tuple[int, int]:
    """(value, multiplier) for a PhysicalValue: a 16-bit value, multiplier -3..3, as
    precise as fits (one decimal where it can)."""
    if not math.isfinite(value):
        value = 0.0
    for multiplier in range(-1, 4):
        scaled = round(value / 10**multiplier)
        if -32768 <= scaled <= 32767:
            return scaled, multiplier
    return (32767 if value > 0 else -32768), 3


def from_physical(value: int, multiplier: int) -> float:
    return float(value) * 10.0**multiplier


def value_of(pv: Any) -> float | None:
    """A PhysicalValue of any protocol's messages (DIN, -2) as a float; None for None."""
    return None if pv is None else from_physical(pv.value, pv.multiplier)


# ------------------------------------------------------------------ the core


class Core:
    """The request → response cycle shared by the protocol cores.

    A subclass sets `protocol`, `MESSAGES` (its EXI message module), `STOP_REQUEST`,
    `ALLOWED` (state -> request classes), `HANDLERS` (request class -> method name),
    `start_state` and implements `failed_response` (the FAILED response of a request
    class).
    """

    protocol: ClassVar[V2gProtocol]
    MESSAGES: ClassVar[Any]  # the protocol's EXI message module (V2G_Message, ...)
    STOP_REQUEST: ClassVar[type]  # its SessionStop request class
    ALLOWED: ClassVar[Mapping[Any, frozenset[type]]]
    HANDLERS: ClassVar[Mapping[type, str]]
    # V2G_SECC_Msg_Performance_Time per response name (s): the service logs a slower one
    PERFORMANCE_S: ClassVar[Mapping[str, float]]

    def __init__(self, ctx: Context, state: Any, setup_deadline: float | None) -> None:
        self.ctx = ctx
        self.state = state
        self.session_id = b"\x00"
        self.evcc_id = b""
        self.payment_option: str | None = None
        self.energy_mode: str | None = None
        self.ended: End | None = None
        self._actions: list[Action] = []
        self._after: list[Action] = []  # bus actions of the request being answered
        self.established = False  # SessionSetupRes went out
        self._setup_deadline = setup_deadline  # from the TCP connection: see V2gSession
        self._sequence_deadline: float | None = None
        self._last_state_info: str | None = None
        self._pending_end: tuple[Outcome, str, float] | None = None
        self._schema = self.protocol.schema
        self.header: Any = None  # of the request being handled
        self.ev_state: str | None = None  # set by a handler: see Send.ev_state
        self.ev_power: bool | None = None  # set by a handler: see Send.ev_power
        self._ongoing_since: float | None = None
        self._stop_told_at: float | None = None  # EVSENotification=StopCharging sent

    # ------------------------------------------------------------------ outputs

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        if self.ended is not None:
            return None
        deadlines = [d for d in (self._setup_deadline, self._sequence_deadline) if d is not None]
        deadlines += self._timers()
        return min(deadlines, default=None)

    def _timers(self) -> list[float]:
        if self._stop_told_at is None:
            return []
        return [self._stop_told_at + self.ctx.settings.timers.stop_reaction_s]

    # ------------------------------------------------------------------ inputs

    def tick(self, now: float) -> None:
        if self.ended is not None:
            return
        timers = self.ctx.settings.timers
        if self._setup_deadline is not None and now >= self._setup_deadline:
            self._end(
                Outcome.FAILED,
                f"no SessionSetupReq within {timers.communication_setup_s:g} s "
                "(V2G_EVCC_CommunicationSetup_Timeout)",
            )
        elif self._sequence_deadline is not None and now >= self._sequence_deadline:
            self._end(
                Outcome.FAILED,
                f"no request within {timers.sequence_s:g} s (V2G_SECC_Sequence_Timeout)",
            )
        else:
            self._fire(now)

    def _fire(self, now: float) -> None:
        deadline = self._timers()
        if deadline and now >= deadline[0]:
            self._end(
                Outcome.FAILED,
                f"the EV did not stop within {self.ctx.settings.timers.stop_reaction_s:g} s "
                f"of EVSENotification=StopCharging ({self.ctx.view.stop_reason})",
            )

    def abort(self, now: float, reason: str) -> None:
        """The connection broke, the EV closed it or was unplugged."""
        if self.ended is None:
            self._end(Outcome.FAILED, reason)

    def receive(self, now: float, payload: bytes) -> None:
        if self.ended is not None:
            return
        started = time.perf_counter()
        try:
            message = exi.decode(self._schema, payload)
        except exi.ExiError as exc:
            self._undecodable(started, str(exc))
            return
        body = message.body.body_element
        kind = type(body)
        name = request_name(body)
        if kind not in self.HANDLERS:
            self._end(Outcome.FAILED, f"{name} is not a request this SECC answers")
            return
        if self.established and message.header.session_id != self.session_id:
            self._fail(
                started,
                kind,
                "FAILED_UnknownSession",
                f"{name} with session ID {message.header.session_id.hex().upper()}, "
                f"expected {self.session_id.hex().upper()}",
            )
            return
        if kind not in self.ALLOWED[self.state]:
            self._fail(
                started,
                kind,
                "FAILED_SequenceError",
                f"{name} is not allowed in state {self.state.name}",
            )
            return
        self._sequence_deadline = now + self.ctx.settings.timers.sequence_s
        self.header = message.header
        handler: Callable[[Any, Any, float], object] = getattr(type(self), self.HANDLERS[kind])
        try:
            response = handler(self, body, now)
        except Fail as failure:
            self._fail(started, kind, failure.code, failure.reason)
            return
        self._respond(started, name, response)
        state_info = STATE_INFO.get(name)
        if state_info is not None and state_info != self._last_state_info:
            self._state_info(state_info)
        if self._pending_end is not None:
            self._end(*self._pending_end)
        self._flush_after()

    # ------------------------------------------------------------------ helpers

    def failed_response(self, kind: type, code: str) -> object:
        raise NotImplementedError

    def expected(self) -> type | None:
        """The request a state waits for (named in the FAILED answer to undecodable
        input): the first by name of those it allows, SessionStop aside."""
        allowed = [k for k in self.ALLOWED[self.state] if k is not self.STOP_REQUEST]
        return min(allowed, key=lambda k: k.__name__) if allowed else None

    def wrap(self, body: object) -> object:
        """The V2G_Message around a response body."""
        m = self.MESSAGES
        return m.V2G_Message(
            header=m.MessageHeader(session_id=self.session_id), body=m.Body(body_element=body)
        )

    def _respond(self, started: float, request: str, body: object) -> None:
        payload = exi.encode(self.wrap(body), self._schema)
        code = str(getattr(body, "response_code", ""))
        ev_state, self.ev_state = self.ev_state, None
        ev_power, self.ev_power = self.ev_power, None
        ok = not code.startswith("FAILED")
        self._actions.append(
            Send(
                payload,
                request,
                type(body).__name__,
                code,
                time.perf_counter() - started,
                ev_state=ev_state if ok else None,
                ev_power=ev_power if ok else None,
            )
        )

    def _fail(self, started: float, kind: type, code: str, reason: str) -> None:
        name = "SessionStopReq" if kind.__name__ == "SessionStop" else kind.__name__
        self._respond(started, name, self.failed_response(kind, code))
        self._after.clear()
        self._end(Outcome.FAILED, f"{code}: {reason}")

    def _undecodable(self, started: float, reason: str) -> None:
        kind = self.expected()
        if kind is not None:
            self._fail(started, kind, "FAILED", f"undecodable EXI ({reason})")
        else:
            self._end(Outcome.FAILED, f"undecodable EXI ({reason})")

    def after(self, action: Publish | Request) -> None:
        """A bus action of the request being handled: it goes out after the response."""
        self._after.append(action)

    def _flush_after(self) -> None:
        self._actions.extend(self._after)
        self._after.clear()

    def must_stop(self, now: float) -> bool:
        """Whether the EV is to be told StopCharging (a stop was asked for, the EVSE is
        not ready, its RCD tripped); the first time starts the EV's reaction timer."""
        view = self.ctx.view
        ac = view.ac
        stop = (
            view.stop_reason is not None
            or view.status_code != "evse_ready"
            or (ac is not None and ac["rcd_error"])
        )
        if stop and self._stop_told_at is None:
            self._stop_told_at = now
        return stop

    def stopping(self) -> None:
        """The EV stopped (PowerDelivery stop): no more waiting for it to."""
        self._stop_told_at = None

    def ongoing(self, now: float, what: str) -> None:
        """An EVSEProcessing=Ongoing answer: FAILED once V2G_EVCC_Ongoing_Timeout is over."""
        if self._ongoing_since is None:
            self._ongoing_since = now
        elif now - self._ongoing_since >= self.ctx.settings.timers.ongoing_s:
            raise Fail(
                "FAILED",
                f"{what} still not done after {self.ctx.settings.timers.ongoing_s:g} s "
                "(V2G_EVCC_Ongoing_Timeout)",
            )

    def finished(self) -> None:
        """An EVSEProcessing=Finished answer: the next Ongoing starts afresh."""
        self._ongoing_since = None

    def negotiated(self) -> None:
        """SupportedAppProtocol chose this core: say so on the bus."""
        self._state_info("SupportedAppProtocol")
        self._flush_after()

    def session_started(self) -> None:
        self.established = True
        self._setup_deadline = None

    def _state_info(self, status: str, stop_action: str | None = None) -> None:
        self._last_state_info = status
        info: messages.Iso15118Info = {"protocol": self.protocol.value}
        if self.established:
            info["session_id"] = self.session_id.hex().upper()
            info["evcc_id"] = self.evcc_id.hex().upper()
            if self.payment_option is not None:
                info["selected_payment_option"] = (
                    "EIM" if self.payment_option == "ExternalPayment" else "PNC"
                )
        if stop_action is not None:
            info["stop_action"] = stop_action
        data: messages.Iso15118StateInfoUpdate = {
            "evse_id": self.ctx.setup.evse_id,
            "session_status": status,
            "info": info,
        }
        for topic in messages.ISO15118_STATE_INFO_UPDATE.topics:
            self.after(Publish(messages.ISO15118_STATE_INFO_UPDATE.make(data, topic)))

    def hlc_charging(self, status: bool, action: str | None = None) -> None:
        data: messages.HlcChargingUpdate = {"evse_id": self.ctx.setup.evse_id, "status": status}
        if action is not None:
            data["action"] = action
        for topic in messages.HLC_CHARGING_UPDATE.topics:
            self.after(Publish(messages.HLC_CHARGING_UPDATE.make(data, topic)))

    def _end(self, outcome: Outcome, reason: str, linger_s: float = 0.0) -> None:
        if self.ended is not None:
            return
        stop_action = {
            Outcome.COMPLETED: "Terminate",
            Outcome.PAUSED: "Pause",
            Outcome.FAILED: "Error",
        }[outcome]
        if self.established:  # a session was set up: say how it ended
            paused = outcome is Outcome.PAUSED
            self.hlc_charging(paused, "pause" if paused else None)
        self._state_info("Idle", stop_action)
        self.ended = End(outcome, reason, linger_s, dc=(self.energy_mode or "").startswith("DC"))
        self._flush_after()
        self._actions.append(self.ended)

    def end(self, outcome: Outcome, reason: str, linger_s: float = 0.0) -> None:
        """For handlers: the session ends once the response is out."""
        self._pending_end = (outcome, reason, linger_s)

    def request_bus(self, message: Message[Any]) -> None:
        self.after(Request(message))

    def publish_bus(self, message: Message[Any]) -> None:
        self.after(Publish(message))

    @property
    def evse_id(self) -> str:
        return self.ctx.setup.evse_id
