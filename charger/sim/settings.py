"""Settings of the simulated board and car (`[sim]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charger.runtime.settings import Report, setting
from charger.sim.evcc.options import MISBEHAVIOURS, RETRIES, RETRY_PAUSE_S


@dataclass(frozen=True)
class SimConfig:
    """The simulated car on each connector, and the simulation's clock (`hal.backend =
    "sim"`, `charger sim`)."""

    ev_capacity_wh: float = setting(
        60000.0, "the car's battery capacity", unit="Wh", lo=100, hi=1_000_000
    )
    ev_soc_percent: float = setting(40.0, "its state of charge at plug-in", unit="%", lo=0, hi=100)
    ev_max_current_a: float = setting(16.0, "most current the car draws", unit="A", lo=6, hi=80)
    ev_phases: int = setting(3, "phases the car charges on", lo=1, hi=3)
    ev_reaction_s: float = setting(
        0.5, "the car's reaction time to a PWM change", unit="s", lo=0, hi=5
    )
    ev_hlc: bool = setting(
        False, "the car does SLAC, then ISO 15118 with its EVCC, when it sees 5 %"
    )
    ev_cable_a: int = setting(
        32,
        "socket outlets: the rating of the car's cable, its PP coding (13, 20, 32 or 63)",
        unit="A",
        lo=13,
        hi=63,
    )
    ev_protocol: Literal["iso2", "din"] = setting(
        "iso2",
        'HLC: what the car\'s EVCC speaks, "iso2" (ISO 15118-2) or "din" (DIN SPEC 70121, DC only)',
    )
    ev_energy: Literal["auto", "ac", "dc"] = setting(
        "auto", 'HLC: what the car asks for, "ac", "dc" or "auto" (what the EVSE is)'
    )
    ev_target_soc_percent: float = setting(
        100.0, "HLC: the state of charge the car stops at", unit="%", lo=1, hi=100
    )
    ev_departure_time_s: int = setting(
        0,
        "HLC: the departure time the car gives (ISO 15118-2), seconds ahead; 0: none",
        unit="s",
        lo=0,
        hi=604800,
    )
    ev_misbehave: tuple[str, ...] = setting(
        (),
        "HLC: what the car does wrong once in the charging loop: " + ", ".join(MISBEHAVIOURS),
    )
    ev_retries: int = setting(
        RETRIES,
        "HLC: failed sessions the car tries again per plug-in before it gives HLC up "
        "(the maker's choice; 2 as ISO 15118-3's C_sequ_retry for the station)",
        lo=0,
        hi=100,
    )
    ev_retry_pause_s: float = setting(
        RETRY_PAUSE_S,
        "HLC: from a failed session to the car's next attempt, at least (T_step_EF)",
        unit="s",
        lo=0,
        hi=3600,
    )
    ev_battery_voltage_v: float = setting(
        400.0,
        "DC: the car's battery voltage at 50 % charge (open circuit; +-10 % from empty to full)",
        unit="V",
        lo=50,
        hi=1000,
    )
    ev_battery_resistance_ohm: float = setting(
        0.05, "DC: the battery's internal resistance", unit="ohm", lo=0.001, hi=10
    )
    ev_dc_max_voltage_v: float = setting(
        450.0, "DC: the highest voltage the car accepts", unit="V", lo=50, hi=1500
    )
    ev_dc_max_current_a: float = setting(
        200.0, "DC: the most current the car takes", unit="A", lo=1, hi=1000
    )
    dc_ramp_v_per_s: float = setting(
        250.0,
        "DC: how fast the power module moves its output voltage",
        unit="V/s",
        lo=1,
        hi=100000,
    )
    dc_isolation_ohm: float = setting(
        5_000_000.0,
        "DC: isolation resistance of the healthy output to PE (faults inject lower ones)",
        unit="ohm",
        lo=1000,
        hi=1e9,
    )
    dc_imd_measure_s: float = setting(
        2.0,
        "DC: how long the isolation monitor takes per measurement",
        unit="s",
        lo=0.01,
        hi=60,
    )
    physics_period_s: float = setting(0.1, "step of the physical model", unit="s", lo=0.01, hi=10)
    time_scale: float = setting(
        1.0, "simulated seconds per real second (battery and meter)", lo=0.1, hi=10000
    )

    def check(self, report: Report) -> None:
        if self.ev_cable_a not in (13, 20, 32, 63):
            report("ev_cable_a", f"is {self.ev_cable_a}", "13, 20, 32 or 63 (Table B.2)")
        unknown = [m for m in self.ev_misbehave if m not in MISBEHAVIOURS]
        if unknown:
            report("ev_misbehave", f"names {unknown[0]!r}", "any of " + ", ".join(MISBEHAVIOURS))
        if self.ev_protocol == "din" and self.ev_energy == "ac":
            report("ev_energy", 'is "ac"', '"dc" or "auto": DIN SPEC 70121 is DC only')
