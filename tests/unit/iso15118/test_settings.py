"""The [iso15118] section: the codec's key and the SECC's, checked at load."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from charger import config
from charger.protocols.iso15118.sap import Priority, V2gProtocol
from charger.protocols.iso15118.service import secc_settings


def load(section: str) -> config.Config:
    text = f'[[evse]]\nid = 1\nevse_id = "DE*TST*E0001"\n[iso15118]\n{section}'
    return config.parse(tomllib.loads(text), "test.toml")


def test_defaults_keep_the_codec_and_offer_both_protocols() -> None:
    cfg = load("")
    assert cfg.iso15118.exi_codec == "c"
    settings = secc_settings(cfg.iso15118)
    assert settings.session.protocols == (V2gProtocol.ISO_15118_2, V2gProtocol.DIN_SPEC_70121)
    assert settings.session.priority is Priority.EV
    assert settings.tls == "off" and settings.tls_files is None


def test_tls_files_and_the_order_of_protocols() -> None:
    cfg = load(
        'protocols = ["DIN_SPEC_70121"]\npriority = "station"\ntls = "require"\n'
        'tls_cert_chain = "/pki/chain.pem"\ntls_key = "/pki/key.pem"\n'
        'tls_key_password_file = "/pki/password.txt"\nexi_codec = "python"'
    )
    settings = secc_settings(cfg.iso15118)
    assert settings.session.protocols == (V2gProtocol.DIN_SPEC_70121,)
    assert settings.session.priority is Priority.STATION
    assert settings.tls_files is not None
    assert settings.tls_files.cert_chain == Path("/pki/chain.pem")
    assert settings.tls_files.key_password_file == Path("/pki/password.txt")
    assert cfg.iso15118.exi_codec == "python"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('protocols = ["ISO_15118_20_AC"]', "iso15118.protocols: is ['ISO_15118_20_AC']"),
        ("protocols = []", "iso15118.protocols: is []"),
        ('protocols = ["DIN_SPEC_70121", "DIN_SPEC_70121"]', "names a protocol twice"),
        ('tls = "offer"', "iso15118.tls_cert_chain: is missing"),
        ('tls = "sometimes"', "iso15118.tls: is 'sometimes'"),
        ("max_message_bytes = 100", "iso15118.max_message_bytes: is 100"),
    ],
)
def test_a_bad_value_is_named(section: str, problem: str) -> None:
    with pytest.raises(config.ConfigError) as raised:
        load(section)
    assert problem in str(raised.value)
