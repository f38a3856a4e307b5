"""Settings of the CS controller: the station (`[station]`) and its EVSEs (`[[evse]]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from charger.runtime.settings import Report, required, setting

CsMode = Literal["local", "remote"]
EvseKind = Literal["ac", "dc"]

# OCPP 2.0.1 ConnectorEnumType values accepted by the Josev device_model message.
CONNECTOR_TYPES = (
    "cCCS1",
    "cCCS2",
    "cG105",
    "cTesla",
    "cType1",
    "cType2",
    "s309-1P-16A",
    "s309-1P-32A",
    "s309-3P-16A",
    "s309-3P-32A",
    "sBS1361",
    "sCEE-7-7",
    "sType2",
    "sType3",
    "Other1PhMax16A",
    "Other1PhOver16A",
    "Other3Ph",
    "Pan",
    "wInductive",
    "wResonant",
    "Undetermined",
    "Unknown",
)


@dataclass(frozen=True)
class StationConfig:
    """The station: who it is, where it keeps durable state, and its timers."""

    cs: CsMode = setting(
        "local",
        '"local": this firmware is the CS controller; "remote": an external controller '
        "plays the cs side over MQTT and this firmware only the josev side",
    )
    vendor: str = setting("OpenWallbox", "vendor, reported in device_model and cs_parameters")
    model: str = setting("Wallbox", "model, reported in device_model and cs_parameters")
    serial_number: str = setting(
        "0000", "serial number, reported in device_model; the OCPP identity if none is set"
    )
    hw_version: str = setting("1.0", "hardware version, reported in cs_parameters")
    state_dir: Path = setting(
        Path("/var/lib/charger"), "durable state (SQLite) and the spawned broker's files"
    )
    meter_interval_s: float = setting(
        10.0, "period of meter_values updates", unit="s", lo=0.1, hi=3600
    )
    connection_timeout_s: float = setting(
        60.0, "an authorization given before plug-in lapses after this", unit="s", lo=1, hi=3600
    )


class CsmsConnection(Protocol):
    """The CSMS connection as device_model reports it: the `[ocpp]` section, seen by the
    CS controller without depending on the OCPP client."""

    @property
    def identity(self) -> str: ...

    @property
    def csms_url(self) -> str: ...

    @property
    def security_profile(self) -> int: ...

    @property
    def basic_auth_password(self) -> str: ...


@dataclass(frozen=True)
class EvseConfig:
    """One EVSE: its ids, connector and hardware limits; one `[[evse]]` table each."""

    id: int = field(metadata=required("OCPP EVSE id", lo=1, hi=128))
    evse_id: str = field(
        metadata=required(
            "ISO 15118 / eMI3 EVSE ID, the EVSE's name on the bus",
            pattern=r"[A-Za-z0-9*+\-]{1,37}",
            missing='an EVSE ID such as "DE*ABC*E0001"',
        )
    )
    connector_id: int = setting(1, "OCPP connector id", lo=1, hi=16)
    connector_type: str = setting("cType2", "OCPP connector type", choices=CONNECTOR_TYPES)
    max_current_a: float = setting(
        16.0, "most current the EVSE offers: its hardware limit", unit="A", lo=6, hi=80
    )
    phases: int = setting(3, "phases wired to the connector", lo=1, hi=3)
    nominal_voltage_v: float = setting(
        230.0, "nominal phase-to-neutral voltage", unit="V", lo=100, hi=480
    )
    has_lock: bool = setting(True, "a connector lock is fitted")
    socket_outlet: bool = setting(
        False,
        "a socket outlet (no fixed cable): the plug's PP resistor limits the current to the "
        "cable's capacity (IEC 61851-1 Annex B); the board needs a PP input",
    )
    rcd_self_test: bool = setting(
        True, "test the RCD (its test current) before each session; no closing until it passed"
    )
    contactor_min_off_s: float = setting(
        0.0,
        "the contactor closes again no sooner than this after it opened (its wear and "
        "inrush; the board's drop-in sets it)",
        unit="s",
        lo=0,
        hi=3,
    )
    ventilation_available: bool = setting(
        False, "ventilation is fitted: the EV may charge in state D"
    )
    network_interface: str = setting("eth1", "the PLC modem's network interface (SLAC, ISO 15118)")
    hlc: bool = setting(
        False,
        "high-level communication: SLAC (and later ISO 15118) at 5 % on network_interface; "
        "else basic charging only",
    )
    kind: EvseKind = setting(
        "ac",
        '"ac": IEC 61851-1 AC charging; "dc": a DC output (IEC 61851-23) with a power module '
        "and an isolation monitor, driven by the SECC over the bus (needs hlc = true)",
    )
    dc_max_voltage_v: float = setting(
        500.0,
        "DC: highest output voltage (also the isolation thresholds' base)",
        unit="V",
        lo=50,
        hi=1500,
    )
    dc_min_voltage_v: float = setting(
        150.0, "DC: lowest output voltage the power module regulates", unit="V", lo=0, hi=1500
    )
    dc_max_current_a: float = setting(125.0, "DC: highest output current", unit="A", lo=1, hi=1000)
    dc_min_current_a: float = setting(
        0.0, "DC: lowest output current the power module regulates", unit="A", lo=0, hi=1000
    )
    dc_max_power_w: float = setting(
        50000.0, "DC: highest output power", unit="W", lo=100, hi=1_000_000
    )
    dc_current_regulation_tolerance_a: float = setting(
        1.0, "DC: current regulation tolerance of the power module", unit="A", lo=0, hi=50
    )
    dc_peak_current_ripple_a: float = setting(
        0.5, "DC: peak-to-peak current ripple of the power module", unit="A", lo=0, hi=50
    )
    dc_energy_to_be_delivered_wh: float = setting(
        0.0,
        "DC: energy the EVSE can still deliver, reported to the EV (0: not reported)",
        unit="Wh",
        lo=0,
        hi=10_000_000,
    )

    def check(self, report: Report) -> None:
        if self.kind != "dc":
            return
        if not self.hlc:
            report("hlc", "is false on a DC EVSE", "true: DC charging needs ISO 15118 / DIN 70121")
        if self.dc_min_voltage_v >= self.dc_max_voltage_v:
            report(
                "dc_min_voltage_v",
                f"is {self.dc_min_voltage_v:g}, not below dc_max_voltage_v",
                f"less than {self.dc_max_voltage_v:g}",
            )
        if self.dc_min_current_a > self.dc_max_current_a:
            report(
                "dc_min_current_a",
                f"is {self.dc_min_current_a:g}, above dc_max_current_a",
                f"at most {self.dc_max_current_a:g}",
            )
