"""Config loading: every problem reported with its path and what was expected."""

from pathlib import Path

import pytest

from charger import config
from charger.config import ConfigError

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
