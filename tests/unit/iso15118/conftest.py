"""Fixtures of the SECC's unit tests: a sans-IO EV that drives a `V2gSession` with the
project's own codec, standard EV requests of ISO 15118-2 and DIN SPEC 70121, and an
EVSE view with limits and authorization as a test wants them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from charger.bus.api import Message
from charger.protocols import exi
from charger.protocols.exi import app_protocol as ap
from charger.protocols.exi import din, iso2
from charger.protocols.iso15118.core import (
    Action,
    Context,
    CoreSettings,
    End,
    Publish,
    Request,
    Send,
    Timers,
)
from charger.protocols.iso15118.evse import Authorization, EvseSetup, EvseView
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.schedules import LimitsSchedules
from charger.protocols.iso15118.session import SessionSettings, V2gSession
from charger.protocols.iso15118.v2gtp import Frame, PayloadType

EVSE_ID = "DE*TST*E0001"
NAMESPACES = {
    V2gProtocol.ISO_15118_2: "urn:iso:15118:2:2013:MsgDef",
    V2gProtocol.DIN_SPEC_70121: "urn:din:70121:2012:MsgDef",
}


def ac_limits(current_a: float = 32.0) -> dict[str, Any]:
    return {
        "evse_id": EVSE_ID,
        "status_code": "evse_ready",
        "ac": {
            "max_current": {"l1": current_a, "l2": current_a, "l3": current_a},
            "nominal_voltage": 230.0,
            "rcd_error": False,
        },
    }


def dc_limits(present_v: float = 0.0, present_a: float = 0.0) -> dict[str, Any]:
    return {
        "evse_id": EVSE_ID,
        "status_code": "evse_ready",
        "dc": {
            "present_voltage": present_v,
            "present_current": present_a,
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


@dataclass
class Reply:
    body: Any  # the decoded response body (or SupportedAppProtocolRes)
    send: Send
    actions: list[Action]
    header: Any = None

    @property
    def code(self) -> str:
        return self.send.code

    @property
    def bus(self) -> list[Message[Any]]:
        return [a.message for a in self.actions if isinstance(a, Publish | Request)]

    def names(self) -> list[str]:
        return [f"{m.name}.{m.type}" for m in self.bus]

    @property
    def end(self) -> End | None:
        return next((a for a in self.actions if isinstance(a, End)), None)


@dataclass
class Ev:
    """Drives one V2gSession as an EV would, answers decoded with the project's codec."""

    protocol: V2gProtocol
    session: V2gSession
    view: EvseView
    ctx: Context
    now: float = 0.0
    session_id: bytes = b"\x00"
    actions: list[Action] = field(default_factory=list)

    @property
    def module(self) -> Any:
        return iso2 if self.protocol is V2gProtocol.ISO_15118_2 else din

    @property
    def schema(self) -> exi.Schema:
        return self.protocol.schema

    def sap(self, *offers: tuple[V2gProtocol, int]) -> Reply:
        offers = offers or ((self.protocol, 1),)
        request = ap.SupportedAppProtocolReq(
            app_protocol=[
                ap.AppProtocol(
                    protocol_namespace=NAMESPACES[p],
                    version_number_major=2,
                    version_number_minor=0,
                    schema_id=i + 1,
                    priority=priority,
                )
                for i, (p, priority) in enumerate(offers)
            ]
        )
        return self.raw(exi.encode(request), app=True)

    def raw(self, payload: bytes, *, app: bool = False) -> Reply:
        self.session.receive(self.now, Frame(PayloadType.EXI, payload))
        return self._reply(app)

    def send(self, body: object, session_id: bytes | None = None) -> Reply:
        m = self.module
        message = m.V2G_Message(
            header=m.MessageHeader(
                session_id=self.session_id if session_id is None else session_id
            ),
            body=m.Body(body_element=body),
        )
        reply = self.raw(exi.encode(message))
        if type(reply.body).__name__ == "SessionSetupRes" and not reply.code.startswith("FAILED"):
            self.session_id = reply.header.session_id
        return reply

    def tick(self, seconds: float) -> list[Action]:
        self.now += seconds
        self.session.tick(self.now)
        actions = self.session.drain()
        self.actions += actions
        return actions

    def _reply(self, app: bool) -> Reply:
        actions = self.session.drain()
        self.actions += actions
        sends = [a for a in actions if isinstance(a, Send)]
        if not sends:
            return Reply(None, Send(b"", "", "", "", 0.0), actions)
        assert actions[0] is sends[0], "the response goes out before any bus action"
        (send,) = sends
        if app:
            body = exi.decode(exi.Schema.APP_PROTOCOL, send.payload)
            return Reply(body, send, actions)
        message = exi.decode(self.schema, send.payload)
        return Reply(message.body.body_element, send, actions, message.header)

    @property
    def ended(self) -> End | None:
        return self.session.ended


