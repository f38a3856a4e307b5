"""Where the SAScheduleList of ChargeParameterDiscoveryRes comes from.

`ScheduleProvider` is the interface: a smart-charging service (OCPP charging profiles,
a site's load management) will implement it and feed real schedules; until then
`LimitsSchedules` turns the station's present limits (cs_status_and_limits) into one
flat schedule over the next 24 hours.
Schedules are neutral values here; each session core writes them in its own types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from charger.bus import messages

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int  # from now
    max_power_w: float


@dataclass(frozen=True, slots=True)
class Schedule:
    tuple_id: int  # SAScheduleTupleID, 1..255
    periods: tuple[Period, ...]
    duration_s: int = DAY_S  # the last period lasts until start + duration


@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    evse_id: str
    limits: messages.EvseStatusAndLimits
    energy_mode: str  # EnergyTransferMode the EV asked for
    ac_phases: int
    departure_time_s: int | None  # from the EV, seconds from now
    max_schedules: int | None  # MaxEntriesSAScheduleTuple
    ev_max_power_w: float | None


class ScheduleProvider(Protocol):
    def schedules(self, request: ScheduleRequest) -> list[Schedule] | None:
        """The schedules to offer, at least one; None when they are not known yet (the
        SECC answers EVSEProcessing=Ongoing and asks again on the EV's next request)."""


def station_power_w(limits: messages.EvseStatusAndLimits, energy_mode: str, phases: int) -> float:
    """The most power the EVSE's present limits allow in `energy_mode`."""
    if energy_mode.startswith("DC"):
        dc = limits.get("dc")
        return 0.0 if dc is None else dc["max_power"]
    ac = limits.get("ac")
    if ac is None:
        return 0.0
    used = 1 if energy_mode == "AC_single_phase_core" else max(1, phases)
    return ac["nominal_voltage"] * phase_current_a(ac["max_current"], used) * used


def phase_current_a(per_phase: messages.Phases, phases: int) -> float:
    """The current every one of the first `phases` phases may carry."""
    currents = (per_phase["l1"], per_phase["l2"], per_phase["l3"])
    return float(min(currents[: max(1, min(3, phases))]))


class LimitsSchedules:
    """One schedule, PMax = what the station's limits allow, for 24 hours."""

    def schedules(self, request: ScheduleRequest) -> list[Schedule] | None:
        power = station_power_w(request.limits, request.energy_mode, request.ac_phases)
        return [Schedule(1, (Period(0, power),))]
