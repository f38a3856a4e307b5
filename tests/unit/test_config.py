"""Config loading: every problem reported with its path and what was expected."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import pytest

from charger import cli, config
from charger.config import ConfigError
from charger.runtime.settings import declaration_problems, setting
from tools.configgen import __main__ as configgen

MINIMAL = '[[evse]]\nid = 1\nevse_id = "DE*ABC*E1"\n'


def load_text(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config.load(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return info.value.problems


def test_shipped_configs_are_valid() -> None:
    for name in ("default.toml", "sim.toml"):
        cfg = config.load(config.default_path(name))
        assert cfg.evses[0].evse_id == "DE*OWB*E0000000001"


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, MINIMAL)
    assert cfg.station.cs == "local" and cfg.mqtt.port == 1883 and cfg.hal_backend == "sim"
    assert cfg.evses[0].max_current_a == 16.0 and cfg.evses[0].phases == 3


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[station]\ncs = "remote-ish"\nmeter_interval_s = -1\ncolour = "red"\n'
        '[mqtt]\nport = 70000\n[hal]\nbackend = "arduino"\n'
        '[[evse]]\nid = 1\nevse_id = "bad id!"\nmax_current_a = 5\nphases = "3"\n',
    )
    assert found == [
        "station.cs: is 'remote-ish' (expected one of local, remote)",
        "station.meter_interval_s: is -1 (expected a number from 0.1 to 3600)",
        "station.colour: is not a known key (expected one of: connection_timeout_s, cs, "
        "hw_version, meter_interval_s, model, serial_number, state_dir, vendor)",
        "mqtt.port: is 70000 (expected an integer from 1 to 65535)",
        "hal.backend: is 'arduino' (expected one of sim, rpi)",
        "evse[0].evse_id: is 'bad id!' (expected a string matching [A-Za-z0-9*+\\-]{1,37})",
        "evse[0].max_current_a: is 5 (expected a number from 6 to 80)",
        "evse[0].phases: is '3' (expected an integer from 1 to 3)",
    ]


def test_missing_evse_and_duplicates(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["evse: no [[evse]] table (expected at least one EVSE)"]
    twice = MINIMAL + MINIMAL.replace('"DE*ABC*E1"', '"DE*ABC*E2"')
    assert problems(tmp_path, twice) == ["evse: id 1 is used twice (expected unique values)"]


def test_allow_list_needs_tokens_and_profile_2_needs_wss(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        MINIMAL + '[authorization]\nmode = "allow_list"\n[ocpp]\nsecurity_profile = 2\n',
    )
    assert found == [
        'authorization.tokens: is empty (expected at least one token when mode = "allow_list")',
        "ocpp.csms_url: is 'ws://127.0.0.1:9000/ocpp' (expected a wss:// URL for "
        "security_profile 2)",
    ]


def test_bad_toml_and_missing_file_say_where(tmp_path: Path) -> None:
    found = problems(tmp_path, "[station\n")
    assert len(found) == 1 and found[0].startswith("is not valid TOML: ")
    with pytest.raises(ConfigError, match="cannot be read"):
        config.load(tmp_path / "absent.toml")


def test_error_message_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, "[log]\nlevel = 3\n" + MINIMAL)
    assert str(info.value) == (
        f"{tmp_path / 'c.toml'}: log.level: is 3 (expected one of debug, info, warning, error)"
    )


def test_security_profile_3_needs_a_client_certificate(tmp_path: Path) -> None:
    found = problems(
        tmp_path, MINIMAL + '[ocpp]\nsecurity_profile = 3\ncsms_url = "wss://x/ocpp"\n'
    )
    assert found == [
        "ocpp.client_cert_file: is missing (expected the station's certificate and "
        "ocpp.client_key_file for security_profile 3)"
    ]


def test_exi_codec_is_c_python_or_a_module_attribute(tmp_path: Path) -> None:
    assert load_text(tmp_path, MINIMAL).iso15118.exi_codec == "c"
    vendor = load_text(tmp_path, MINIMAL + '[iso15118]\nexi_codec = "acme.exi:Codec"\n')
    assert vendor.iso15118.exi_codec == "acme.exi:Codec"
    (found,) = problems(tmp_path, MINIMAL + '[iso15118]\nexi_codec = "java"\n')
    assert found.startswith("iso15118.exi_codec: is 'java' (expected a string matching")


# ------------------------------------------------------------- sections and drop-ins


def test_bus_section_holds_the_request_timeout(tmp_path: Path) -> None:
    assert load_text(tmp_path, MINIMAL).bus.request_timeout_s == 10.0
    cfg = load_text(tmp_path, MINIMAL + "[bus]\nrequest_timeout_s = 2.5\n")
    assert cfg.bus.request_timeout_s == 2.5
    (found,) = problems(tmp_path, MINIMAL + "[mqtt]\nrequest_timeout_s = 3\n")
    assert found == (
        "mqtt.request_timeout_s: is not a known key (expected one of: broker, host, "
        "mosquitto, password_file, port, username)"
    )


def test_evse_id_is_required_too(tmp_path: Path) -> None:
    assert problems(tmp_path, '[[evse]]\nevse_id = "E1"\n') == [
        "evse[0].id: is missing (expected an integer from 1 to 128)"
    ]
    assert problems(tmp_path, "[[evse]]\nid = 1\n") == [
        'evse[0].evse_id: is missing (expected an EVSE ID such as "DE*ABC*E0001")'
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_drop_ins_override_in_order_of_their_names(tmp_path: Path) -> None:
    main = write(tmp_path / "charger.toml", MINIMAL + '[mqtt]\nhost = "broker"\nport = 1884\n')
    write(tmp_path / "conf.d" / "20-site.toml", "[mqtt]\nport = 1886\n[log]\nlevel = 'debug'\n")
    write(tmp_path / "conf.d" / "10-board.toml", "[mqtt]\nport = 1885\n")
    write(tmp_path / "conf.d" / "notes.txt", "not a drop-in")
    write(tmp_path / "conf.d" / ".30-editor.toml", "[mqtt]\nport = 'swap file'\n")
    cfg = config.load(main)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.log.level) == ("broker", 1886, "debug")
    assert config.drop_ins(tmp_path / "conf.d") == [
        tmp_path / "conf.d" / "10-board.toml",
        tmp_path / "conf.d" / "20-site.toml",
    ]


def test_an_evse_array_in_a_drop_in_replaces_the_array(tmp_path: Path) -> None:
    two = MINIMAL + MINIMAL.replace("id = 1", "id = 2").replace("E1", "E2")
    main = write(tmp_path / "charger.toml", two.replace('"\n', '"\nphases = 1\n', 1))
    write(tmp_path / "conf.d" / "evse.toml", '[[evse]]\nid = 7\nevse_id = "DE*ABC*E7"\n')
    (evse,) = config.load(main).evses
    assert (evse.id, evse.evse_id, evse.phases) == (7, "DE*ABC*E7", 3)


def test_errors_name_the_file_the_value_came_from(tmp_path: Path) -> None:
    main = write(tmp_path / "charger.toml", MINIMAL + "[station]\ncolour = 'red'\n")
    site = write(tmp_path / "conf.d" / "50-site.toml", "[mqtt]\nport = 0\n[[evse]]\nid = 2\n")
    write(tmp_path / "conf.d" / "60-auth.toml", "[authorization]\nmode = 'allow_list'\n")
    with pytest.raises(ConfigError) as info:
        config.load(main)
    auth = tmp_path / "conf.d" / "60-auth.toml"
    assert str(info.value).splitlines() == [
        f"{main}: station.colour: is not a known key (expected one of: connection_timeout_s, "
        "cs, hw_version, meter_interval_s, model, serial_number, state_dir, vendor)",
        f"{site}: mqtt.port: is 0 (expected an integer from 1 to 65535)",
        f"{auth}: authorization.tokens: is empty "
        '(expected at least one token when mode = "allow_list")',
        f'{site}: evse[0].evse_id: is missing (expected an EVSE ID such as "DE*ABC*E0001")',
    ]


def test_a_broken_drop_in_is_named(tmp_path: Path) -> None:
    main = write(tmp_path / "charger.toml", MINIMAL)
    bad = write(tmp_path / "conf.d" / "10-bad.toml", "[mqtt\n")
    with pytest.raises(ConfigError) as info:
        config.load(main)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{bad}: is not valid TOML: ")


def test_without_config_the_config_dir_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(tmp_path))
    assert config.locate(None, "sim.toml") == (config.default_path("sim.toml"), tmp_path / "conf.d")
    write(tmp_path / "conf.d" / "port.toml", "[mqtt]\nport = 1999\n")
    assert cli._load(None, "sim.toml").mqtt.port == 1999  # drop-ins over the packaged file
    write(tmp_path / "charger.toml", MINIMAL)
    assert config.locate(None, "sim.toml") == (tmp_path / "charger.toml", tmp_path / "conf.d")
    cfg = cli._load(None, "sim.toml")
    assert (cfg.evses[0].evse_id, cfg.mqtt.port) == ("DE*ABC*E1", 1999)
    assert config.locate(str(tmp_path / "x.toml"), "sim.toml") == (
        tmp_path / "x.toml",
        tmp_path / "conf.d",
    )


def test_check_config_exits_2_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = write(tmp_path / "charger.toml", MINIMAL)
    drop_in = write(tmp_path / "conf.d" / "10-a.toml", "[hal]\nbackend = 'rpi'\n")
    assert cli.main(["check-config", str(main)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{main}: ok (1 EVSE, hal=rpi, cs=local)",
        f"  + {drop_in}",
    ]
    write(tmp_path / "conf.d" / "20-b.toml", "[hal]\nbackend = 'arduino'\n")
    assert cli.main(["check-config", str(main)]) == 2
    assert capsys.readouterr().err == (
        f"{tmp_path / 'conf.d' / '20-b.toml'}: hal.backend: is 'arduino' "
        "(expected one of sim, rpi)\n"
    )
    assert cli.main(["check-config", str(tmp_path / "absent.toml")]) == 2


# ----------------------------------------------------------------- the declarations


def test_generated_files_are_in_sync() -> None:
    assert configgen.main(["--check"]) == 0, "run: python -m tools.configgen"


def test_every_declaration_is_documented_and_its_default_lies_in_its_range() -> None:
    assert declaration_problems(config.ConfigFile) == []


def test_a_bad_default_is_caught() -> None:
    @dataclass(frozen=True)
    class Planted:
        """A section with mistakes."""

        current_a: float = setting(5.0, "below its own range", unit="A", lo=6, hi=80)
        level: Literal["a", "b"] = setting(cast(Literal["a"], "c"), "not a choice")
        count: int = setting(1, "no range")
        name: str = setting("x", "")

    assert declaration_problems(Planted) == [
        "current_a: default 5.0 is not a number from 6 to 80",
        "level: default 'c' is not one of a, b",
        "count: has no range (lo, hi)",
        "name: has no doc",
    ]