class Iso2Requests:
    """Standard ISO 15118-2 requests of an EIM session."""

    m = iso2

    def pv(self, value: int, unit: str, multiplier: int = 0) -> iso2.PhysicalValue:
        return iso2.PhysicalValue(value=value, multiplier=multiplier, unit=iso2.UnitSymbol(unit))

    def session_setup(self) -> iso2.SessionSetupReq:
        return iso2.SessionSetupReq(evccid=bytes.fromhex("02000000E501"))

    def service_discovery(self) -> iso2.ServiceDiscoveryReq:
        return iso2.ServiceDiscoveryReq()

    def payment(self, option: str = "ExternalPayment", services: tuple[int, ...] = (1,)) -> Any:
        return iso2.PaymentServiceSelectionReq(
            selected_payment_option=iso2.PaymentOption(option),
            selected_service_list=iso2.SelectedServiceList(
                selected_service=[iso2.SelectedService(service_id=i) for i in services]
            ),
        )

    def authorization(self) -> iso2.AuthorizationReq:
        return iso2.AuthorizationReq()

    def cpd_ac(self, mode: str = "AC_three_phase_core") -> iso2.ChargeParameterDiscoveryReq:
        return iso2.ChargeParameterDiscoveryReq(
            requested_energy_transfer_mode=iso2.EnergyTransferMode(mode),
            ev_charge_parameter=iso2.AC_EVChargeParameter(
                departure_time=0,
                e_amount=self.pv(60, "Wh"),
                ev_max_voltage=self.pv(400, "V"),
                ev_max_current=self.pv(32000, "A", -3),
                ev_min_current=self.pv(10, "A"),
            ),
        )

    def dc_status(self, soc: int = 10) -> iso2.DC_EVStatus:
        return iso2.DC_EVStatus(
            ev_ready=True, ev_error_code=iso2.DC_EVErrorCode.NO_ERROR, evresssoc=soc
        )

    def cpd_dc(self) -> iso2.ChargeParameterDiscoveryReq:
        return iso2.ChargeParameterDiscoveryReq(
            requested_energy_transfer_mode=iso2.EnergyTransferMode.DC_extended,
            ev_charge_parameter=iso2.DC_EVChargeParameter(
                dc_ev_status=self.dc_status(),
                ev_maximum_current_limit=self.pv(32000, "A", -3),
                ev_maximum_voltage_limit=self.pv(50, "V", 1),
                ev_maximum_power_limit=self.pv(8000, "W", 1),
                ev_energy_capacity=self.pv(7000, "Wh", 1),
                full_soc=90,
                bulk_soc=80,
            ),
        )

    def power_delivery(
        self, progress: str = "Start", tuple_id: int = 1, profile_w: int | None = None
    ) -> iso2.PowerDeliveryReq:
        profile = None
        if profile_w is not None:
            profile = iso2.ChargingProfile(
                profile_entry=[
                    iso2.ProfileEntry(
                        charging_profile_entry_start=0,
                        charging_profile_entry_max_power=self.pv(profile_w, "W", 1),
                    )
                ]
            )
        return iso2.PowerDeliveryReq(
            charge_progress=iso2.ChargeProgress(progress),
            sa_schedule_tuple_id=tuple_id,
            charging_profile=profile,
        )

    def power_delivery_dc(self, progress: str = "Start") -> iso2.PowerDeliveryReq:
        return iso2.PowerDeliveryReq(
            charge_progress=iso2.ChargeProgress(progress),
            sa_schedule_tuple_id=1,
            ev_power_delivery_parameter=iso2.DC_EVPowerDeliveryParameter(
                dc_ev_status=self.dc_status(), charging_complete=progress == "Stop"
            ),
        )

    def charging_status(self) -> iso2.ChargingStatusReq:
        return iso2.ChargingStatusReq()

    def cable_check(self) -> iso2.CableCheckReq:
        return iso2.CableCheckReq(dc_ev_status=self.dc_status())

    def pre_charge(self, volts: int = 400, amps: int = 1) -> iso2.PreChargeReq:
        return iso2.PreChargeReq(
            dc_ev_status=self.dc_status(),
            ev_target_voltage=self.pv(volts, "V"),
            ev_target_current=self.pv(amps, "A"),
        )

    def current_demand(self, volts: int = 400, amps: int = 100, soc: int = 30) -> Any:
        return iso2.CurrentDemandReq(
            dc_ev_status=self.dc_status(soc),
            ev_target_current=self.pv(amps, "A"),
            charging_complete=False,
            ev_target_voltage=self.pv(volts, "V"),
            ev_maximum_voltage_limit=self.pv(450, "V"),
            remaining_time_to_full_soc=self.pv(1200, "s"),
        )

    def welding(self) -> iso2.WeldingDetectionReq:
        return iso2.WeldingDetectionReq(dc_ev_status=self.dc_status(100))

    def session_stop(self, how: str = "Terminate") -> iso2.SessionStopReq:
        return iso2.SessionStopReq(charging_session=iso2.ChargingSession(how))


