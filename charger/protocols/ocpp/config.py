"""Settings of the OCPP 2.0.1 client (`[ocpp]`): connection profile slot 1.

Not to be confused with `settings.OcppSettings`, what the client is built with at run
time (these values, the station's connectors, the device model's start values)."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import Report, setting


@dataclass(frozen=True)
class OcppConfig:
    """The CSMS connection; reported in device_model, used by the OCPP client."""

    enabled: bool = setting(False, "run the OCPP 2.0.1 client")
    csms_url: str = setting(
        "ws://127.0.0.1:9000/ocpp", "the CSMS's WebSocket URL", pattern=r"wss?://\S+"
    )
    identity: str = setting(
        "",
        "the station's identity at the CSMS; empty: the serial number",
        pattern=r"[\x21-\x7e]{0,48}",
    )
    security_profile: int = setting(
        1,
        "1: basic auth over ws/wss; 2: basic auth over TLS; 3: TLS client certificate",
        lo=1,
        hi=3,
    )
    basic_auth_password: str = setting("", "HTTP basic auth password (profiles 1, 2)")
    ca_file: str = setting(
        "", "CSMS root certificate(s), PEM (profiles 2, 3); empty: the system's roots"
    )
    client_cert_file: str = setting("", "the station's certificate chain, PEM (profile 3)")
    client_key_file: str = setting("", "the station's private key, PEM (profile 3)")

    def check(self, report: Report) -> None:
        if self.security_profile == 3 and not (self.client_cert_file and self.client_key_file):
            report(
                "client_cert_file",
                "is missing",
                f"the station's certificate and {report.path('client_key_file')} "
                "for security_profile 3",
            )
        if self.security_profile >= 2 and not self.csms_url.startswith("wss://"):
            report(
                "csms_url",
                f"is {self.csms_url!r}",
                f"a wss:// URL for security_profile {self.security_profile}",
            )
