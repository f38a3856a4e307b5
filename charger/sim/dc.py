"""The simulated DC output of a DC EVSE: power module, DC contactor circuit, isolation
monitor and the car's battery, stepped with the board's physics.

    power module --[DC contactor]-- cable, IMD --[EV contactor]-- battery (OCV, R)

The power module regulates its output to a target voltage, moving it at `dc_ramp_v_per_s`,
and limits its current; it cannot take current back. With both contactors closed the
battery is on the output: the current is (regulated voltage - OCV) / R, clipped to 0 and
the limit, and the output sits at OCV + R x current. Without the battery, the output
follows the regulated voltage; switched off, the output's discharge circuit empties it
(time constant `DISCHARGE_TAU_S`), unless a welded contactor and a closed EV contactor
keep the battery on it. The module measures at its terminals, before the DC contactor.

The battery's open-circuit voltage rises linearly with the state of charge, +-10 % around
`ev_battery_voltage_v` at 50 %. The isolation monitor reports one result per
`dc_imd_measure_s` while started: `dc_isolation_ohm`, or a low value while an isolation
fault is injected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from charger.cs.settings import EvseConfig
from charger.hal.interfaces import DcReading, IsolationReading
from charger.sim.settings import SimConfig

DISCHARGE_TAU_S = 0.1  # the output's active discharge: 500 V to below 60 V in 0.21 s
RUNAWAY_FACTOR = 1.3  # power_module_overvoltage: the regulation runs away to 130 % of max
# injected isolation faults, per volt of the EVSE's maximum voltage (IEC 61851-23 grades
# below 100 ohm/V as a fault and below 500 ohm/V as a warning)
FAULT_OHM_PER_V = 50.0
WARNING_OHM_PER_V = 250.0
OCV_SPAN = 0.2  # OCV from 90 % (empty) to 110 % (full) of the nominal battery voltage

DC_FAULTS = (
    "isolation_fault",  # the output's insulation to PE breaks down: IMD reads 50 ohm/V
    "isolation_warning",  # degraded insulation: IMD reads 250 ohm/V
    "power_module_overvoltage",  # regulation runs away above its target
    "power_module_overcurrent",  # the module ignores its current limit
)


class SimDcOutput:
    """One DC output and the car's battery behind it."""

    def __init__(
        self,
        config: EvseConfig,
        sim: SimConfig,
        *,
        contactor_closed: Callable[[], bool],
        faults: set[str],
    ) -> None:
        self.config = config
        self._contactor_closed = contactor_closed
        self._faults = faults
        self.ramp_v_per_s = sim.dc_ramp_v_per_s
        self.isolation_ohm = sim.dc_isolation_ohm
        self.imd_measure_s = sim.dc_imd_measure_s
        # the car's battery and its contactor
        self.battery_voltage_v = sim.ev_battery_voltage_v
        self.battery_resistance_ohm = sim.ev_battery_resistance_ohm
        self.ev_max_voltage_v = sim.ev_dc_max_voltage_v
        self.ev_max_current_a = sim.ev_dc_max_current_a
        self.ev_contactor_closed = False
        # the power module
        self.enabled = False
        self.target_v = 0.0
        self.limit_a = 0.0
        self.regulated_v = 0.0  # what the converter drives towards its target
        self.voltage_v = 0.0  # at its terminals
        self.current_a = 0.0
        self.energy_wh = 0.0
        # the isolation monitor
        self.imd_on = False
        self.imd_elapsed_s = 0.0
        self.imd_result: float | None = None
        self._module_callbacks: list[Callable[[DcReading], None]] = []
        self._imd_callbacks: list[Callable[[IsolationReading], None]] = []
        self._reported = DcReading(0.0, 0.0)

    # ------------------------------------------------------------------ physics

    def ocv_v(self, soc_percent: float) -> float:
        """The battery's open-circuit voltage at this state of charge."""
        return self.battery_voltage_v * (1 - OCV_SPAN / 2 + OCV_SPAN * soc_percent / 100.0)

    def battery_connected(self, plugged: bool) -> bool:
        return plugged and self._contactor_closed() and self.ev_contactor_closed

    def step(self, dt_s: float, *, plugged: bool, soc_percent: float) -> float:
        """Advances the output by `dt_s`; returns the energy (Wh) put into the battery."""
        ocv = self.ocv_v(soc_percent)
        self._regulate(dt_s)
        stored_wh = 0.0
        if self.battery_connected(plugged):
            limit = self.limit_a if self.enabled else 0.0
            if "power_module_overcurrent" in self._faults and self.enabled:
                limit = math.inf
            wanted = (self.regulated_v - ocv) / self.battery_resistance_ohm
            self.current_a = min(max(wanted, 0.0), limit)
            self.voltage_v = ocv + self.current_a * self.battery_resistance_ohm
            self.energy_wh += self.voltage_v * self.current_a * dt_s / 3600.0
            stored_wh = ocv * self.current_a * dt_s / 3600.0
        else:
            self.current_a = 0.0
            if self.enabled:
                self.voltage_v = self.regulated_v
            else:
                self.voltage_v *= math.exp(-dt_s / DISCHARGE_TAU_S)
                if self.voltage_v < 0.1:
                    self.voltage_v = 0.0
        self._measure_isolation(dt_s)
        self._report()
        return stored_wh

    def _regulate(self, dt_s: float) -> None:
        if not self.enabled:
            self.regulated_v = 0.0
            return
        goal = self.target_v
        if "power_module_overvoltage" in self._faults:
            goal = max(goal, self.config.dc_max_voltage_v) * RUNAWAY_FACTOR
        step = self.ramp_v_per_s * dt_s
        if self.regulated_v < goal:
            # with no current allowed the output cannot be charged up
            if self.limit_a > 0 or "power_module_overcurrent" in self._faults:
                self.regulated_v = min(goal, self.regulated_v + step)
        else:
            self.regulated_v = max(goal, self.regulated_v - step)

    def isolation_resistance_ohm(self) -> float:
        if "isolation_fault" in self._faults:
            return FAULT_OHM_PER_V * self.config.dc_max_voltage_v
        if "isolation_warning" in self._faults:
            return WARNING_OHM_PER_V * self.config.dc_max_voltage_v
        return self.isolation_ohm

    def _measure_isolation(self, dt_s: float) -> None:
        if not self.imd_on:
            return
        self.imd_elapsed_s += dt_s
        if self.imd_elapsed_s < self.imd_measure_s - 1e-9:  # (float steps add up short)
            return
        self.imd_elapsed_s = max(0.0, self.imd_elapsed_s - self.imd_measure_s) % self.imd_measure_s
        self.imd_result = self.isolation_resistance_ohm()
        reading = IsolationReading(self.imd_result)
        for callback in tuple(self._imd_callbacks):
            callback(reading)

    def _report(self) -> None:
        reading = DcReading(round(self.voltage_v, 2), round(self.current_a, 2))
        if reading != self._reported:
            self._reported = reading
            for callback in tuple(self._module_callbacks):
                callback(reading)

    def unplugged(self) -> None:
        self.ev_contactor_closed = False

    def snapshot(self, soc_percent: float) -> dict[str, Any]:
        return {
            "module_enabled": self.enabled,
            "target_v": self.target_v,
            "limit_a": self.limit_a,
            "voltage_v": round(self.voltage_v, 2),
            "current_a": round(self.current_a, 2),
            "energy_wh": round(self.energy_wh, 3),
            "ev_contactor_closed": self.ev_contactor_closed,
            "battery_ocv_v": round(self.ocv_v(soc_percent), 2),
            "battery_resistance_ohm": self.battery_resistance_ohm,
            "ev_max_voltage_v": self.ev_max_voltage_v,
            "ev_max_current_a": self.ev_max_current_a,
            "imd_on": self.imd_on,
            "isolation_ohm": self.imd_result,
        }

    # ------------------------------------------------------------------ PowerModule

    def set_limits(self, voltage_v: float, current_a: float) -> None:
        self.target_v, self.limit_a = voltage_v, current_a

    def enable(self) -> None:
        if not self.enabled:
            self.enabled = True
            self.regulated_v = self.voltage_v  # starts from what its output holds

    def disable(self) -> None:
        self.enabled = False

    def read(self) -> DcReading:
        return self._reported

    # ------------------------------------------------------------------ IsolationMonitor

    def imd_start(self) -> None:
        self.imd_on, self.imd_elapsed_s, self.imd_result = True, 0.0, None

    def imd_stop(self) -> None:
        self.imd_on = False


class SimPowerModule:
    """The PowerModule of a simulated DC EVSE."""

    def __init__(self, output: SimDcOutput) -> None:
        self._output = output

    def set_limits(self, voltage_v: float, current_a: float) -> None:
        self._output.set_limits(voltage_v, current_a)

    def enable(self) -> None:
        self._output.enable()

    def disable(self) -> None:
        self._output.disable()

    def read(self) -> DcReading:
        return self._output.read()

    def on_reading(self, callback: Callable[[DcReading], None]) -> None:
        self._output._module_callbacks.append(callback)


class SimIsolationMonitor:
    """The IsolationMonitor of a simulated DC EVSE."""

    def __init__(self, output: SimDcOutput) -> None:
        self._output = output

    def start(self) -> None:
        self._output.imd_start()

    def stop(self) -> None:
        self._output.imd_stop()

    def read(self) -> IsolationReading:
        return IsolationReading(self._output.imd_result)

    def on_reading(self, callback: Callable[[IsolationReading], None]) -> None:
        self._output._imd_callbacks.append(callback)
