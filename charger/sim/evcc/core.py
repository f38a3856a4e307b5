"""What the EVCC's protocol cores share: their outputs, the EV's timers, the request
sequence of DIN SPEC 70121 and ISO 15118-2 (EIM) as one machine, and the misbehaviours.

A core is sans-IO, the mirror image of the SECC's (`charger.protocols.iso15118.core`):
`start(now)` once the TCP/TLS connection stands, `receive(now, payload)` for each EXI
message from the SECC, `tick(now)` at `next_deadline()`, `abort(now, reason)` when the
connection or the link goes away. `drain()` returns what to do, in order:

- `Send`: an EXI request to write (V2GTP payload type 0x8001);
- `Pilot`: the car's S2, "B" or "C" (C before CableCheck on DC, after PowerDeliveryRes
  Start on AC; B after PowerDeliveryRes Stop, or when the session fails);
- `EvPower`: DC, the car's contactor (closed after PowerDeliveryRes Start, opened after
  Stop or a failure);
- `Draw`: the current the car takes, AC per phase at the EVSE's nominal voltage, DC what
  the EVSE says it delivers (a model battery charges with it);
- `Ended`: the session is over (completed, paused, failed): close the connection.

The sequence, with the protocol's own message types supplied by the subclass:

    SAP -> SessionSetup -> ServiceDiscovery -> payment selection -> authorization*
    -> ChargeParameterDiscovery* -> AC: PowerDelivery(Start) -> ChargingStatus*
                                  -> DC: CableCheck* -> PreCharge* -> PowerDelivery(Start)
                                         -> CurrentDemand*
    -> PowerDelivery(Stop) -> DC: WeldingDetection* -> SessionStop (Terminate | Pause)

(* repeated: Ongoing, the loop, or until the voltage is there). The car stops at its
target state of charge, when the driver stops or pauses, when the EVSE says
StopCharging or is no longer ready, or after `charge_loops` loop messages. Every
response waits at most its V2G_EVCC_Msg_Timeout; a FAILED response code, an undecodable
or unexpected response, or any of the EV's timers ends the session as failed.

A misbehaving car (`misbehave`) does one wrong thing at its `misbehave_at_loop`-th
charging-loop request, to check the SECC's reaction: `wrong_sequence` sends
ServiceDiscoveryReq instead, `late` waits `late_s` (longer than the SECC's
V2G_SECC_Sequence_Timeout), `bad_exi` sends the request's EXI damaged.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from charger.protocols import exi
from charger.protocols.exi import app_protocol as ap
from charger.protocols.iso15118.core import Outcome, to_physical, value_of
from charger.protocols.iso15118.sap import V2gProtocol
from charger.sim.evcc import battery
from charger.sim.evcc.options import MISBEHAVIOURS

DEFAULT_MSG_TIMEOUT_S = 2.0  # V2G_EVCC_Msg_Timeout of most requests (both standards)
WELDING_SAFE_V = 60.0  # the output below this after the car opened its contactor: not welded
PRECHARGE_CURRENT_A = 2.0  # ISO 15118-2 / DIN: at most 2 A during PreCharge
EXCHANGES_KEPT = 2000
# SDP as the iso15118 package's EVCC does it (ISO 15118-2's re-sent SECCDiscoveryReq):
SDP_REQUESTS = 50  # SECCDiscoveryReq per session attempt; then the attempt has failed
SDP_INTERVAL_S = 0.25  # the wait for an SDP response before the request goes again


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True, slots=True)
class Send:
    payload: bytes
    request: str  # e.g. "CurrentDemandReq"


@dataclass(frozen=True, slots=True)
class Pilot:
    state: str  # "B" or "C"


@dataclass(frozen=True, slots=True)
class EvPower:
    on: bool


@dataclass(frozen=True, slots=True)
class Draw:
    current_a: float
    voltage_v: float


@dataclass(frozen=True, slots=True)
class Ended:
    outcome: Outcome
    reason: str
    session_id: bytes  # a paused session resumes with it
    code: str | None = None  # the SECC's FAILED response code, when that ended it


Action = Send | Pilot | EvPower | Draw | Ended


@dataclass(frozen=True, slots=True)
class Exchange:
    request: str
    response: str
    code: str
    elapsed_s: float  # request written -> response received, on the core's clock


# ------------------------------------------------------------------ inputs


class Vehicle(Protocol):
    """What the EVCC reads from the car it sits in."""

    @property
    def soc_percent(self) -> float: ...

    @property
    def battery_voltage_v(self) -> float:
        """The battery's voltage as PreCharge aims for it (DC)."""

    @property
    def wants_charge(self) -> bool: ...

    @property
    def paused(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Timers:
    """The EV's timers of ISO 15118-2 and DIN SPEC 70121 (and one of the car's own)."""

    communication_setup_s: float = 20.0  # V2G_EVCC_CommunicationSetup_Timeout
    ongoing_s: float = 60.0  # V2G_EVCC_Ongoing_Timeout: longest EVSEProcessing=Ongoing
    cable_check_s: float = 40.0  # V2G_EVCC_CableCheck_Timeout
    precharge_s: float = 7.0  # V2G_EVCC_PreCharge_Timeout
    welding_detection_s: float = 5.0  # the car's own: how long it waits for the voltage to fall


@dataclass(frozen=True, slots=True)
class EvccSettings:
    protocol: V2gProtocol = V2gProtocol.ISO_15118_2
    dc: bool = False
    evcc_id: bytes = bytes.fromhex("020000000001")  # the car's MAC address
    capacity_wh: float = 60000.0
    target_soc_percent: float = 100.0
    departure_time_s: int = 0  # 0: none given (ISO 15118-2 only)
    ac_phases: int = 3
    ac_max_current_a: float = 16.0
    ac_min_current_a: float = 6.0
    ac_max_voltage_v: float = 400.0
    dc_max_current_a: float = 200.0
    dc_max_voltage_v: float = 450.0
    dc_max_power_w: float | None = None  # None: max voltage x max current
    misbehave: tuple[str, ...] = ()
    misbehave_at_loop: int = 3
    late_s: float = 65.0  # `late`: beyond V2G_SECC_Sequence_Timeout (60 s)
    loop_interval_s: float = 0.25  # between charging-loop requests
    ongoing_interval_s: float = 0.1  # between repeated requests (Ongoing, PreCharge, ...)
    precharge_tolerance_v: float = 10.0  # PreCharge is done within this of the battery
    precharge_cycles: int = 0  # >0: done after this many PreChargeRes whatever the voltage
    charge_loops: int = 0  # >0: stop after this many charging-loop requests
    sdp_requests: int = SDP_REQUESTS  # (SDP is the shell's, `client.discover`)
    sdp_interval_s: float = SDP_INTERVAL_S
    # >1: longer message timeouts for a peer slower than the standard allows (the
    # harness's reference SECC and its Java codec); not conformant, for tests only
    msg_timeout_scale: float = 1.0
    timers: Timers = field(default_factory=Timers)

    def __post_init__(self) -> None:
        unknown = [m for m in self.misbehave if m not in MISBEHAVIOURS]
        if unknown:
            raise ValueError(f"unknown misbehaviour {unknown[0]!r}")
        if self.protocol is V2gProtocol.DIN_SPEC_70121 and not self.dc:
            raise ValueError("DIN SPEC 70121 is DC only")


class Step(enum.Enum):
    """What the core asks for (and then waits for the response of)."""

    SAP = "supportedAppProtocol"
    SESSION_SETUP = "SessionSetup"
    SERVICE_DISCOVERY = "ServiceDiscovery"
    PAYMENT_SELECTION = "payment selection"
    AUTHORIZATION = "authorization"
    CHARGE_PARAMETERS = "ChargeParameterDiscovery"
    CABLE_CHECK = "CableCheck"
    PRECHARGE = "PreCharge"
    POWER_DELIVERY_START = "PowerDelivery (start)"
    CHARGING_STATUS = "ChargingStatus"
    CURRENT_DEMAND = "CurrentDemand"
    METERING_RECEIPT = "MeteringReceipt"
    POWER_DELIVERY_STOP = "PowerDelivery (stop)"
    WELDING_DETECTION = "WeldingDetection"
    SESSION_STOP = "SessionStop"
    OUT_OF_SEQUENCE = "out of sequence"  # `wrong_sequence`


@dataclass(slots=True)
class EvseValues:
    """What the SECC said of its EVSE."""

    evse_id: str = ""
    max_current_a: float | None = None
    max_voltage_v: float | None = None
    max_power_w: float | None = None
    nominal_voltage_v: float = 230.0
    present_voltage_v: float = 0.0
    present_current_a: float = 0.0
    tuple_id: int = 1
    pmax_w: float | None = None  # the chosen schedule's first PMax


class EvccFail(Exception):
    """Raised by a step's handler: the session fails with this reason."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def damaged(payload: bytes, schema: exi.Schema) -> bytes:
    """`payload` cut so that it no longer decodes (the `bad_exi` misbehaviour)."""
    for candidate in (payload[: len(payload) // 2], payload[:2], b"\x80"):
        try:
            exi.decode(schema, candidate)
        except exi.ExiError:
            return candidate
    return b"\x00"  # no EXI header at all


def physical(module: Any, value: float, unit: str) -> Any:
    number, multiplier = to_physical(value)
    return module.PhysicalValue(value=number, multiplier=multiplier, unit=module.UnitSymbol(unit))


class EvccCore:
    """The EV side of one V2G communication session; see the module docstring.

    A subclass sets `protocol`, `module` (its message classes), `REQUESTS` (the request
    class of each step), `MSG_TIMEOUT_S` and implements `build` (the request body of a
    step) and the protocol's own readings: `choose_energy_mode`, `charge_parameters`,
    `ac_loop` (ISO 15118-2), `evse_id_text`.
    """

    protocol: ClassVar[V2gProtocol]
    module: ClassVar[Any]
    REQUESTS: ClassVar[Mapping[Step, str]]
    MSG_TIMEOUT_S: ClassVar[Mapping[str, float]]  # V2G_EVCC_Msg_Timeout by request
    can_pause: ClassVar[bool] = False

    def __init__(
        self, settings: EvccSettings, vehicle: Vehicle, *, session_id: bytes | None = None
    ) -> None:
        """`session_id`: a paused session's, to resume it (ISO 15118-2)."""
        self.settings = settings
        self.vehicle = vehicle
        self.schema = self.protocol.schema
        self.session_id = session_id or b"\x00"
        self.resuming = session_id is not None
        self.joined = False  # the SECC took up the paused session again
        self.evse = EvseValues()
        self.energy_mode = ""
        self.step: Step | None = None  # whose response the core waits for
        self.stage = "connected"  # the last step asked for (for the car's state)
        self.loops = 0  # charging-loop requests sent
        self.stop_reason: str | None = None
        self.pause = False  # the session ends with SessionStop(Pause)
        self.note: str | None = None  # something worth saying at the end (welding)
        self.ended: Ended | None = None
        self.exchanges: collections.deque[Exchange] = collections.deque(maxlen=EXCHANGES_KEPT)
        self.received = 0  # responses received (the exchanges keep the latest)
        self._actions: list[Action] = []
        self._sent_at = 0.0
        self._response_deadline: float | None = None
        self._setup_deadline: float | None = None
        self._next: tuple[float, Step] | None = None
        self._since: dict[str, float] = {}
        self._damage_next = False
        self._misbehaved = False
        self._precharges = 0
        self._precharge_target_v = 0.0
        self._pilot = "B"
        self._powered = False  # DC: the car's contactor is closed
        self._drawing = 0.0  # AC: the current the car draws
        self.receipt_meter: Any = None  # the MeterInfo a MeteringReceiptReq signs

    # ------------------------------------------------------------------ outputs

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        if self.ended is not None:
            return None
        deadlines = [d for d in (self._response_deadline, self._setup_deadline) if d is not None]
        if self._next is not None:
            deadlines.append(self._next[0])
        return min(deadlines, default=None)

    # ------------------------------------------------------------------ inputs

    def start(self, now: float) -> None:
        """The connection stands: SupportedAppProtocolReq goes out."""
        self._setup_deadline = now + self.settings.timers.communication_setup_s
        self._send(now, Step.SAP)

    def tick(self, now: float) -> None:
        if self.ended is not None:
            return
        if self._response_deadline is not None and now >= self._response_deadline:
            request = self.request_name(self.step) if self.step is not None else "?"
            timeout = self.msg_timeout_s(request)
            self._fail(f"no response to {request} within {timeout:g} s (V2G_EVCC_Msg_Timeout)")
        elif self._setup_deadline is not None and now >= self._setup_deadline:
            self._fail(
                f"no SessionSetupRes within {self.settings.timers.communication_setup_s:g} s "
                "(V2G_EVCC_CommunicationSetup_Timeout)"
            )
        elif self._next is not None and now >= self._next[0]:
            step = self._next[1]
            self._next = None
            self._send(now, step)

    def abort(self, now: float, reason: str) -> None:
        """The connection broke or closed, or the link went away."""
        if self.ended is None:
            self._fail(reason)

    def receive(self, now: float, payload: bytes) -> None:
        if self.ended is not None:
            return
        step = self.step
        if step is None:
            self._fail("a message from the SECC while no request was outstanding")
            return
        request = self.request_name(step)
        try:
            schema = exi.Schema.APP_PROTOCOL if step is Step.SAP else self.schema
            message = exi.decode(schema, payload)
        except exi.ExiError as exc:
            self._fail(f"undecodable response to {request} ({exc})")
            return
        body: Any = message if step is Step.SAP else message.body.body_element
        name = type(body).__name__
        code = str(getattr(body, "response_code", ""))
        self.step, self._response_deadline = None, None
        self.exchanges.append(Exchange(request, name, code, now - self._sent_at))
        self.received += 1
        if code.startswith(("FAILED", "Failed")):
            self._fail(f"{name} {code} (to {request})", code)
            return
        expected = self.response_name(request)
        if name != expected:
            self._fail(f"{name} in answer to {request}, expected {expected}")
            return
        if step not in (Step.SAP, Step.SESSION_SETUP) and (
            message.header.session_id != self.session_id
        ):
            self._fail(
                f"{name} with session ID {message.header.session_id.hex().upper()}, "
                f"expected {self.session_id.hex().upper()}"
            )
            return
        try:
            self._handle(step, message, body, now)
        except EvccFail as failure:
            self._fail(failure.reason, failure.code)

    # ------------------------------------------------------------------ the sequence

    def _handle(self, step: Step, message: Any, body: Any, now: float) -> None:
        s = self.settings
        if step is Step.SAP:
            if body.schema_id != 1:
                raise EvccFail(f"SupportedAppProtocolRes chose schema {body.schema_id}, offered 1")
            self._then(now, Step.SESSION_SETUP)
        elif step is Step.SESSION_SETUP:
            self.session_id = message.header.session_id
            self.joined = str(body.response_code) == "OK_OldSessionJoined"
            self._setup_deadline = None
            self.evse.evse_id = self.evse_id_text(body.evseid)
            self._then(now, Step.SERVICE_DISCOVERY)
        elif step is Step.SERVICE_DISCOVERY:
            self.energy_mode = self.choose_energy_mode(body)
            self._then(now, Step.PAYMENT_SELECTION)
        elif step is Step.PAYMENT_SELECTION:
            self._then(now, Step.AUTHORIZATION)
        elif step is Step.AUTHORIZATION:
            if self._finished(body, "authorization", now):
                self._then(now, Step.CHARGE_PARAMETERS)
            else:
                self._then(now, Step.AUTHORIZATION, s.ongoing_interval_s)
        elif step is Step.CHARGE_PARAMETERS:
            if not self._finished(body, "ChargeParameterDiscovery", now):
                self._then(now, Step.CHARGE_PARAMETERS, s.ongoing_interval_s)
                return
            self.charge_parameters(body)
            if s.dc:
                self._set_pilot("C")  # S2 closed before the cable check
                self._then(now, Step.CABLE_CHECK)
            else:
                self._then(now, Step.POWER_DELIVERY_START)
        elif step is Step.CABLE_CHECK:
            self._cable_check(body, now)
        elif step is Step.PRECHARGE:
            self._pre_charge(body, now)
        elif step is Step.POWER_DELIVERY_START:
            if s.dc:
                self._powered = True
                self._actions.append(EvPower(True))
            else:
                self._set_pilot("C")
                self._draw(self.ac_current_a())
            self._loop(now)
        elif step in (Step.CHARGING_STATUS, Step.CURRENT_DEMAND):
            evse_stop = self.dc_loop(body) if s.dc else self.ac_loop(body)
            reason = evse_stop or self._own_stop()
            if reason is not None:
                self.stop_reason = reason
                self._then(now, Step.POWER_DELIVERY_STOP)
            elif getattr(body, "receipt_required", None) and body.meter_info is not None:
                self.receipt_meter = body.meter_info
                self._then(now, Step.METERING_RECEIPT)
            else:
                self._loop(now)
        elif step is Step.METERING_RECEIPT:
            self._loop(now)
        elif step is Step.POWER_DELIVERY_STOP:
            if s.dc:
                self._powered = False
                self._actions.append(EvPower(False))
                self._then(now, Step.WELDING_DETECTION)
            else:
                self._draw(0.0)
                self._set_pilot("B")
                self._then(now, Step.SESSION_STOP)
        elif step is Step.WELDING_DETECTION:
            self._welding_detection(body, now)
        elif step is Step.SESSION_STOP:
            self._set_pilot("B")  # the session is over: S2 open
            outcome = Outcome.PAUSED if self.pause else Outcome.COMPLETED
            self._end(Ended(outcome, self.stop_reason or "stopped", self.session_id))
        else:  # OUT_OF_SEQUENCE answered OK
            raise EvccFail(f"the SECC accepted {self.request_name(step)} in the charging loop")

    def _finished(self, body: Any, what: str, now: float) -> bool:
        """EVSEProcessing Finished, or Ongoing within V2G_EVCC_Ongoing_Timeout."""
        if str(body.evse_processing) == "Finished":
            self._since.pop("ongoing", None)
            return True
        since = self._since.setdefault("ongoing", now)
        if now - since >= self.settings.timers.ongoing_s:
            raise EvccFail(
                f"{what} still Ongoing after {self.settings.timers.ongoing_s:g} s "
                "(V2G_EVCC_Ongoing_Timeout)"
            )
        return False

    def _cable_check(self, body: Any, now: float) -> None:
        since = self._since.setdefault("cable_check", now)
        if str(body.evse_processing) == "Finished":  # (an Ongoing one has no result yet)
            isolation = body.dc_evse_status.evse_isolation_status
            if isolation is not None and str(isolation) in ("Invalid", "Fault"):
                raise EvccFail(f"cable check: isolation {isolation}")
            self._then(now, Step.PRECHARGE)
        elif now - since >= self.settings.timers.cable_check_s:
            raise EvccFail(
                f"cable check not finished within {self.settings.timers.cable_check_s:g} s "
                "(V2G_EVCC_CableCheck_Timeout)"
            )
        else:
            self._then(now, Step.CABLE_CHECK, self.settings.ongoing_interval_s)

    def _pre_charge(self, body: Any, now: float) -> None:
        s = self.settings
        since = self._since.setdefault("precharge", now)
        self._precharges += 1
        present = value_of(body.evse_present_voltage) or 0.0
        self.evse.present_voltage_v = present
        matched = abs(present - self._precharge_target_v) <= s.precharge_tolerance_v
        if matched or (s.precharge_cycles and self._precharges >= s.precharge_cycles):
            self._then(now, Step.POWER_DELIVERY_START)
        elif now - since >= s.timers.precharge_s:
            raise EvccFail(
                f"pre-charge: the EVSE at {present:g} V, the battery at "
                f"{self._precharge_target_v:g} V after {s.timers.precharge_s:g} s "
                "(V2G_EVCC_PreCharge_Timeout)"
            )
        else:
            self._then(now, Step.PRECHARGE, s.ongoing_interval_s)

    def _welding_detection(self, body: Any, now: float) -> None:
        since = self._since.setdefault("welding", now)
        present = value_of(body.evse_present_voltage) or 0.0
        self.evse.present_voltage_v = present
        if present <= WELDING_SAFE_V:
            self._then(now, Step.SESSION_STOP)
        elif now - since >= self.settings.timers.welding_detection_s:
            self.note = f"welding detection: the output still at {present:g} V"
            self._then(now, Step.SESSION_STOP)
        else:
            self._then(now, Step.WELDING_DETECTION, self.settings.ongoing_interval_s)

    def _own_stop(self) -> str | None:
        """Why the car itself ends the charging loop now, if it does."""
        s, car = self.settings, self.vehicle
        if s.charge_loops and self.loops >= s.charge_loops:
            return f"{self.loops} charging-loop messages"
        if car.soc_percent >= s.target_soc_percent:
            return f"target state of charge {s.target_soc_percent:g} % reached"
        if not car.wants_charge:
            return "the driver stopped charging"
        if car.paused and self.can_pause:
            self.pause = True
            return "the driver paused charging"
        return None

    def _loop(self, now: float) -> None:
        """The next charging-loop request, or this session's misbehaviour instead."""
        s = self.settings
        step = Step.CURRENT_DEMAND if s.dc else Step.CHARGING_STATUS
        delay = s.loop_interval_s
        if s.misbehave and not self._misbehaved and self.loops + 1 >= s.misbehave_at_loop:
            self._misbehaved = True
            what = s.misbehave[0]
            if what == "wrong_sequence":
                step = Step.OUT_OF_SEQUENCE
            elif what == "late":
                delay = s.late_s
            else:  # bad_exi
                self._damage_next = True
        self._then(now, step, delay)

    # ------------------------------------------------------------------ sending

    def _then(self, now: float, step: Step, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            self._next = (now + delay_s, step)
        else:
            self._send(now, step)

    def _send(self, now: float, step: Step) -> None:
        if step is Step.SAP:
            payload = exi.encode(self._sap_request())
        else:
            if step is Step.PRECHARGE:
                self._precharge_target_v = self.vehicle.battery_voltage_v
            if step in (Step.CHARGING_STATUS, Step.CURRENT_DEMAND, Step.OUT_OF_SEQUENCE):
                self.loops += 1
            body = self.build(step, now)
            message = self.module.V2G_Message(
                header=self.module.MessageHeader(session_id=self.session_id),
                body=self.module.Body(body_element=body),
            )
            payload = exi.encode(message, self.schema)
            if self._damage_next:
                self._damage_next = False
                payload = damaged(payload, self.schema)
        request = self.request_name(step)
        self._actions.append(Send(payload, request))
        self.step, self.stage = step, step.value
        self._sent_at = now
        self._response_deadline = now + self.msg_timeout_s(request)

    def _sap_request(self) -> ap.SupportedAppProtocolReq:
        p = self.protocol
        return ap.SupportedAppProtocolReq(
            app_protocol=[
                ap.AppProtocol(
                    protocol_namespace=p.namespace,
                    version_number_major=p.major,
                    version_number_minor=p.minor,
                    schema_id=1,
                    priority=1,
                )
            ]
        )

    def msg_timeout_s(self, request: str) -> float:
        timeout = self.MSG_TIMEOUT_S.get(request, DEFAULT_MSG_TIMEOUT_S)
        return timeout * self.settings.msg_timeout_scale

    def request_name(self, step: Step) -> str:
        return "SupportedAppProtocolReq" if step is Step.SAP else self.REQUESTS[step]

    @staticmethod
    def response_name(request: str) -> str:
        return request[:-3] + "Res" if request.endswith("Req") else request + "Res"

    # ------------------------------------------------------------------ the car

    def _set_pilot(self, state: str) -> None:
        if state != self._pilot:
            self._pilot = state
            self._actions.append(Pilot(state))

    def _draw(self, current_a: float) -> None:
        if current_a != self._drawing:
            self._drawing = current_a
            self._actions.append(Draw(current_a, self.evse.nominal_voltage_v))

    def _fail(self, reason: str, code: str | None = None) -> None:
        """Ends the session as failed; the car stops taking energy first."""
        if self.ended is not None:
            return
        if self._powered:
            self._powered = False
            self._actions.append(EvPower(False))
        if self._drawing:
            self._draw(0.0)
        self._set_pilot("B")
        self._end(Ended(Outcome.FAILED, reason, self.session_id, code))

    def _end(self, ended: Ended) -> None:
        self.ended = ended
        self.step = None
        self._next = self._response_deadline = self._setup_deadline = None
        self._actions.append(ended)

    # ------------------------------------------------------------------ values

    @property
    def soc(self) -> int:
        return max(0, min(100, int(self.vehicle.soc_percent)))

    def ac_current_a(self) -> float:
        """What an AC car draws per phase: its maximum within the EVSE's."""
        evse = self.evse.max_current_a
        return (
            self.settings.ac_max_current_a
            if evse is None
            else min(self.settings.ac_max_current_a, evse)
        )

    def dc_max_power_w(self) -> float:
        s = self.settings
        return s.dc_max_power_w or s.dc_max_voltage_v * s.dc_max_current_a

    def dc_target(self) -> tuple[float, float]:
        """CurrentDemand's target voltage and current: the car's maximum voltage (the
        current is what regulates) and its charging curve, within the EVSE's limits."""
        s, evse = self.settings, self.evse
        voltage = s.dc_max_voltage_v
        if evse.max_voltage_v is not None:
            voltage = min(voltage, evse.max_voltage_v)
        current = battery.allowed_current_a(self.vehicle.soc_percent, s.dc_max_current_a)
        if evse.max_current_a is not None:
            current = min(current, evse.max_current_a)
        power = self.dc_max_power_w()
        if evse.max_power_w is not None:
            power = min(power, evse.max_power_w)
        if voltage > 0:
            current = min(current, power / voltage)
        return voltage, max(0.0, current)

    def energy_request_wh(self) -> float:
        s = self.settings
        return max(0.0, (s.target_soc_percent - self.vehicle.soc_percent) / 100.0 * s.capacity_wh)

    def charging_power_w(self) -> float:
        if self.settings.dc:
            return self.evse.present_voltage_v * self.evse.present_current_a
        phases = 1 if self.energy_mode == "AC_single_phase_core" else self.settings.ac_phases
        return self._drawing * self.evse.nominal_voltage_v * phases

    def seconds_to(self, soc_percent: float) -> float | None:
        return battery.seconds_to(
            self.vehicle.soc_percent,
            soc_percent,
            self.settings.capacity_wh,
            self.charging_power_w(),
        )

    def dc_loop(self, body: Any) -> str | None:
        """A CurrentDemandRes (both protocols name its fields alike): the present values
        and limits; why the EVSE wants to stop, if it does."""
        evse = self.evse
        evse.present_voltage_v = value_of(body.evse_present_voltage) or 0.0
        evse.present_current_a = value_of(body.evse_present_current) or 0.0
        for attr, key in (
            ("max_voltage_v", "evse_maximum_voltage_limit"),
            ("max_current_a", "evse_maximum_current_limit"),
            ("max_power_w", "evse_maximum_power_limit"),
        ):
            limit = value_of(getattr(body, key))
            if limit is not None:
                setattr(evse, attr, limit)
        self._actions.append(Draw(evse.present_current_a, evse.present_voltage_v))
        status = body.dc_evse_status
        if str(status.evse_notification) == "StopCharging":
            return "the EVSE asked to stop (EVSENotification StopCharging)"
        if str(status.evse_status_code) != "EVSE_Ready":
            return f"the EVSE reports {status.evse_status_code}"
        return None

    def status(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "session_id": self.session_id.hex().upper(),
            "evse_id": self.evse.evse_id,
            "energy_mode": self.energy_mode,
            "loops": self.loops,
        }

    # ------------------------------------------------------------------ protocol hooks

    def build(self, step: Step, now: float) -> object:
        raise NotImplementedError

    def choose_energy_mode(self, body: Any) -> str:
        raise NotImplementedError

    def charge_parameters(self, body: Any) -> None:
        raise NotImplementedError

    def ac_loop(self, body: Any) -> str | None:
        raise EvccFail(f"{self.protocol.value} has no AC charging loop")

    def evse_id_text(self, evseid: Any) -> str:
        return str(evseid)
