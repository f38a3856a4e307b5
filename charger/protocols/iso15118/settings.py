"""Settings of the ISO 15118 SECC (`[iso15118]`), beside the EXI codec's `exi_codec`.

The section is one table: this class extends the codec's declaration
(`charger.protocols.exi.settings.Iso15118Config`) with the SECC's keys. The SECC runs
on every EVSE with `hlc = true`, on its `network_interface`; `service.secc_settings`
turns the section into what the service is built with. Light on purpose: `charger
check-config` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charger.protocols.exi import settings as exi_settings
from charger.runtime.settings import Report, setting

PROTOCOLS = ("ISO_15118_2", "DIN_SPEC_70121")
TlsMode = Literal["off", "offer", "require"]


@dataclass(frozen=True)
class Iso15118Config(exi_settings.Iso15118Config):
    """ISO 15118-2 / DIN SPEC 70121 SECC on the EVSEs with `hlc = true`, and its EXI codec."""

    enabled: bool = setting(True, "run the SECC on every EVSE with hlc = true")
    protocols: tuple[str, ...] = setting(
        PROTOCOLS,
        "protocols offered in SupportedAppProtocol: " + ", ".join(PROTOCOLS),
    )
    priority: Literal["ev", "station"] = setting(
        "ev",
        '"ev": the EV\'s priority picks among the offered protocols; '
        '"station": the order of `protocols` does',
    )
    tls: TlsMode = setting(
        "off",
        '"off": TCP only; "offer": TLS when the EV asks for it in SDP; '
        '"require": TLS only (ISO 15118-2; DIN has no TLS)',
    )
    tls_cert_chain: str = setting(
        "", "PEM file: the SECC certificate, then its CPO sub-CA certificates (TLS)"
    )
    tls_key: str = setting("", "PEM file: the SECC certificate's private key (TLS)")
    tls_key_password_file: str = setting(
        "", "file holding the private key's password, if it is encrypted"
    )
    max_message_bytes: int = setting(
        8192,
        "largest V2GTP payload accepted; a longer one closes the connection",
        unit="bytes",
        lo=512,
        hi=65536,
    )
    receipt_required: bool = setting(
        False, "ask the EV for a MeteringReceipt in the charging loop (ReceiptRequired)"
    )
    basic_fallback: bool = setting(
        True,
        "after the HLC retries failed (ISO 15118-3), an AC EVSE offers basic charging "
        "unless the car asked for DC",
    )
    log_charging_loop: bool = setting(
        False, "log every ChargingStatus/CurrentDemand exchange at info level (else debug)"
    )

    def check(self, report: Report) -> None:
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown or not self.protocols:
            report(
                "protocols",
                f"is {list(self.protocols)!r}",
                "one or more of " + ", ".join(PROTOCOLS),
            )
        if len(set(self.protocols)) != len(self.protocols):
            report("protocols", "names a protocol twice", "each protocol once")
        if self.tls != "off" and not (self.tls_cert_chain and self.tls_key):
            report(
                "tls_cert_chain",
                "is missing",
                f"the SECC certificate chain and {report.path('tls_key')} when tls is {self.tls!r}",
            )
