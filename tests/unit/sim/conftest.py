"""Fixtures of the simulated car's EVCC tests: an EVCC core and our SECC's session core
back to back in memory (both sans-IO), time passed in by hand, a model car charged by
what the SECC says it delivers, and a stand-in for the CS that answers the SECC's bus
requests (cable check, setpoints, contactor) in its view at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from charger.bus.api import Message
from charger.protocols import exi
from charger.protocols.iso15118 import core as secc_core
from charger.protocols.iso15118.evse import Authorization, CableCheck, EvseSetup, EvseView
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.schedules import LimitsSchedules
from charger.protocols.iso15118.session import SessionSettings, V2gSession
from charger.protocols.iso15118.v2gtp import Frame, PayloadType
from charger.sim.evcc import core
from charger.sim.evcc.battery import Battery
from charger.sim.evcc.din import DinEvcc
from charger.sim.evcc.iso2 import Iso2Evcc
from charger.sim.evcc.standalone import ModelCar

EVSE_ID = "DE*TST*E0001"
LATENCY_S = 0.001  # each message on the wire
ISO2 = V2gProtocol.ISO_15118_2


def ac_limits() -> dict[str, Any]:
    return {
        "evse_id": EVSE_ID,
        "status_code": "evse_ready",
        "ac": {
            "max_current": {"l1": 32.0, "l2": 32.0, "l3": 32.0},
            "nominal_voltage": 230.0,
            "rcd_error": False,
        },
    }


def dc_limits() -> dict[str, Any]:
    return {
        "evse_id": EVSE_ID,
        "status_code": "evse_ready",
        "dc": {
            "present_voltage": 0.0,
            "present_current": 0.0,
            "max_current": 125.0,
            "min_current": 0.0,
            "max_voltage": 500.0,
            "min_voltage": 150.0,
            "max_power": 50000.0,
            "peak_current_ripple": 0.5,
            "current_reg_tolerance": 1.0,
            "isolation_status": "valid",
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class BackToBack:
    """The EVCC core against the SECC's V2gSession; `run()` until the EVCC ends."""

    evcc: core.EvccCore
    secc: V2gSession
    view: EvseView
    car: ModelCar
    clock: Clock
    requests: list[str] = field(default_factory=list)  # what the EVCC sent, in order
    sent: list[core.Send] = field(default_factory=list)
    responses: list[tuple[str, str]] = field(default_factory=list)  # (response, code)
    car_actions: list[core.Action] = field(default_factory=list)
    secc_ends: list[secc_core.End] = field(default_factory=list)
    bus: list[Message[Any]] = field(default_factory=list)
    secc_closed: bool = False
    drop_responses: bool = False  # the SECC goes silent
    output_follows: bool = True  # the CS's DC output reaches each setpoint at once
    on_loop: Callable[[BackToBack], None] | None = None  # after each loop response

    @property
    def now(self) -> float:
        return self.clock.now

    @now.setter
    def now(self, value: float) -> None:
        self.clock.now = value

    def run(self, max_steps: int = 5000) -> core.Ended:
        if self.evcc.ended is None and not self.requests:
            self.evcc.start(self.now)
        for _ in range(max_steps):
            self._evcc_actions()
            if self.evcc.ended is not None:
                return self.evcc.ended
            deadlines = [d for d in (self.evcc.next_deadline(), self.secc.next_deadline()) if d]
            if not deadlines:
                raise AssertionError("nothing left to happen and the EVCC has not ended")
            self.now = max(self.now, min(deadlines))
            self.secc.tick(self.now)
            self._secc_actions()
            self.evcc.tick(self.now)
        raise AssertionError(f"no end after {max_steps} steps: {self.requests[-10:]}")

    def _evcc_actions(self) -> None:
        while actions := self.evcc.drain():  # (a response can make the next request)
            self._apply(actions)

    def _apply(self, actions: list[core.Action]) -> None:
        for action in actions:
            if isinstance(action, core.Send):
                self.requests.append(action.request)
                self.sent.append(action)
                if self.secc_closed:
                    continue
                self.now += LATENCY_S
                self.secc.receive(self.now, Frame(PayloadType.EXI, action.payload))
                self._secc_actions()
            else:
                self.car_actions.append(action)
                if isinstance(action, core.Draw):
                    self.car.draw(self.now, action.current_a, action.voltage_v)

    def _secc_actions(self) -> None:
        for action in self.secc.drain():
            if isinstance(action, secc_core.Send):
                self.responses.append((action.response, action.code))
                if not self.drop_responses:
                    self.now += LATENCY_S
                    self.evcc.receive(self.now, action.payload)
                    if (
                        action.response in ("ChargingStatusRes", "CurrentDemandRes")
                        and self.on_loop
                    ):
                        self.on_loop(self)
            elif isinstance(action, secc_core.End):
                self.secc_ends.append(action)
                self.secc_closed = True
                self.evcc.abort(self.now, "the SECC closed the connection")
            else:
                message = action.message
                self.bus.append(message)
                self._cs(message)

    def _cs(self, message: Message[Any]) -> None:
        """The CS, at once: the cable check passes, the output follows the setpoint."""
        view, data = self.view, message.data
        if message.name == "cable_check":
            view.cable_check = CableCheck("finished", "valid", self.now)
        elif message.name == "power_electronics_setpoint" and self.output_follows:
            assert view.limits is not None
            dc = view.limits["dc"]
            dc["present_voltage"] = data["dc"]["voltage"] or 0.0
            charging = not data["is_precharge"] and data["dc"]["voltage"] > 0
            dc["present_current"] = data["dc"]["charge_current"] if charging else 0.0
        elif message.name == "cs_contactor_status":
            view.contactor = "closed"

    def sent_body(self, request: str, index: int = 0) -> Any:
        """The `index`-th request of that name the EVCC sent, decoded."""
        payloads = [s.payload for s in self.sent if s.request == request]
        return exi.decode(self.evcc.schema, payloads[index]).body.body_element

    def bus_names(self) -> list[str]:
        return [f"{m.name}.{m.type}" for m in self.bus]

    def actions_of(self, kind: type) -> list[Any]:
        return [a for a in self.car_actions if isinstance(a, kind)]


