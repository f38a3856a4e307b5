"""The checks of a secure firmware update (OCPP L01): the firmware signing certificate
the CSMS sends against the manufacturer's root (L01.FR.21/22), and the signature over
the whole downloaded file (L01.FR.04, L01.FR.12).

The signing certificate must be issued directly by a manufacturer root (Part 2: "the
manufacturer SHALL NOT use intermediate certificates for the firmware signing
certificate"), be valid now, not be a CA, and, where it says what it is for, be meant
for signatures (keyUsage digitalSignature) and code signing (extendedKeyUsage); RAUC's
keyring check (`check-purpose=codesign`) asks the same of the bundle's signer.

The signature is SHA-256 over the entire file, ECDSA for an EC key (DER, as OCA's test
tool and CSMSs produce it for "ECSchnorr") and RSA-PSS for an RSA key, base64 in the
request. The file is hashed in chunks, never read whole; `verify_signature` blocks and
runs in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID

CHUNK_BYTES = 1 << 20


class CertificateProblem(ValueError):
    """The signing certificate is not one the station trusts; the message says why."""


class SignatureProblem(ValueError):
    """The file's signature is missing or does not match; the message says why."""


def load_roots(pem: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM file (ValueError when there are none)."""
    return tuple(x509.load_pem_x509_certificates(pem))


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def check_signing_certificate(
    pem: str, roots: tuple[x509.Certificate, ...], now: datetime
) -> x509.Certificate:
    """The firmware signing certificate `pem`, if a root in `roots` issued it and it is
    fit to sign firmware at `now` (UTC); else CertificateProblem."""
    if not pem.strip():
        raise CertificateProblem("no signing certificate")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CertificateProblem("the signing certificate is not a PEM certificate") from None
    if not roots:
        raise CertificateProblem("no manufacturer root certificate is configured")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateProblem(
            f"the signing certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d} "
            f"to {cert.not_valid_after_utc:%Y-%m-%d}, not now"
        )
    if not isinstance(cert.public_key(), (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise CertificateProblem("the signing certificate's key is neither EC nor RSA")
    constraints = _extension(cert, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise CertificateProblem("the signing certificate is a CA certificate")
    usage = _extension(cert, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.digital_signature:
        raise CertificateProblem("the signing certificate is not for digital signatures")
    purposes = _extension(cert, x509.ExtendedKeyUsage)
    if (
        isinstance(purposes, x509.ExtendedKeyUsage)
        and ExtendedKeyUsageOID.CODE_SIGNING not in purposes
    ):
        raise CertificateProblem("the signing certificate is not for code signing")
    for root in roots:
        if cert.issuer != root.subject:
            continue
        if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
            continue
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return cert
    raise CertificateProblem(
        f"the signing certificate ({cert.subject.rfc4514_string()}) is not issued by a "
        "manufacturer root"
    )


def file_digest(path: Path) -> bytes:
    """SHA-256 of the whole file (blocking)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.digest()


def verify_signature(path: Path, signature_b64: str, cert: x509.Certificate) -> None:
    """SignatureProblem unless `signature_b64` is the signing certificate's signature
    over the whole file at `path` (blocking: run it in a thread)."""
    if not signature_b64.strip():
        raise SignatureProblem("no signature")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureProblem("the signature is not base64") from None
    digest = file_digest(path)
    key = cert.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            key.verify(signature, digest, pss, prehashed)
        else:
            raise SignatureProblem("the signing certificate's key is neither EC nor RSA")
    except InvalidSignature:
        raise SignatureProblem("the signature does not match the file") from None
