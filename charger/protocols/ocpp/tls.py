"""TLS for OCPP security profiles 2 and 3 (OCPP 2.0.1 Part 2, A00 security profiles).

TLS 1.2 or newer, the server certificate verified against the configured CSMS root(s)
with its host name checked, and the cipher suites OCPP requires of a charging station
(ECDHE with AES-GCM, ECDSA and RSA; TLS 1.3 suites as OpenSSL offers them). Profile 3
adds the station's client certificate.
"""

from __future__ import annotations

import ssl

OCPP_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        "ECDHE-ECDSA-AES256-GCM-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256
        "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384
    )
)


def client_context(
    profile: int, ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """The SSLContext for connecting to the CSMS; raises OSError/SSLError for bad files."""
    context = (
        ssl.create_default_context(cafile=ca_file) if ca_file else (ssl.create_default_context())
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OCPP_TLS12_CIPHERS)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if profile == 3:
        if not cert_file or not key_file:
            raise ValueError("security profile 3 needs a client certificate and key")
        context.load_cert_chain(cert_file, key_file)
    return context


def security_event(error: BaseException) -> str | None:
    """The OCPP security event a failed TLS connection calls for (A04), if any."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return "InvalidCsmsCertificate"
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or "").upper()
        if "VERSION" in reason or "PROTOCOL" in reason:
            return "InvalidTLSVersion"
    return None