class DinRequests:
    """Standard DIN SPEC 70121 requests of a DC session."""

    def pv(self, value: int, unit: str, multiplier: int = 0) -> din.PhysicalValue:
        return din.PhysicalValue(value=value, multiplier=multiplier, unit=din.UnitSymbol(unit))

    def dc_status(self, soc: int = 10) -> din.DC_EVStatus:
        return din.DC_EVStatus(
            ev_ready=True, ev_error_code=din.DC_EVErrorCode.NO_ERROR, evresssoc=soc
        )

    def session_setup(self) -> din.SessionSetupReq:
        return din.SessionSetupReq(evccid=bytes.fromhex("02000000E501"))

    def service_discovery(self) -> din.ServiceDiscoveryReq:
        return din.ServiceDiscoveryReq()

    def payment(self) -> din.ServicePaymentSelectionReq:
        return din.ServicePaymentSelectionReq(
            selected_payment_option=din.PaymentOption.ExternalPayment,
            selected_service_list=din.SelectedServiceList(
                selected_service=[din.SelectedService(service_id=1)]
            ),
        )

    def authorization(self) -> din.ContractAuthenticationReq:
        return din.ContractAuthenticationReq()

    def cpd(self) -> din.ChargeParameterDiscoveryReq:
        return din.ChargeParameterDiscoveryReq(
            ev_requested_energy_transfer_type=din.EVRequestedEnergyTransfer.DC_extended,
            ev_charge_parameter=din.DC_EVChargeParameter(
                dc_ev_status=self.dc_status(),
                ev_maximum_current_limit=self.pv(32000, "A", -3),
                ev_maximum_voltage_limit=self.pv(50, "V", 1),
            ),
        )

    def cable_check(self) -> din.CableCheckReq:
        return din.CableCheckReq(dc_ev_status=self.dc_status())

    def pre_charge(self, volts: int = 400, amps: int = 1) -> din.PreChargeReq:
        return din.PreChargeReq(
            dc_ev_status=self.dc_status(),
            ev_target_voltage=self.pv(volts, "V"),
            ev_target_current=self.pv(amps, "A"),
        )

    def power_delivery(self, ready: bool) -> din.PowerDeliveryReq:
        return din.PowerDeliveryReq(
            ready_to_charge_state=ready,
            ev_power_delivery_parameter=din.DC_EVPowerDeliveryParameter(
                dc_ev_status=self.dc_status(), charging_complete=not ready
            ),
        )

    def current_demand(self, volts: int = 400, amps: int = 100, soc: int = 30) -> Any:
        return din.CurrentDemandReq(
            dc_ev_status=self.dc_status(soc),
            ev_target_current=self.pv(amps, "A"),
            charging_complete=False,
            ev_target_voltage=self.pv(volts, "V"),
        )

    def welding(self) -> din.WeldingDetectionReq:
        return din.WeldingDetectionReq(dc_ev_status=self.dc_status(100))

    def session_stop(self) -> din.SessionStop:
        return din.SessionStop()


class Limits:
    ac = staticmethod(ac_limits)
    dc = staticmethod(dc_limits)


@pytest.fixture
def limits() -> Limits:
    """cs_status_and_limits entries: limits.ac(current_a), limits.dc(present_v, present_a)"""
    return Limits()


@pytest.fixture
def iso2_req() -> Iso2Requests:
    return Iso2Requests()


@pytest.fixture
def din_req() -> DinRequests:
    return DinRequests()


@pytest.fixture
def make_ev() -> Callable[..., Ev]:
    """make_ev(protocol, dc=..., limits=..., authorization=..., timers=..., **core settings)"""

    def make(
        protocol: V2gProtocol = V2gProtocol.ISO_15118_2,
        *,
        dc: bool = False,
        ac_phases: int = 3,
        limits: dict[str, Any] | None = None,
        authorization: Authorization = Authorization.ACCEPTED,
        timers: Timers | None = None,
        protocols: tuple[V2gProtocol, ...] = (V2gProtocol.ISO_15118_2, V2gProtocol.DIN_SPEC_70121),
        ctx: Context | None = None,
        **core: Any,
    ) -> Ev:
        if ctx is None:
            setup = EvseSetup(EVSE_ID, "v2g0", ac_phases=0 if dc else ac_phases, dc=dc)
            view = EvseView(EVSE_ID)
            view.limits = limits if limits is not None else (dc_limits() if dc else ac_limits())  # type: ignore[assignment]
            view.authorization = authorization
            view.cp_state = "B2"
            ids = iter(bytes([i]) * 8 for i in range(1, 100))
            ctx = Context(
                setup,
                view,
                LimitsSchedules(),
                CoreSettings(timers=timers or Timers(), **core),
                wall_clock=lambda: 1_700_000_000.0,
                new_session_id=lambda: next(ids),
            )
        session = V2gSession(ctx, SessionSettings(protocols=protocols), 0.0)
        return Ev(protocol, session, ctx.view, ctx)

    return make
