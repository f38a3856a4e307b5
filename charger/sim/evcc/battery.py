"""The car's battery as its EVCC sees it: the state of charge, the open-circuit voltage
(as the simulated board's battery has it, `charger.sim.dc`), the current the battery
management allows at each state of charge, and the times to a state of charge.

In `charger sim` the board's physics charge the battery and the EVCC only reads it; a
car facing a SECC without a power path (`standalone`: the harness's reference SECC)
charges this model with what the EVSE says it delivers."""

from __future__ import annotations

from dataclasses import dataclass

from charger.sim.dc import OCV_SPAN

TAPER_FROM_SOC = 80.0  # constant current up to this state of charge, then a linear taper
TAPER_END = 0.1  # at 100 % the battery still takes this fraction of its maximum current


def allowed_current_a(soc_percent: float, max_current_a: float) -> float:
    """The charging curve: the full current up to TAPER_FROM_SOC, then falling linearly
    to TAPER_END of it at 100 %."""
    if soc_percent <= TAPER_FROM_SOC:
        return max_current_a
    left = max(0.0, 100.0 - soc_percent) / (100.0 - TAPER_FROM_SOC)
    return max_current_a * (TAPER_END + (1.0 - TAPER_END) * left)


def seconds_to(soc_from: float, soc_to: float, capacity_wh: float, power_w: float) -> float | None:
    """How long charging from one state of charge to another takes at `power_w`; None
    when nothing flows (0 when already there)."""
    if soc_to <= soc_from:
        return 0.0
    if power_w <= 0:
        return None
    return (soc_to - soc_from) / 100.0 * capacity_wh / power_w * 3600.0


@dataclass(slots=True)
class Battery:
    capacity_wh: float
    soc_percent: float
    nominal_voltage_v: float = 400.0  # open circuit at 50 %

    def ocv_v(self) -> float:
        """Open-circuit voltage: +-OCV_SPAN/2 around the nominal, linear in the SoC."""
        return self.nominal_voltage_v * (1 - OCV_SPAN / 2 + OCV_SPAN * self.soc_percent / 100.0)

    def store(self, energy_wh: float) -> None:
        if energy_wh > 0:
            self.soc_percent = min(100.0, self.soc_percent + energy_wh / self.capacity_wh * 100.0)
