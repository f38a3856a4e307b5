"""OCPP sampled values from the Josev `meter_values` data of an EVSE (J01, J02)."""

from __future__ import annotations

from typing import Any

SUPPORTED = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "Frequency",
    "Power.Factor",
)
_PHASES = (("l1", "L1"), ("l2", "L2"), ("l3", "L3"))


def sampled_values(
    meter: dict[str, Any], measurands: frozenset[str], context: str
) -> list[dict[str, Any]]:
    """One SampledValue per measurand (and phase, for current and voltage), in the order
    of SUPPORTED; measurands the meter cannot give are left out."""
    values: list[dict[str, Any]] = []

    def add(measurand: str, value: float, unit: str, phase: str | None = None) -> None:
        sample: dict[str, Any] = {
            "value": round(value, 3),
            "context": context,
            "measurand": measurand,
            "unitOfMeasure": {"unit": unit},
        }
        if phase is not None:
            sample["phase"] = phase
        values.append(sample)

    for measurand in SUPPORTED:
        if measurand not in measurands:
            continue
        if measurand == "Energy.Active.Import.Register":
            add(measurand, float(meter["total_active_energy_imported"]), "Wh")
        elif measurand == "Power.Active.Import":
            pf = float(meter["power_factor"])
            power = sum(
                float(meter["voltage"][p]) * float(meter["current"][p]) * pf for p, _ in _PHASES
            )
            add(measurand, power, "W")
        elif measurand in ("Current.Import", "Voltage"):
            source, unit = ("current", "A") if measurand == "Current.Import" else ("voltage", "V")
            for key, phase in _PHASES:
                add(measurand, float(meter[source][key]), unit, phase)
        elif measurand == "Frequency":
            add(measurand, float(meter["frequency"]), "Hz")
        elif measurand == "Power.Factor":
            add(measurand, float(meter["power_factor"]), "Percent")
    return values
