"""TLS for ISO 15118-2: a TLS 1.2 server with the two cipher
suites the standard names for ECDSA certificates, presenting the SECC certificate and
its CPO sub-CA chain. No client certificate is asked for (-2 does not use one).

Session resumption works both ways a TLS 1.2 client may try it: session IDs (the
server-side cache OpenSSL keeps per context) and session tickets. One context serves
all sessions of an EVSE, so a car that reconnects can resume.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

# ISO 15118-2's cipher suites: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (0xC023) and
# TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B), in OpenSSL's names.
CIPHERS = ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256")
HANDSHAKE_TIMEOUT_S = 5.0  # the EV's V2G_EVCC_CommunicationSetup_Timeout (20 s) covers more


class TlsConfigError(ValueError):
    """The SECC's certificate, chain or key cannot be used; str() names the file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_chain: Path  # PEM: the SECC leaf certificate first, then the CPO sub-CAs
    key: Path  # PEM private key of the leaf (may be encrypted)
    key_password_file: Path | None = None  # one line: the key's password


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The TLS 1.2 server context; raises TlsConfigError. Reads files: call it off the loop."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(":".join(CIPHERS))
    context.set_ecdh_curve("prime256v1")
    context.verify_mode = ssl.CERT_NONE  # -2: the EV authenticates the SECC only
    context.options |= ssl.OP_NO_COMPRESSION
    context.options &= ~ssl.OP_NO_TICKET  # resumption by ticket as well as by session ID
    try:
        password = None
        if files.key_password_file is not None:
            password = files.key_password_file.read_bytes().rstrip(b"\r\n")
        context.load_cert_chain(files.cert_chain, files.key, password=password)
    except FileNotFoundError as exc:
        raise TlsConfigError(f"{exc.filename}: no such file") from None
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"{files.cert_chain} / {files.key}: cannot load the certificate chain and key "
            f"({exc.reason or exc})"
        ) from None
    return context