@pytest.fixture
def back_to_back() -> Callable[..., BackToBack]:
    """back_to_back(protocol=ISO2, dc=False, soc=40, capacity_wh=60000, timers=...,
    session_id=None, secc=<BackToBack to resume after>, **EvccSettings fields)."""

    def make(
        protocol: V2gProtocol = ISO2,
        *,
        dc: bool = False,
        soc: float = 40.0,
        capacity_wh: float = 60000.0,
        secc_timers: secc_core.Timers | None = None,
        session_id: bytes | None = None,
        after: BackToBack | None = None,
        **settings: Any,
    ) -> BackToBack:
        evcc_settings = core.EvccSettings(
            protocol=protocol, dc=dc, capacity_wh=capacity_wh, **settings
        )
        if after is not None:  # the same SECC context (a paused session), a new connection
            ctx, view = after.secc.ctx, after.view
            clock = after.clock
            car = ModelCar(after.car.battery, evcc_settings, clock)
        else:
            view = EvseView(EVSE_ID)
            view.limits = dc_limits() if dc else ac_limits()  # type: ignore[assignment]
            view.authorization = Authorization.ACCEPTED
            view.cp_state = "B2"
            ctx = secc_core.Context(
                EvseSetup(EVSE_ID, "veth", ac_phases=0 if dc else 3, dc=dc),
                view,
                LimitsSchedules(),
                secc_core.CoreSettings(timers=secc_timers or secc_core.Timers()),
                wall_clock=lambda: 1_700_000_000.0,
            )
            clock = Clock()
            car = ModelCar(Battery(capacity_wh, soc), evcc_settings, clock)
        cls = Iso2Evcc if protocol is ISO2 else DinEvcc
        evcc = cls(evcc_settings, car, session_id=session_id)
        secc = V2gSession(ctx, SessionSettings(), clock.now)
        return BackToBack(evcc, secc, view, car, clock)

    return make
