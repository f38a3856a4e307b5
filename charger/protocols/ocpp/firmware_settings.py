"""Settings of firmware updates (`[firmware]`): UpdateFirmware from the CSMS (OCPP L01,
L02), the download, and the check of the new firmware after its first boot."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import setting


@dataclass(frozen=True)
class FirmwareConfig:
    """Firmware updates through OCPP and RAUC (docs/firmware-update.md)."""

    manufacturer_root_file: str = setting(
        "",
        "the manufacturer's root certificate(s), PEM, that issue firmware signing "
        "certificates; empty: every secure update is refused (InvalidCertificate)",
    )
    allow_unsigned: bool = setting(
        False,
        "accept an UpdateFirmware without signing certificate and signature (L02; RAUC "
        "still checks the bundle); false for OCA certification (TC_L_18)",
    )
    max_size_mb: int = setting(1024, "largest firmware file downloaded", unit="MiB", lo=1, hi=16384)
    connect_timeout_s: float = setting(
        30.0, "connecting to the firmware's server", unit="s", lo=1, hi=600
    )
    read_timeout_s: float = setting(
        60.0, "a download that stalls this long fails (and is retried)", unit="s", lo=1, hi=3600
    )
    retries: int = setting(3, "download retries when the CSMS sets none", lo=0, hi=100)
    retry_interval_s: float = setting(
        60.0, "between download attempts when the CSMS sets no interval", unit="s", lo=0, hi=86400
    )
    health_timeout_s: float = setting(
        600.0,
        "after booting new firmware: how long the CSMS may take to accept the boot before "
        "the update is rolled back",
        unit="s",
        lo=5,
        hi=86400,
    )
    sim_keyring_file: str = setting(
        "",
        'hal backend "sim": the CA certificate(s) the simulated RAUC checks bundles '
        "against; empty: manufacturer_root_file",
    )
