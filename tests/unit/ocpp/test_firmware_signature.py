"""L01.FR.21/22, .04, .12: the firmware signing certificate against the manufacturer root,
and the signature over the whole file (ECDSA and RSA-PSS, SHA-256)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from charger.protocols.ocpp.firmware_signature import (
    CertificateProblem,
    SignatureProblem,
    check_signing_certificate,
    load_roots,
    verify_signature,
)
from tests.support.firmware import make_root, make_signer, manufacturer, sign_file

NOW = dt.datetime.now(dt.UTC)


def test_a_signer_of_the_manufacturer_root_is_accepted(tmp_path: Path) -> None:
    m = manufacturer(tmp_path)
    roots = load_roots(m.root.cert_file.read_bytes() + m.stranger_root.cert_file.read_bytes())
    assert len(roots) == 2
    assert check_signing_certificate(m.signer.pem, roots, NOW) == m.signer.cert
    # the stranger's signer is also fine when the stranger's root is trusted
    assert check_signing_certificate(m.stranger.pem, roots, NOW) == m.stranger.cert


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("stranger", "not issued by a manufacturer root"),
        ("expired", "not now"),
        ("not_yet", "not now"),
        ("server_cert", "not for code signing"),
        ("ca", "a CA certificate"),
        ("garbage", "not a PEM certificate"),
        ("empty", "no signing certificate"),
        ("no_roots", "no manufacturer root"),
        ("intermediate", "not issued by a manufacturer root"),
    ],
)
def test_a_certificate_the_station_cannot_trust_is_refused_with_its_reason(
    tmp_path: Path, case: str, reason: str
) -> None:
    m = manufacturer(tmp_path)
    roots = load_roots(m.root.cert_file.read_bytes())
    pem = {
        "stranger": lambda: m.stranger.pem,
        "expired": lambda: make_signer(tmp_path, "old", m.root, valid_from_days=-40).pem,
        "not_yet": lambda: make_signer(tmp_path, "new", m.root, valid_from_days=5).pem,
        "server_cert": lambda: make_signer(tmp_path, "tls", m.root, code_signing=False).pem,
        "ca": lambda: make_signer(tmp_path, "sub", m.root, ca=True).pem,
        "garbage": lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "empty": lambda: "",
        "no_roots": lambda: m.signer.pem,
        # a signer below an intermediate CA: Part 2 allows none for firmware signing
        "intermediate": lambda: (
            make_signer(tmp_path, "leaf", make_signer(tmp_path, "mid", m.root, ca=True)).pem
        ),
    }[case]()
    with pytest.raises(CertificateProblem, match=reason):
        check_signing_certificate(pem, () if case == "no_roots" else roots, NOW)


def test_an_expired_root_issues_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path, "short-lived", days=30)
    signer = make_signer(tmp_path, "signer", root)
    later = NOW + dt.timedelta(days=31)
    with pytest.raises(CertificateProblem):
        check_signing_certificate(signer.pem, (root.cert,), later)


@pytest.mark.parametrize("rsa_key", [False, True], ids=["ecdsa", "rsa-pss"])
def test_the_signature_over_the_whole_file_is_checked(tmp_path: Path, rsa_key: bool) -> None:
    m = manufacturer(tmp_path)
    signer = make_signer(tmp_path, "rsa" if rsa_key else "ec", m.root, rsa_key=rsa_key)
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"\x7fELF" + bytes(range(256)) * 9000)  # more than one chunk
    signature = sign_file(firmware, signer.key)
    verify_signature(firmware, signature, signer.cert)
    # one byte changed at the end of the file: the hash covers all of it
    data = bytearray(firmware.read_bytes())
    data[-1] ^= 1
    firmware.write_bytes(bytes(data))
    with pytest.raises(SignatureProblem, match="does not match"):
        verify_signature(firmware, signature, signer.cert)


def test_a_missing_wrong_or_malformed_signature_is_refused(tmp_path: Path) -> None:
    m = manufacturer(tmp_path)
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"firmware")
    by_stranger = sign_file(firmware, m.stranger.key)
    with pytest.raises(SignatureProblem, match="does not match"):
        verify_signature(firmware, by_stranger, m.signer.cert)
    with pytest.raises(SignatureProblem, match="no signature"):
        verify_signature(firmware, "", m.signer.cert)
    with pytest.raises(SignatureProblem, match="not base64"):
        verify_signature(firmware, "not base64!", m.signer.cert)
    with pytest.raises(SignatureProblem, match="does not match"):
        verify_signature(firmware, base64.b64encode(b"\x30\x03junk").decode(), m.signer.cert)
