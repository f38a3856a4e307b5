"""Typed configuration read from TOML and validated with errors that name the key.

Every problem is collected (not just the first) and reported as
``<file>: <dotted.path>: <what is wrong> (expected <what>)`` so an installer can
fix a config file in one pass. Only `app`/`cli` call this module; everything
below them receives the plain dataclasses.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from charger.runtime.assets import asset_path

LogLevel = Literal["debug", "info", "warning", "error"]
CsMode = Literal["local", "remote"]
AuthMode = Literal["free", "allow_list", "external"]
HalBackend = Literal["sim", "rpi"]

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


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every reason, one per entry."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


@dataclass(frozen=True)
class StationConfig:
    cs: CsMode = "local"
    vendor: str = "OpenWallbox"
    model: str = "Wallbox"
    serial_number: str = "0000"
    hw_version: str = "1.0"
    state_dir: Path = Path("/var/lib/charger")
    meter_interval_s: float = 10.0
    connection_timeout_s: float = 60.0


@dataclass(frozen=True)
class LogConfig:
    level: LogLevel = "info"


@dataclass(frozen=True)
class MqttConfig:
    broker: Literal["spawn", "external"] = "spawn"
    host: str = "127.0.0.1"
    port: int = 1883
    mosquitto: str = "mosquitto"
    request_timeout_s: float = 10.0


@dataclass(frozen=True)
class OcppConfig:
    """The CSMS connection; reported in device_model, used by the OCPP service."""

    enabled: bool = False  # run the OCPP 2.0.1 client
    csms_url: str = "ws://127.0.0.1:9000/ocpp"
    identity: str = ""  # empty: the serial number
    security_profile: int = 1
    basic_auth_password: str = ""
    ca_file: str = ""  # CSMS root certificate(s), PEM (profiles 2, 3); empty: system roots
    client_cert_file: str = ""  # the station's certificate chain, PEM (profile 3)
    client_key_file: str = ""  # its private key, PEM (profile 3)


@dataclass(frozen=True)
class AuthorizationConfig:
    mode: AuthMode = "free"
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvseConfig:
    id: int
    evse_id: str
    connector_id: int = 1
    connector_type: str = "cType2"
    max_current_a: float = 16.0
    phases: int = 3
    nominal_voltage_v: float = 230.0
    has_lock: bool = True
    ventilation_available: bool = False
    network_interface: str = "eth1"
    hlc: bool = False  # ISO 15118 via SLAC on network_interface; else basic charging only


@dataclass(frozen=True)
class SlacConfig:
    init_timeout_s: float = 50.0  # TT_EVSE_SLAC_init, ISO 15118-3: 20-50 s


@dataclass(frozen=True)
class Iso15118Config:
    # EXI codec: "c" (built in), "python" (its pure-Python twin) or "module:attribute"
    # naming a vendor codec object/class with the charger.protocols.exi.Backend methods
    exi_codec: str = "c"


@dataclass(frozen=True)
class SimConfig:
    ev_capacity_wh: float = 60000.0
    ev_soc_percent: float = 40.0
    ev_max_current_a: float = 16.0
    ev_phases: int = 3
    ev_reaction_s: float = 0.5
    ev_hlc: bool = False  # the car does SLAC when it sees 5 %
    physics_period_s: float = 0.1
    time_scale: float = 1.0


@dataclass(frozen=True)
class RpiConfig:
    """Pin-out of the Raspberry Pi board (BCM numbering) and CP measurement scaling."""

    pwm_chip: int = 0
    pwm_channel: int = 0
    spi_bus: int = 0
    spi_device: int = 0
    adc_channel: int = 0
    contactor_pin: int = 17
    contactor_feedback_pin: int = 27
    lock_pin: int = 22
    lock_feedback_pin: int = 23
    rcd_trip_pin: int = 24
    rcd_test_pin: int = 25
    cp_zero_pin: int = 26  # switches the CP line to 0 V (state E)
    # CP voltage = adc_counts * cp_volts_per_count + cp_volts_offset (board divider)
    cp_volts_per_count: float = 0.00757
    cp_volts_offset: float = -15.5


@dataclass(frozen=True)
class Config:
    station: StationConfig
    log: LogConfig
    mqtt: MqttConfig
    hal_backend: HalBackend
    authorization: AuthorizationConfig
    evses: tuple[EvseConfig, ...]
    ocpp: OcppConfig = field(default_factory=OcppConfig)
    slac: SlacConfig = field(default_factory=SlacConfig)
    iso15118: Iso15118Config = field(default_factory=Iso15118Config)
    sim: SimConfig = field(default_factory=SimConfig)
    rpi: RpiConfig = field(default_factory=RpiConfig)


_MISSING = object()


class _Section:
    """Reads one TOML table, recording every problem with its dotted path."""

    def __init__(self, table: Any, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.seen: set[str] = set()
        if not isinstance(table, dict):
            self._problem(path, f"is a {_type_name(table)}", "a table")
            table = {}
        self.table: dict[str, Any] = table

    def _problem(self, path: str, what: str, expected: str) -> None:
        self.problems.append(f"{path}: {what} (expected {expected})")

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        return self.table.get(key, _MISSING)

    def text(self, key: str, default: str, pattern: str | None = None) -> str:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or (pattern and not re.fullmatch(pattern, value)):
            shown = repr(value) if isinstance(value, str) else f"a {_type_name(value)}"
            self._problem(
                self._key(key),
                f"is {shown}",
                f"a string matching {pattern}" if pattern else "a string",
            )
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> Any:
        value = self._get(key)
        if value is _MISSING:
            return default
        if value not in choices:
            self._problem(self._key(key), f"is {value!r}", "one of " + ", ".join(choices))
            return default
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        value = self._get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            self._problem(self._key(key), f"is {value!r}", f"a number from {lo:g} to {hi:g}")
            return default
        return float(value)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self._get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self._problem(self._key(key), f"is {value!r}", f"an integer from {lo} to {hi}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self._problem(self._key(key), f"is {value!r}", "true or false")
            return default
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is _MISSING:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._problem(self._key(key), f"is {value!r}", "a list of strings")
            return ()
        return tuple(value)

    def section(self, key: str) -> _Section:
        value = self._get(key)
        return _Section({} if value is _MISSING else value, self._key(key), self.problems)

    def tables(self, key: str) -> Iterator[_Section]:
        value = self._get(key)
        if value is _MISSING:
            return
        if not isinstance(value, list):
            self._problem(self._key(key), f"is a {_type_name(value)}", f"an array [[{key}]]")
            return
        for index, item in enumerate(value):
            yield _Section(item, f"{self._key(key)}[{index}]", self.problems)

    def done(self) -> None:
        for key in sorted(set(self.table) - self.seen):
            known = ", ".join(sorted(self.seen))
            self._problem(self._key(key), "is not a known key", f"one of: {known}")


def _type_name(value: object) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def parse(data: dict[str, Any], source: str) -> Config:
    """Builds a Config from parsed TOML, raising ConfigError with every problem found."""
    problems: list[str] = []
    root = _Section(data, "", problems)

    s = root.section("station")
    station = StationConfig(
        cs=s.choice("cs", "local", ("local", "remote")),
        vendor=s.text("vendor", StationConfig.vendor),
        model=s.text("model", StationConfig.model),
        serial_number=s.text("serial_number", StationConfig.serial_number),
        hw_version=s.text("hw_version", StationConfig.hw_version),
        state_dir=Path(s.text("state_dir", str(StationConfig.state_dir))).expanduser(),
        meter_interval_s=s.number("meter_interval_s", 10.0, 0.1, 3600),
        connection_timeout_s=s.number("connection_timeout_s", 60.0, 1, 3600),
    )
    s.done()

    s = root.section("log")
    log = LogConfig(level=s.choice("level", "info", ("debug", "info", "warning", "error")))
    s.done()

    s = root.section("mqtt")
    mqtt = MqttConfig(
        broker=s.choice("broker", "spawn", ("spawn", "external")),
        host=s.text("host", MqttConfig.host),
        port=s.integer("port", MqttConfig.port, 1, 65535),
        mosquitto=s.text("mosquitto", MqttConfig.mosquitto),
        request_timeout_s=s.number("request_timeout_s", 10.0, 0.1, 600),
    )
    s.done()

    s = root.section("hal")
    hal_backend = s.choice("backend", "sim", ("sim", "rpi"))
    s.done()

    s = root.section("authorization")
    auth = AuthorizationConfig(
        mode=s.choice("mode", "free", ("free", "allow_list", "external")),
        tokens=s.strings("tokens"),
    )
    s.done()
    if auth.mode == "allow_list" and not auth.tokens:
        problems.append(
            'authorization.tokens: is empty (expected at least one token when mode = "allow_list")'
        )

    evses = tuple(_evse(e) for e in root.tables("evse"))
    if not evses:
        problems.append("evse: no [[evse]] table (expected at least one EVSE)")
    for attr in ("id", "evse_id"):
        values = [getattr(e, attr) for e in evses]
        for dup in sorted({v for v in values if values.count(v) > 1}, key=str):
            problems.append(f"evse: {attr} {dup!r} is used twice (expected unique values)")

    s = root.section("ocpp")
    ocpp = OcppConfig(
        enabled=s.boolean("enabled", False),
        csms_url=s.text("csms_url", OcppConfig.csms_url, r"wss?://\S+"),
        identity=s.text("identity", "", r"[\x21-\x7e]{0,48}"),
        security_profile=s.integer("security_profile", 1, 1, 3),
        basic_auth_password=s.text("basic_auth_password", ""),
        ca_file=s.text("ca_file", ""),
        client_cert_file=s.text("client_cert_file", ""),
        client_key_file=s.text("client_key_file", ""),
    )
    s.done()
    if ocpp.security_profile == 3 and not (ocpp.client_cert_file and ocpp.client_key_file):
        problems.append(
            "ocpp.client_cert_file: is missing (expected the station's certificate "
            "and ocpp.client_key_file for security_profile 3)"
        )
    if ocpp.security_profile >= 2 and not ocpp.csms_url.startswith("wss://"):
        problems.append(
            f"ocpp.csms_url: is {ocpp.csms_url!r} (expected a wss:// URL for "
            f"security_profile {ocpp.security_profile})"
        )

    s = root.section("slac")
    slac = SlacConfig(init_timeout_s=s.number("init_timeout_s", 50.0, 1, 50))
    s.done()

    s = root.section("iso15118")
    iso15118 = Iso15118Config(
        exi_codec=s.text("exi_codec", "c", r"c|python|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
    )
    s.done()

    s = root.section("sim")
    sim = SimConfig(
        ev_capacity_wh=s.number("ev_capacity_wh", 60000, 100, 1_000_000),
        ev_soc_percent=s.number("ev_soc_percent", 40, 0, 100),
        ev_max_current_a=s.number("ev_max_current_a", 16, 6, 80),
        ev_phases=s.integer("ev_phases", 3, 1, 3),
        ev_reaction_s=s.number("ev_reaction_s", 0.5, 0, 5),
        ev_hlc=s.boolean("ev_hlc", False),
        physics_period_s=s.number("physics_period_s", 0.1, 0.01, 10),
        time_scale=s.number("time_scale", 1.0, 0.1, 10000),
    )
    s.done()

    s = root.section("rpi")
    ints = {
        name: s.integer(name, getattr(RpiConfig, name), 0, 63)
        for name in RpiConfig.__dataclass_fields__
        if not name.startswith("cp_volts")
    }
    rpi = RpiConfig(
        **ints,
        cp_volts_per_count=s.number("cp_volts_per_count", RpiConfig.cp_volts_per_count, 1e-6, 1),
        cp_volts_offset=s.number("cp_volts_offset", RpiConfig.cp_volts_offset, -50, 50),
    )
    s.done()
    root.done()

    if problems:
        raise ConfigError(source, problems)
    return Config(station, log, mqtt, hal_backend, auth, evses, ocpp, slac, iso15118, sim, rpi)


def _evse(s: _Section) -> EvseConfig:
    evse = EvseConfig(
        id=s.integer("id", 1, 1, 128),
        evse_id=s.text("evse_id", "", r"[A-Za-z0-9*+\-]{1,37}"),
        connector_id=s.integer("connector_id", 1, 1, 16),
        connector_type=s.choice("connector_type", "cType2", CONNECTOR_TYPES),
        max_current_a=s.number("max_current_a", 16, 6, 80),
        phases=s.integer("phases", 3, 1, 3),
        nominal_voltage_v=s.number("nominal_voltage_v", 230, 100, 480),
        has_lock=s.boolean("has_lock", True),
        ventilation_available=s.boolean("ventilation_available", False),
        network_interface=s.text("network_interface", "eth1"),
        hlc=s.boolean("hlc", False),
    )
    if "evse_id" not in s.table:
        s.problems.append(
            f'{s.path}.evse_id: is missing (expected an EVSE ID such as "DE*ABC*E0001")'
        )
    s.done()
    return evse


def load(path: Path) -> Config:
    """Reads and validates a TOML file; the default file fills nothing in implicitly."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc.strerror}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"is not valid TOML: {exc}"]) from exc
    return parse(data, str(path))


def default_path(name: str = "default.toml") -> Path:
    return Path(str(asset_path("config", name)))
