"""Settings of the simulated board and car (`[sim]`)."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import setting


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
    ev_hlc: bool = setting(False, "the car does SLAC when it sees 5 %")
    physics_period_s: float = setting(0.1, "step of the physical model", unit="s", lo=0.01, hi=10)
    time_scale: float = setting(
        1.0, "simulated seconds per real second (battery and meter)", lo=0.1, hi=10000
    )
