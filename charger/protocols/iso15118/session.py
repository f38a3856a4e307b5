"""One V2G communication session on one TCP/TLS connection, sans-IO: the
SupportedAppProtocol handshake, then the session core of the negotiated protocol.

`V2gSession` is what the transport drives: V2GTP frames in, actions out (see `core`).
It starts the communication-setup timer when the connection is made; SAP must come,
and the core's SessionSetup after it, within V2G_EVCC_CommunicationSetup_Timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from charger.protocols import exi
from charger.protocols.exi import app_protocol
from charger.protocols.iso15118 import sap
from charger.protocols.iso15118.core import Action, Context, Core, End, Outcome, Send
from charger.protocols.iso15118.din import DinCore
from charger.protocols.iso15118.iso2 import Iso2Core
from charger.protocols.iso15118.sap import Priority, V2gProtocol
from charger.protocols.iso15118.v2gtp import Frame, PayloadType

# One core per protocol; ISO 15118-20 cores join here (with their payload types).
CORES: dict[V2gProtocol, type[Iso2Core] | type[DinCore]] = {
    V2gProtocol.ISO_15118_2: Iso2Core,
    V2gProtocol.DIN_SPEC_70121: DinCore,
}


@dataclass(frozen=True, slots=True)
class SessionSettings:
    protocols: tuple[V2gProtocol, ...] = (V2gProtocol.ISO_15118_2, V2gProtocol.DIN_SPEC_70121)
    priority: Priority = Priority.EV


class V2gSession:
    def __init__(self, ctx: Context, settings: SessionSettings, now: float) -> None:
        self.ctx = ctx
        self._settings = settings
        self._setup_deadline = now + ctx.settings.timers.communication_setup_s
        self.core: Core | None = None
        self.protocol: V2gProtocol | None = None
        self._actions: list[Action] = []
        self.ended: End | None = None

    def drain(self) -> list[Action]:
        if self.core is not None:
            self._actions.extend(self.core.drain())
            if self.core.ended is not None:
                self.ended = self.core.ended
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        if self.ended is not None:
            return None
        if self.core is not None:
            return self.core.next_deadline()
        return self._setup_deadline

    def tick(self, now: float) -> None:
        if self.core is not None:
            self.core.tick(now)
        elif self.ended is None and now >= self._setup_deadline:
            self._end(
                f"no supportedAppProtocolReq within "
                f"{self.ctx.settings.timers.communication_setup_s:g} s "
                "(V2G_EVCC_CommunicationSetup_Timeout)"
            )

    def abort(self, now: float, reason: str) -> None:
        if self.core is not None:
            self.core.abort(now, reason)
        elif self.ended is None:
            self._end(reason)

    def receive(self, now: float, frame: Frame) -> None:
        if self.ended is not None:
            return
        if frame.payload_type != PayloadType.EXI:
            self.abort(now, f"V2GTP payload type 0x{frame.payload_type:04X} in this session")
            return
        if self.core is not None:
            self.core.receive(now, frame.payload)
            return
        self._app_protocol(now, frame.payload)

    def _app_protocol(self, now: float, payload: bytes) -> None:
        started = time.perf_counter()
        try:
            request = exi.decode(exi.Schema.APP_PROTOCOL, payload)
        except exi.ExiError as exc:
            self._end(f"undecodable supportedAppProtocolReq ({exc})")
            return
        if not isinstance(request, app_protocol.SupportedAppProtocolReq):
            self._end(f"{type(request).__name__} instead of supportedAppProtocolReq")
            return
        result = sap.negotiate(request, self._offered(), self._settings.priority)
        response = exi.encode(result.response)
        self._actions.append(
            Send(
                response,
                "SupportedAppProtocolReq",
                "SupportedAppProtocolRes",
                str(result.response.response_code),
                time.perf_counter() - started,
            )
        )
        if result.protocol is None:
            offered = ", ".join(
                f"{p.protocol_namespace} {p.version_number_major}.{p.version_number_minor}"
                for p in request.app_protocol
            )
            self._end(f"no common protocol (the EV offered: {offered or 'nothing'})")
            return
        self.protocol = result.protocol
        self.core = CORES[result.protocol](self.ctx, self._setup_deadline)
        self.core.negotiated()

    def _offered(self) -> tuple[V2gProtocol, ...]:
        """The enabled protocols this EVSE can serve (DIN SPEC 70121 is DC only)."""
        return tuple(
            p
            for p in self._settings.protocols
            if p is not V2gProtocol.DIN_SPEC_70121 or self.ctx.setup.dc
        )

    def _end(self, reason: str) -> None:
        self.ended = End(Outcome.FAILED, reason)
        self._actions.append(self.ended)
