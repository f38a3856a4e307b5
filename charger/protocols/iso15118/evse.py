"""What the SECC knows about its EVSE: folded from the bus, read by the session cores.

The SECC never touches hardware and never waits for the CS inside a request: the
service folds every bus message about its EVSE (`EvseView.apply`) into this view —
limits and measured output from cs_status_and_limits, the contactor, the cable check,
the authorization the driver got through `authorization`, meter readings, remote stops
— and a session core answers each V2G request from what the view holds now. Where the
answer is not known yet, the core says `Ongoing` and the EV asks again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from charger.bus import messages
from charger.bus.api import Message
from charger.bus.messages import Name, Topic


class Authorization(enum.Enum):
    NONE = "none"  # nobody asked yet: waiting for the driver (card, app, ...)
    PENDING = "pending"  # an authorization request is being decided
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class EvseSetup:
    """The EVSE as the SECC offers it (from the station's configuration)."""

    evse_id: str
    interface: str
    ac_phases: int = 3  # 0: no AC charging
    dc: bool = False
    nominal_voltage_v: float = 230.0  # until cs_status_and_limits says otherwise

    @property
    def energy_modes(self) -> tuple[str, ...]:
        """ISO 15118-2 EnergyTransferMode names offered (DIN uses the DC one)."""
        modes: list[str] = []
        if self.dc:
            modes.append("DC_extended")
        if self.ac_phases == 3:
            modes.append("AC_three_phase_core")
        elif self.ac_phases:
            modes.append("AC_single_phase_core")
        return tuple(modes)


@dataclass(frozen=True, slots=True)
class CableCheck:
    status: str  # ongoing | finished
    isolation: str | None  # valid | invalid | fault | warning | no_imd
    at: float


@dataclass(slots=True)
class EvseView:
    evse_id: str
    limits: messages.EvseStatusAndLimits | None = None
    limits_at: float | None = None
    authorization: Authorization = Authorization.NONE
    contactor: str | None = None  # closed | opened | error, as the CS last said
    cable_check: CableCheck | None = None
    setpoint_status: str | None = None  # accepted | rejected
    meter_wh: float | None = None
    meter_dc_voltage_v: float | None = None
    meter_dc_current_a: float | None = None
    cp_state: str = "A1"
    stop_reason: str | None = None  # the driver or the CSMS wants the session to end
    _authorization_ids: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ derived

    @property
    def plugged(self) -> bool:
        return self.cp_state[:1] in ("B", "C", "D", "E", "F")

    @property
    def ac(self) -> messages.EvseStatusAndLimitsAc | None:
        return None if self.limits is None else self.limits.get("ac")

    @property
    def dc(self) -> messages.EvseStatusAndLimitsDc | None:
        return None if self.limits is None else self.limits.get("dc")

    @property
    def status_code(self) -> str:
        return "evse_not_ready" if self.limits is None else self.limits["status_code"]

    def present_voltage_v(self) -> float:
        dc = self.dc
        if dc is not None:
            return dc["present_voltage"]
        return self.meter_dc_voltage_v or 0.0

    def present_current_a(self) -> float:
        dc = self.dc
        if dc is not None:
            return dc["present_current"]
        return self.meter_dc_current_a or 0.0

    # ------------------------------------------------------------------ folding

    def unplugged(self) -> None:
        """The EV left: nothing of its session counts any more."""
        self.authorization = Authorization.NONE
        self._authorization_ids.clear()
        self.cable_check = None
        self.setpoint_status = None
        self.stop_reason = None

    def apply(self, message: Message[Any], now: float) -> bool:
        """Folds one bus message into the view; True if it was about this EVSE."""
        data = message.data
        name, kind = message.name, message.type
        if name == Name.CS_STATUS_AND_LIMITS and kind != "request":
            for entry in data["evses"]:
                if entry["evse_id"] == self.evse_id:
                    self.limits, self.limits_at = entry, now
                    return True
            return False
        if name == Name.AUTHORIZATION:
            return self._apply_authorization(message)
        if name == Name.CP_STATUS:
            if data["evse_id"] != self.evse_id:
                return False
            was_plugged, self.cp_state = self.plugged, data["state"]
            if was_plugged and not self.plugged:
                self.unplugged()
            return True
        if data.get("evse_id") != self.evse_id:
            return False
        if name == Name.CS_CONTACTOR_STATUS and kind != "request":
            self.contactor = data["status"]
        elif name == Name.CABLE_CHECK and kind == "response":
            self.cable_check = CableCheck(
                data["cable_check_status"], data.get("isolation_level"), now
            )
        elif name == Name.POWER_ELECTRONICS_SETPOINT and kind == "response":
            self.setpoint_status = data["status"]
        elif name == Name.METER_VALUES and kind != "request":
            self.meter_wh = data["total_active_energy_imported"]
            self.meter_dc_voltage_v = data.get("dc_voltage")
            self.meter_dc_current_a = data.get("dc_current")
        elif name == Name.STOP_CHARGING and kind == "request":
            self.stop_reason = (
                "remote stop (CSMS)" if message.topic == Topic.OCPP_ISO15118 else "stop requested"
            )
        else:
            return False
        return True

    def _apply_authorization(self, message: Message[Any]) -> bool:
        data = message.data
        if message.type == "request":
            if data.get("evse_id", self.evse_id) != self.evse_id:
                return False
            self._authorization_ids.add(message.id)
            if self.authorization is not Authorization.ACCEPTED:
                self.authorization = Authorization.PENDING
            return True
        if message.type == "response":
            if message.id not in self._authorization_ids:
                return False
            self._authorization_ids.discard(message.id)
            status = data["status"]
            if status == "accepted":
                self.authorization = Authorization.ACCEPTED
            elif self.authorization is not Authorization.ACCEPTED:
                self.authorization = Authorization.REJECTED
            elif status == "deauthorized":  # a card refused meanwhile changes nothing
                self._withdrawn("authorization deauthorized")
            return True
        if data["evse_id"] != self.evse_id:
            return False
        if data["status"] == "accepted":  # e.g. a remote start by the CSMS
            self.authorization = Authorization.ACCEPTED
        elif self.authorization is Authorization.ACCEPTED:  # as the CS does: it stops
            self._withdrawn(f"authorization {data['status']}")
        else:
            self.authorization = Authorization.REJECTED
        return True

    def _withdrawn(self, reason: str) -> None:
        self.authorization = Authorization.REJECTED
        self.stop_reason = reason
