"""Settings of the CS controller: the station (`[station]`) and its EVSEs (`[[evse]]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from charger.runtime.settings import required, setting

CsMode = Literal["local", "remote"]

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
    ventilation_available: bool = setting(
        False, "ventilation is fitted: the EV may charge in state D"
    )
    network_interface: str = setting("eth1", "the PLC modem's network interface (SLAC, ISO 15118)")
    hlc: bool = setting(
        False,
        "high-level communication: SLAC (and later ISO 15118) at 5 % on network_interface; "
        "else basic charging only",
    )
