"""Firmware update gear for the tests: a manufacturer PKI made in the test, RAUC bundles
built with Debian's `rauc` tool and signed with it, OCPP's signature over a file, and a
real HTTP file server on 127.0.0.1 that can fail, stall or trickle."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def rauc_available() -> bool:
    return shutil.which("rauc") is not None and shutil.which("mksquashfs") is not None


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Charger Test Manufacturer"),
        ]
    )


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=not signer,
        crl_sign=not signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Party:
    """A certificate with its key, and both as PEM files."""

    cert: x509.Certificate
    key: PrivateKey
    cert_file: Path
    key_file: Path

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _save(folder: Path, stem: str, cert: x509.Certificate, key: PrivateKey) -> Party:
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / f"{stem}.cert.pem", folder / f"{stem}.key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Party(cert, key, cert_file, key_file)


def make_root(folder: Path, name: str, *, days: int = 30) -> Party:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return _save(folder, name, cert, key)


def make_signer(
    folder: Path,
    name: str,
    issuer: Party,
    *,
    code_signing: bool = True,
    rsa_key: bool = False,
    valid_from_days: int = -1,
    valid_days: int = 30,
    ca: bool = False,
) -> Party:
    """A firmware signing certificate issued by `issuer` (code signing, as RAUC's
    check-purpose=codesign wants); the flags make the faulty ones."""
    key: PrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    now = dt.datetime.now(dt.UTC)
    purpose = ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_from_days))
        .not_valid_after(now + dt.timedelta(days=valid_from_days + valid_days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(signer=not ca), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()),  # type: ignore[arg-type]
            False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return _save(folder, name, cert, key)


@dataclass(frozen=True)
class Manufacturer:
    """The manufacturer's root and firmware signer, and a stranger's pair."""

    root: Party
    signer: Party
    stranger_root: Party
    stranger: Party


def manufacturer(folder: Path) -> Manufacturer:
    root = make_root(folder, "manufacturer-root")
    stranger_root = make_root(folder, "stranger-root")
    return Manufacturer(
        root,
        make_signer(folder, "firmware-signer", root),
        stranger_root,
        make_signer(folder, "stranger-signer", stranger_root),
    )


def sign_file(path: Path, key: PrivateKey) -> str:
    """OCPP's firmware signature: SHA-256 over the whole file, ECDSA or RSA-PSS, base64."""
    data = path.read_bytes()
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(data, pss, hashes.SHA256())
    else:
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def build_bundle(
    folder: Path,
    signer: Party,
    *,
    version: str = "2.0.0",
    compatible: str = "charger-sim",
    name: str = "update",
    payload_bytes: int = 64 * 1024,
) -> Path:
    """A verity RAUC bundle of a dummy root file system, made by `rauc bundle`."""
    content = folder / f"{name}-content"
    content.mkdir(parents=True, exist_ok=True)
    # incompressible, so that the squashfs is bigger than the 4 KiB RAUC insists on
    (content / "rootfs.ext4").write_bytes(random.Random(version).randbytes(payload_bytes))
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n"
        "[bundle]\nformat=verity\n"
        "[image.rootfs]\nfilename=rootfs.ext4\n"
    )
    bundle = folder / f"{name}.raucb"
    bundle.unlink(missing_ok=True)
    subprocess.run(
        [
            "rauc",
            "bundle",
            f"--cert={signer.cert_file}",
            f"--key={signer.key_file}",
            str(content),
            str(bundle),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return bundle


def corrupt(bundle: Path, at: int = 5000) -> Path:
    """The same bundle with one byte of its payload changed (its signature still holds:
    only the dm-verity check of the payload finds it)."""
    damaged = bundle.with_name("corrupt-" + bundle.name)
    data = bytearray(bundle.read_bytes())
    data[at] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return damaged


# ---------------------------------------------------------------------- file server


@dataclass
class FileServer:
    """Serves files of `root` over HTTP on 127.0.0.1 in a thread.

    `fail_first`: so many requests are answered 503 first; `trickle_s`: each 1 KiB of a
    body waits this long (a slow download a test can interrupt); `stall`: the body
    stops after its first KiB and the connection stays open."""

    root: Path
    fail_first: int = 0
    trickle_s: float = 0.0
    stall: bool = False
    requests: list[str] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)  # wall clock, one per request
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@contextmanager
def file_server(root: Path) -> Iterator[FileServer]:
    server_state = FileServer(root)
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            server_state.request_times.append(time.time())
            if server_state.fail_first > 0:
                server_state.fail_first -= 1
                self.send_error(503, "try again")
                return
            path = server_state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404, "no such firmware")
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for start in range(0, len(data), 1024):
                if stop.is_set():
                    return
                try:
                    self.wfile.write(data[start : start + 1024])
                    self.wfile.flush()
                except OSError:
                    return
                if server_state.stall:
                    stop.wait(120)
                    return
                if server_state.trickle_s:
                    time.sleep(server_state.trickle_s)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
