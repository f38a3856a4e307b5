"""The application's configuration: the components' sections composed into one TOML file,
plus drop-ins, read and validated at start-up.

Each component declares its own section beside its code (`charger/cs/settings.py`,
`charger/protocols/mqtt/settings.py`, ...); `charger.runtime.settings` checks a file
against the declarations and reports every problem at once as
``<file>: <dotted.path>: <what is wrong> (expected <what>)`` so an installer can fix a
config in one pass. Only `app`/`cli` import this module; everything below them gets its
own section as plain values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from charger.bus.settings import BusConfig
from charger.cs.settings import CONNECTOR_TYPES, CsMode, EvseConfig, StationConfig
from charger.hal.rpi_settings import RpiConfig
from charger.protocols.iso15118.settings import Iso15118Config
from charger.protocols.local_auth_settings import AuthMode, AuthorizationConfig
from charger.protocols.mqtt.settings import MqttConfig
from charger.protocols.ocpp.config import OcppConfig
from charger.protocols.ocpp.firmware_settings import FirmwareConfig
from charger.protocols.slac.settings import SlacConfig
from charger.runtime.assets import asset_path
from charger.runtime.log_settings import LogConfig, LogLevel
from charger.runtime.scheduling import SchedulingConfig
from charger.runtime.settings import (
    ConfigError,
    KeyPath,
    load_settings,
    read_layers,
    section,
    setting,
    tables,
)
from charger.sim.settings import SimConfig

__all__ = [
    "CONFIG_DIR",
    "CONFIG_DIR_ENV",
    "CONNECTOR_TYPES",
    "AuthMode",
    "AuthorizationConfig",
    "BusConfig",
    "Config",
    "ConfigError",
    "ConfigFile",
    "CsMode",
    "EvseConfig",
    "FirmwareConfig",
    "HalBackend",
    "HalConfig",
    "Iso15118Config",
    "LogConfig",
    "LogLevel",
    "MqttConfig",
    "OcppConfig",
    "RpiConfig",
    "SimConfig",
    "SlacConfig",
    "StationConfig",
    "default_path",
    "drop_ins",
    "load",
    "locate",
    "parse",
]

CONFIG_DIR = Path("/etc/charger")  # charger.toml and conf.d/ on a device
CONFIG_DIR_ENV = "CHARGER_CONFIG_DIR"  # overrides CONFIG_DIR (tests, unusual images)

HalBackend = Literal["sim", "rpi"]


@dataclass(frozen=True)
class HalConfig:
    """The board the CS controller drives (chosen by the app, which builds it)."""

    backend: HalBackend = setting(
        "sim", '"rpi": the Raspberry Pi board; "sim": the simulated board and car'
    )


@dataclass(frozen=True, kw_only=True)
class ConfigFile:
    """The TOML file: one table per component, in the order problems are reported."""

    station: StationConfig = section(StationConfig)
    log: LogConfig = section(LogConfig)
    scheduling: SchedulingConfig = section(SchedulingConfig)
    mqtt: MqttConfig = section(MqttConfig)
    bus: BusConfig = section(BusConfig)
    hal: HalConfig = section(HalConfig)
    authorization: AuthorizationConfig = section(AuthorizationConfig)
    evse: tuple[EvseConfig, ...] = field(
        metadata=tables("one table per EVSE", noun="EVSE", unique=("id", "evse_id"))
    )
    ocpp: OcppConfig = section(OcppConfig)
    firmware: FirmwareConfig = section(FirmwareConfig)
    slac: SlacConfig = section(SlacConfig)
    iso15118: Iso15118Config = section(Iso15118Config)
    sim: SimConfig = section(SimConfig)
    rpi: RpiConfig = section(RpiConfig)


@dataclass(frozen=True)
class Config:
    """What the app is built from: each component's section, as the file gave it."""

    station: StationConfig
    log: LogConfig
    mqtt: MqttConfig
    hal_backend: HalBackend
    authorization: AuthorizationConfig
    evses: tuple[EvseConfig, ...]
    ocpp: OcppConfig = field(default_factory=OcppConfig)
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    slac: SlacConfig = field(default_factory=SlacConfig)
    iso15118: Iso15118Config = field(default_factory=Iso15118Config)
    sim: SimConfig = field(default_factory=SimConfig)
    rpi: RpiConfig = field(default_factory=RpiConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    scheduling: SchedulingConfig = field(default_factory=SchedulingConfig)


def parse(data: dict[str, Any], source: str, origin: dict[KeyPath, str] | None = None) -> Config:
    """Builds a Config from parsed TOML, raising ConfigError with every problem found;
    `origin` names the file each key came from (see `load`)."""
    f = load_settings(ConfigFile, data, source, origin)
    return Config(
        station=f.station,
        log=f.log,
        mqtt=f.mqtt,
        hal_backend=f.hal.backend,
        authorization=f.authorization,
        evses=f.evse,
        ocpp=f.ocpp,
        firmware=f.firmware,
        slac=f.slac,
        iso15118=f.iso15118,
        sim=f.sim,
        rpi=f.rpi,
        bus=f.bus,
        scheduling=f.scheduling,
    )


def drop_ins(directory: Path) -> list[Path]:
    """The `*.toml` files of a drop-in directory in the order they apply (by name;
    hidden files, such as an editor's, are skipped)."""
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.glob("*.toml") if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def load(path: Path, conf_d: Path | None = None) -> Config:
    """Reads and validates `path`, then every drop-in of `conf_d` (default: the
    `conf.d` directory beside `path`), each overriding the keys it sets. The packaged
    default file fills nothing in implicitly: a key no file sets takes its declared
    default."""
    files = [path, *drop_ins(conf_d if conf_d is not None else path.parent / "conf.d")]
    data, origin = read_layers(files)
    return parse(data, str(path), origin)


def config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV) or CONFIG_DIR)


def locate(path: str | Path | None, default: str) -> tuple[Path, Path]:
    """The main file and the drop-in directory that `charger run`/`sim` read: `path` and
    the `conf.d` beside it; without `path`, `<config dir>/charger.toml` if it exists (else
    the packaged `default`) and `<config dir>/conf.d` (config dir: /etc/charger, or
    $CHARGER_CONFIG_DIR)."""
    if path is not None:
        main = Path(path)
        return main, main.parent / "conf.d"
    directory = config_dir()
    main = directory / "charger.toml"
    return (main if main.is_file() else default_path(default)), directory / "conf.d"


def default_path(name: str = "default.toml") -> Path:
    return Path(str(asset_path("config", name)))
