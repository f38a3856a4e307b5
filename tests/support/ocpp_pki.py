"""The TLS Test System's PKI for the OCTT rig (`rig.octt`, `rig.csms.tls_front`): a CSMS
root, the CSMS server certificate for localhost (and 127.0.0.1), the invalid server
certificates of TC_A_05 (an unknown root's, an expired one, one for another host), a
station root with the station's client certificate (security profile 3); and the TS's
server contexts by mode, one of them limited to TLS 1.1 (TC_A_06)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from rig.octt import TlsMaterial
from tests.support.pki import Issued, _name, _write, root

HOST = "localhost"  # the host of the TS's wss:// URL


def _leaf(
    folder: Path,
    stem: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    host: str,
    server: bool,
    expired: bool = False,
) -> Issued:
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=60), now - dt.timedelta(days=30))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    )
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(host)]
        if host == HOST:
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _write(folder, stem, builder.sign(ca_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class OcttPki:
    csms_root: Path
    server: Issued  # the <Configured server certificate>
    unknown_root: Issued  # signed by a root the station does not know
    expired: Issued
    wrong_host: Issued  # for csms.example.net
    station_root: Path
    station: Issued  # the station's client certificate (security profile 3)

    def server_context(self, issued: Issued, *, tls11: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(issued.cert, issued.key)
        # the station's certificate when it sends one (profile 3), none needed (profile 2)
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(self.station_root)
        if tls11:  # a CSMS that knows nothing newer than TLS 1.1
            context.set_ciphers("DEFAULT@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1
                context.maximum_version = ssl.TLSVersion.TLSv1_1
        return context

    def contexts(self) -> dict[str, ssl.SSLContext]:
        """The TS's server contexts by mode ("valid" is the default)."""
        return {
            "valid": self.server_context(self.server),
            "unknown_root": self.server_context(self.unknown_root),
            "expired": self.server_context(self.expired),
            "wrong_host": self.server_context(self.wrong_host),
            "tls11": self.server_context(self.server, tls11=True),
        }

    def material(self) -> TlsMaterial:
        """What the rig serves and what the station is configured with."""
        return TlsMaterial(
            contexts=self.contexts(),
            ca_file=self.csms_root,
            client_cert_file=self.station.cert,
            client_key_file=self.station.key,
            host=HOST,
        )


def octt_pki(folder: Path) -> OcttPki:
    folder.mkdir(parents=True, exist_ok=True)
    csms_root, csms_cert, csms_key = root(folder, "csms-root")
    _, stranger_cert, stranger_key = root(folder, "unknown-root")
    station_root, station_cert, station_key = root(folder, "station-root")
    csms = (csms_cert, csms_key)
    return OcttPki(
        csms_root=csms_root.cert,
        server=_leaf(folder, "csms-server", csms, host=HOST, server=True),
        unknown_root=_leaf(
            folder, "csms-unknown-root", (stranger_cert, stranger_key), host=HOST, server=True
        ),
        expired=_leaf(folder, "csms-expired", csms, host=HOST, server=True, expired=True),
        wrong_host=_leaf(folder, "csms-wrong-host", csms, host="csms.example.net", server=True),
        station_root=station_root.cert,
        station=_leaf(folder, "station", (station_cert, station_key), host="CS001", server=False),
    )
