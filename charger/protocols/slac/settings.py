"""Settings of SLAC (`[slac]`)."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import setting


@dataclass(frozen=True)
class SlacConfig:
    """SLAC (ISO 15118-3) on the EVSEs with `hlc = true`."""

    init_timeout_s: float = setting(
        50.0,
        "TT_EVSE_SLAC_init: how long to wait for the EV's first SLAC message; "
        "ISO 15118-3 allows 20 to 50 s",
        unit="s",
        lo=1,
        hi=50,
    )
